"""Apache Spark with delta-spark reads a table the server keeps on S3 (opt-in: `make
test-spark`, like test_delta_spark.py). A bifrost-server on s3://bucket/tables (moto,
reached through the test proxy) writes the conformance table (every type, awkward
partition values including a real null); Spark reads it over s3a:// (hadoop-aws
matching the Hadoop inside pyspark, fetched into build/ivy with delta-spark) straight
from moto. Spark must return exactly the rows the server's SQL returns, before and
after the server's optimize + checkpoint + vacuum (retention 0) and after the log
before the checkpoint is removed; DESCRIBE HISTORY must list the server's commits."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import List, Optional

import pytest

if os.environ.get("BIFROST_TEST_SPARK") != "1":
    pytest.skip("Spark interop runs with `make test-spark`", allow_module_level=True)

pyspark = pytest.importorskip("pyspark")

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig  # noqa: E402

from conftest import ServerProcess  # noqa: E402
from s3_support import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402
from spark_support import spark_session  # noqa: E402
from test_delta_conformance import COLUMNS, Row, expected_rows, make_rows, norm, rows_of  # noqa: E402

PREFIX = "tables"
# No automatic maintenance: each step is forced through MaintainTable; vacuum at 0 h.
SERVER_ARGS = ["--maintenance-interval", "0", "--flush-interval", "3600", "--checkpoint-interval", "0",
               "--compact-min-files", "0", "--unsafe-short-retention"]


@pytest.fixture(scope="module")
def spark(s3):
    s3a = {"endpoint": s3.direct_endpoint, "endpoint.region": REGION, "path.style.access": "true",
           "connection.ssl.enabled": "false", "access.key": ACCESS_KEY, "secret.key": SECRET_KEY,
           "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
           "attempts.maximum": "2", "retry.limit": "2"}
    session = spark_session("bifrost-delta-s3-interop", {f"fs.s3a.{k}": v for k, v in s3a.items()})
    yield session
    session.stop()


class S3Table:
    """The conformance table written by one server on s3://bucket/tables."""

    def __init__(self, s3, tmp_path: Path):
        self.s3 = s3
        self.bucket = s3.new_bucket("spark-s3a")
        self.server = ServerProcess(f"s3://{self.bucket}/{PREFIX}", args=["--wal-dir", tmp_path / "wal", *SERVER_ARGS],
                                    log_dir=tmp_path, log_name="server", env=s3.server_env())
        self.grpc = GrpcConfig(server_uri=self.server.uri, timeout_secs=300)
        self.cfg = TableConfig(Row, catalog="conf", schema_name="delta", table="rows",
                               partition_columns=["region", "kind"])
        self.key = f"{PREFIX}/conf/delta/rows"
        self.uri = f"s3a://{self.bucket}/{self.key}"
        self.rows: List[Row] = []
        self._client: Optional[DatasetClient] = None

    @property
    def client(self) -> DatasetClient:
        if self._client is None:
            self._client = DatasetClient(self.grpc, self.cfg)
        return self._client

    def insert(self, rows: List[Row]) -> None:
        with DatasetProducer(self.cfg, self.grpc, WriteConfig(batch_size=40)) as producer:
            producer.insert_many(rows)
            assert producer.flush(timeout=120) == len(rows)
        self.rows += rows

    def maintain(self, *ops: str, retention_hours=None) -> dict:
        return self.client.maintain_dataset("conf", "delta", "rows", list(ops), retention_hours=retention_hours)

    def server_rows(self) -> List[dict]:
        return rows_of(self.client.sql(f"SELECT * FROM {self.cfg.fqn}").to_arrow())

    def data_keys(self) -> List[str]:
        """Keys of data files in the bucket, relative to the table."""
        start = len(self.key) + 1
        return sorted(k[start:] for k in self.s3.keys(self.bucket, self.key + "/")
                      if k.endswith(".parquet") and "/_delta_log/" not in k and "_bifrost" not in k)

    def log_names(self) -> List[str]:
        return [k.rsplit("/", 1)[1] for k in self.s3.keys(self.bucket, self.key + "/_delta_log/")]


@pytest.fixture(scope="module")
def table(s3, tmp_path_factory):
    t = S3Table(s3, tmp_path_factory.mktemp("spark-s3"))
    try:
        for k in range(3):
            t.insert(make_rows(k * 66, 66))
            assert t.maintain("flush")["rows_flushed"] == 66
        yield t
    finally:
        t.server.stop()
    assert t.server.proc.returncode == 0, t.server.log()


def fresh(spark) -> None:
    """Forget cached Delta snapshots: the next read lists the bucket anew."""
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


def spark_rows(spark, uri: str) -> List[dict]:
    rows = [r.asDict(recursive=True) for r in spark.read.format("delta").load(uri).select(*COLUMNS).collect()]
    return sorted(({c: norm(r[c]) for c in COLUMNS} for r in rows), key=lambda r: r["id"])


def files_spark_reads(spark, t: S3Table) -> List[str]:
    """Data files of Spark's snapshot, relative to the table. Hadoop paths print the
    log's URI decoded once, i.e. the object key ("region=%20lead" for " lead")."""
    prefix = t.uri + "/"
    paths = spark.read.format("delta").load(t.uri).inputFiles()
    assert all(p.startswith(prefix) for p in paths), paths
    return sorted(p[len(prefix):] for p in paths)


def assert_spark_matches_server(spark, t: S3Table) -> List[dict]:
    server = t.server_rows()
    assert server == expected_rows(t.rows)
    fresh(spark)
    got = spark_rows(spark, t.uri)
    assert len(got) == len(server), f"Spark read {len(got)} rows, the server has {len(server)}"
    for mine, theirs in zip(got, server):
        assert mine == theirs, f"id {theirs['id']}"
    return server


