"""The Spark session for the opt-in Spark interop tests (test_delta_spark*.py):
local[2] with delta-spark and hadoop-aws from Maven (jars kept in build/ivy).
spark.jars.packages is read only when pyspark launches its JVM, i.e. by the first
session of the pytest process; so every Spark test module asks for the same jars,
whichever runs first, and passes its own settings (S3A endpoint, keys) per session."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from conftest import REPO

DELTA_SPARK = "io.delta:delta-spark_2.13:4.4.0"
# pyspark 4.2.0 ships hadoop-client-api/-runtime 3.5.0; S3A must be the same release
# (it pulls the AWS SDK v2 bundle). delta-spark's kernel jars ask for the Hadoop 3.4.2
# client jars: excluded, so that one Hadoop is on the classpath.
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.5.0"
HADOOP_EXCLUDES = "org.apache.hadoop:hadoop-client-api,org.apache.hadoop:hadoop-client-runtime"


def pyspark_hadoop_version() -> str:
    """The Hadoop release inside the installed pyspark (from its client jar name)."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if len(jars) != 1:
        raise RuntimeError(f"expected one hadoop-client-api jar in pyspark, found {jars}")
    return jars[0].name[len("hadoop-client-api-"):-len(".jar")]


def spark_session(app: str, hadoop: Optional[Dict[str, str]] = None):
    """A new local Spark session with Delta; hadoop holds Hadoop settings
    ("fs.s3a.endpoint": ...) for this session only."""
    from pyspark.sql import SparkSession

    if not HADOOP_AWS.endswith(":" + pyspark_hadoop_version()):
        raise RuntimeError(f"{HADOOP_AWS} does not match pyspark's Hadoop {pyspark_hadoop_version()}")
    builder = (SparkSession.builder.master("local[2]").appName(app)
               .config("spark.jars.packages", f"{DELTA_SPARK},{HADOOP_AWS}")
               .config("spark.jars.excludes", HADOOP_EXCLUDES)
               .config("spark.jars.ivy", str(REPO / "build" / "ivy"))
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.databricks.delta.snapshotPartitions", "2")
               .config("spark.driver.memory", "2g").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
               .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"))
    for key, value in (hadoop or {}).items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
