"""Apache Spark with delta-spark against a table the server owns (opt-in: `make
test-spark`, which installs pyspark and sets BIFROST_TEST_SPARK=1; the delta-spark
jars are fetched into build/ivy on the first run). Spark reads the same rows as the
server's SQL, DESCRIBE HISTORY and versionAsOf work on our commits, and after a
Spark append, OPTIMIZE and VACUUM the server goes on writing and compacting while
every reader still agrees with it."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

if os.environ.get("BIFROST_TEST_SPARK") != "1":
    pytest.skip("Spark interop runs with `make test-spark`", allow_module_level=True)

pyspark = pytest.importorskip("pyspark")

from test_delta_conformance import READERS, Scenario, expected_rows, make_rows, norm  # noqa: E402

from spark_support import spark_session  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = spark_session("bifrost-delta-interop")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    sc = Scenario(tmp_path_factory.mktemp("spark"))
    for k in range(2):
        sc.insert(make_rows(k * 66, 66))
        assert sc.maintain("flush")["rows_flushed"] == 66
    sc.path = Path(sc.server.data_dir) / sc.client.describe_dataset("conf", "delta", "rows")["location"]
    yield sc
    sc.server.stop()
    assert sc.server.proc.returncode == 0, sc.server.log()


def spark_rows(spark, path: Path, columns, **options) -> list[dict]:
    reader = spark.read.format("delta")
    for k, v in options.items():
        reader = reader.option(k, v)
    rows = [r.asDict(recursive=True) for r in reader.load(str(path)).select(*columns).collect()]
    return sorted(({c: norm(r[c]) for c in columns} for r in rows), key=lambda r: r["id"])


def wait_for_rows(sc: Scenario, n: int) -> None:
    """The server re-reads the log every second; wait until it has n rows."""
    deadline = time.monotonic() + 30
    while True:
        got = sc.client.sql(f"SELECT count(*) AS n FROM {sc.cfg.fqn}").to_arrow().column("n")[0].as_py()
        if got == n or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == n


def test_spark_reads_the_servers_rows(spark, scenario):
    sc = scenario
    from test_delta_conformance import COLUMNS, rows_of

    server = rows_of(sc.server_table())
    assert server == expected_rows(sc.rows)
    assert spark_rows(spark, sc.path, COLUMNS) == server
    # Partition pruning by the string "NULL" and by null.
    df = spark.read.format("delta").load(str(sc.path))
    assert df.where("region = 'NULL'").count() == sum(r.region == "NULL" for r in sc.rows)
    assert df.where("region IS NULL").count() == sum(r.region is None for r in sc.rows)
    assert df.where("kind = 'NULL'").count() == sum(r.kind == "NULL" for r in sc.rows)
    assert df.groupBy("region").count().count() == len({r.region for r in sc.rows})


def test_describe_history_and_version_as_of(spark, scenario):
    sc = scenario
    history = spark.sql(f"DESCRIBE HISTORY delta.`{sc.path}`").collect()
    by_version = {h["version"]: h for h in history}
    assert by_version[0]["operation"] == "CREATE TABLE"
    assert by_version[0]["operationParameters"]["partitionBy"] == '["scouter_partition_date","region","kind"]'
    for v in (1, 2):
        h = by_version[v]
        assert h["operation"] == "WRITE" and h["isBlindAppend"] is True
        assert h["readVersion"] == v - 1 and h["engineInfo"].startswith("bifrost-server/")
        assert h["operationMetrics"]["numOutputRows"] == "66"
    first = spark.read.format("delta").option("versionAsOf", 1).load(str(sc.path))
    assert sorted(r["id"] for r in first.select("id").collect()) == list(range(66))


def test_spark_append_optimize_vacuum_then_the_server_goes_on(spark, scenario):
    from pyspark.sql import functions as F
    from test_delta_conformance import COLUMNS, rows_of

    sc = scenario
    df = spark.read.format("delta").load(str(sc.path))
    extra = df.where("id < 20").withColumn("id", F.col("id") + F.lit(2_000_000))
    extra.write.format("delta").mode("append").save(str(sc.path))
    spark.sql(f"OPTIMIZE delta.`{sc.path}`").collect()
    spark.sql(f"VACUUM delta.`{sc.path}` RETAIN 168 HOURS").collect()
    wait_for_rows(sc, len(sc.rows) + 20)
    # The server keeps writing and compacting on top of Spark's commits.
    sc.insert(make_rows(300, 66))
    assert sc.maintain("flush")["rows_flushed"] == 66
    sc.insert(make_rows(400, 66))
    assert sc.maintain("flush")["rows_flushed"] == 66
    assert sc.maintain("optimize")["files_removed"] > 0
    sc.maintain("checkpoint")
    server = rows_of(sc.server_table())
    assert [r for r in server if r["id"] < 2_000_000] == expected_rows(sc.rows)
    assert len(server) == len(sc.rows) + 20
    assert spark_rows(spark, sc.path, COLUMNS) == server
    for name, read in READERS.items():
        assert rows_of(read(sc.path)) == server, name
    history = spark.sql(f"DESCRIBE HISTORY delta.`{sc.path}`").collect()
    assert history[0]["operation"] == "OPTIMIZE" and history[0]["engineInfo"].startswith("bifrost-server/")