UTC = dt.timezone.utc
LAST_MICRO = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
# Spark predicates on data columns (answered with the help of our per-file stats:
# min/max/nullCount) and the same test on an inserted row. Timestamp stats are in
# milliseconds while values have microseconds: a file whose max is LAST_MICRO must
# not be skipped.
PREDICATES = {
    "id = 5": lambda r: r.id == 5,
    "at = timestamp'2024-02-29 23:59:59.999999'": lambda r: r.at == LAST_MICRO,
    "at < timestamp'1901-12-13 20:45:52.000002'": lambda r: r.at.year == 1901,
    "day = date'0001-01-01'": lambda r: r.day == dt.date(1, 1, 1),
    "amount >= 1e308": lambda r: r.amount >= 1e308,
    "amount > 0 AND amount < 1e-300": lambda r: 0 < r.amount < 1e-300,
    "maybe = 9223372036854775807": lambda r: r.maybe == 2**63 - 1,
    "maybe IS NULL": lambda r: r.maybe is None,
    "text > 'long'": lambda r: r.text > "long",
    "opt_inner IS NULL": lambda r: r.opt_inner is None,
}


def assert_predicates_match(spark, t: S3Table) -> None:
    df = spark.read.format("delta").load(t.uri)
    for predicate, test in PREDICATES.items():
        want = sorted(r.id for r in t.rows if test(r))
        assert 0 < len(want) < len(t.rows), predicate
        assert sorted(r["id"] for r in df.where(predicate).select("id").collect()) == want, predicate
    # Stats are used at all: a point lookup by id leaves files out.
    assert 0 < len(df.where("id = 5").inputFiles()) < len(df.inputFiles())


def test_spark_reads_the_servers_rows_over_s3a(spark, table):
    t = table
    assert_spark_matches_server(spark, t)
    df = spark.read.format("delta").load(t.uri)
    # Partition pruning by the string "NULL", by a real null and by a value with '/'.
    assert df.where("region = 'NULL'").count() == sum(r.region == "NULL" for r in t.rows) > 0
    assert df.where("region IS NULL").count() == sum(r.region is None for r in t.rows) > 0
    assert df.where("region = 'x/y'").count() == sum(r.region == "x/y" for r in t.rows) > 0
    assert df.where("kind = 'NULL'").count() == sum(r.kind == "NULL" for r in t.rows) > 0
    assert df.groupBy("region").count().count() == len({r.region for r in t.rows})
    assert files_spark_reads(spark, t) == t.data_keys()
    assert_predicates_match(spark, t)


def test_describe_history_lists_the_servers_commits(spark, table):
    t = table
    fresh(spark)
    history = {h["version"]: h for h in spark.sql(f"DESCRIBE HISTORY delta.`{t.uri}`").collect()}
    assert sorted(history) == [0, 1, 2, 3]
    assert history[0]["operation"] == "CREATE TABLE"
    assert history[0]["operationParameters"]["partitionBy"] == '["scouter_partition_date","region","kind"]'
    for v in (1, 2, 3):
        h = history[v]
        assert h["operation"] == "WRITE" and h["isBlindAppend"] is True, h
        assert h["readVersion"] == v - 1 and h["engineInfo"].startswith("bifrost-server/"), h
        assert h["operationMetrics"]["numOutputRows"] == "66"
    first = spark.read.format("delta").option("versionAsOf", 1).load(t.uri)
    assert sorted(r["id"] for r in first.select("id").collect()) == list(range(66))


def test_spark_reads_after_optimize_checkpoint_vacuum(spark, table):
    t = table
    # A flush whose files all have min = max = LAST_MICRO (other files' max is in 2026).
    t.insert([r.model_copy(update={"at": LAST_MICRO}) for r in make_rows(1000, 33)])
    assert t.maintain("flush")["rows_flushed"] == 33
    fresh(spark)
    assert_predicates_match(spark, t)
    done = t.maintain("optimize")
    assert done["files_removed"] > 0 and done["files_added"] > 0, done
    version = t.maintain("checkpoint")["checkpoint_version"]
    assert version == 5  # create, 4 writes, optimize
    assert f"{version:020d}.checkpoint.parquet" in t.log_names() and "_last_checkpoint" in t.log_names()
    # Before vacuum the removed files are still in the bucket; Spark reads only the live ones.
    fresh(spark)
    live = files_spark_reads(spark, t)
    removed = sorted(set(t.data_keys()) - set(live))
    assert set(live) < set(t.data_keys()) and len(removed) == done["files_removed"]
    assert_spark_matches_server(spark, t)
    assert_predicates_match(spark, t)  # stats now come from the checkpoint

    assert t.maintain("vacuum", retention_hours=0)["files_deleted"] == len(removed)
    assert t.data_keys() == live
    server = assert_spark_matches_server(spark, t)

    fresh(spark)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{t.uri}`").collect()
    ops = {h["version"]: h["operation"] for h in history}
    assert ops[4] == "WRITE" and ops[5] == "OPTIMIZE", ops
    assert all(h["engineInfo"].startswith("bifrost-server/") for h in history)

    # Without the JSON commits before the checkpoint Spark starts from the checkpoint.
    assert t.maintain("cleanup_log", retention_hours=0)["log_files_deleted"] == version
    assert [n for n in t.log_names() if n.endswith(".json")] == [f"{version:020d}.json"]
    fresh(spark)
    assert spark_rows(spark, t.uri) == server
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{t.uri}`").collect()[0]
    assert (detail["minReaderVersion"], detail["minWriterVersion"]) == (1, 2)
    assert detail["partitionColumns"] == ["scouter_partition_date", "region", "kind"]
    assert detail["numFiles"] == len(live)
