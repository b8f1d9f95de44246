"""The quickstart on an s3:// data dir (moto): register, insert through the
background producer, read back through SQL / read() / to_polars, flush to Parquet
+ Delta commits in the bucket (checked with boto3), restart the server and find
every row again, also from a server with a fresh WAL dir. Credentials never
appear in the server log."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from typing import Optional

import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, TableConfig, WriteConfig

from s3_support import SECRET_KEY
from s3_tables import grpc, start_server

PREFIX = "tables"
TABLE_KEY = f"{PREFIX}/production/ml/credit_predictions"


class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: datetime


def table_config() -> TableConfig:
    return TableConfig(model=PredictionRecord, catalog="production", schema_name="ml",
                       table="credit_predictions", partition_columns=["model_name"])


def produce(server, n: int, start: int, expected: dict) -> None:
    """Inserts n records (ids start..start+n) like examples/quickstart.py and adds
    each to expected[model_name] = [count, sum(confidence)]."""
    rng = random.Random(start)
    producer = DatasetProducer(table_config=table_config(), transport=grpc(server),
                               write_config=WriteConfig(batch_size=1000, scheduled_delay_secs=30))
    for i in range(start, start + n):
        model_name = rng.choice(["credit_v1", "credit_v2"])
        confidence = round(rng.uniform(0.5, 1.0), 4)
        producer.insert(PredictionRecord(
            user_id=f"user_{i}", model_name=model_name, prediction=round(rng.random(), 4),
            confidence=confidence, feature_1=rng.gauss(0, 1), feature_2=rng.gauss(5, 2),
            label=None if i % 3 else "approved", predicted_at=datetime.now(timezone.utc)))
        entry = expected.setdefault(model_name, [0, 0.0])
        entry[0] += 1
        entry[1] += confidence
    assert producer.flush(timeout=120) == n
    producer.shutdown()
    stats = producer.stats()
    assert stats["acknowledged"] == n and stats["failed"] == stats["dropped"] == 0


def check_rows(server, expected: dict) -> None:
    cfg = table_config()
    client = DatasetClient(transport=grpc(server), table_config=cfg)
    total = sum(n for n, _ in expected.values())
    records = client.read()
    assert len(records) == total
    assert sorted(int(r.user_id.split("_")[1]) for r in records) == list(range(total))
    df = client.sql(f"""
        SELECT model_name, COUNT(*) AS cnt, AVG(confidence) AS avg_conf
        FROM {cfg.fqn} GROUP BY model_name ORDER BY model_name
    """).to_polars()
    assert df.columns == ["model_name", "cnt", "avg_conf"]
    assert [row[0] for row in df.rows()] == sorted(expected)
    for model_name, cnt, avg_conf in df.rows():
        n, conf_sum = expected[model_name]
        assert cnt == n
        assert avg_conf == pytest.approx(conf_sum / n, abs=1e-9)
    over = client.sql(f"SELECT count(*) AS n FROM {cfg.fqn} WHERE label = 'approved'").to_arrow()
    assert over.column("n")[0].as_py() == sum(1 for i in range(total) if i % 3 == 0)


def test_quickstart_on_s3_survives_restart(s3, s3_bucket, tmp_path):
    expected: dict = {}
    server = start_server(s3, s3_bucket, tmp_path, prefix=PREFIX)
    try:
        cfg = table_config()
        produce(server, 5000, 0, expected)
        check_rows(server, expected)  # acknowledged rows are visible at once

        # The table exists in the bucket: its first commit names the partition column.
        keys = s3.keys(s3_bucket, TABLE_KEY + "/")
        assert f"{TABLE_KEY}/_delta_log/00000000000000000000.json" in keys
        first = s3.client.get_object(Bucket=s3_bucket, Key=f"{TABLE_KEY}/_delta_log/00000000000000000000.json")
        actions = [json.loads(line) for line in first["Body"].read().decode().splitlines() if line]
        meta = next(a["metaData"] for a in actions if "metaData" in a)
        assert meta["partitionColumns"][-1] == "model_name"
        assert any("protocol" in a for a in actions)

        client = DatasetClient(transport=grpc(server))
        done = client.maintain_dataset("production", "ml", "credit_predictions", ["flush"])
        assert done["rows_flushed"] == 5000 and done["delta_version"] >= 1
        keys = s3.keys(s3_bucket, TABLE_KEY + "/")
        parquet = [k for k in keys if k.endswith(".parquet") and "/_delta_log/" not in k]
        assert {m for m in ("credit_v1", "credit_v2") if any(f"/model_name={m}/" in k for k in parquet)} == \
            {"credit_v1", "credit_v2"}
        assert f"{TABLE_KEY}/_delta_log/{done['delta_version']:020d}.json" in keys
        check_rows(server, expected)

        # Rows acknowledged after the flush stay in the WAL across a clean restart.
        produce(server, 1000, 5000, expected)
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log()

    server = start_server(s3, s3_bucket, tmp_path, prefix=PREFIX)
    try:
        check_rows(server, expected)
        assert DatasetClient(transport=grpc(server)).describe_dataset(
            "production", "ml", "credit_predictions")["num_rows"] == 6000
        DatasetClient(transport=grpc(server)).maintain_dataset("production", "ml", "credit_predictions", ["flush"])
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log()

    # Everything is in the bucket now: a server with an empty WAL dir sees it all.
    other = start_server(s3, s3_bucket, tmp_path, name="fresh", prefix=PREFIX)
    try:
        check_rows(other, expected)
    finally:
        other.stop()
    for srv in (server, other):
        assert SECRET_KEY not in srv.full_log()


def test_local_data_dir_still_works_next_to_s3(s3, s3_bucket, tmp_path):
    """A local data dir keeps its old layout even with AWS settings in the
    environment (they only matter for s3:// data dirs)."""
    from conftest import ServerProcess

    data = tmp_path / "data"
    server = ServerProcess(data, env=s3.server_env())
    try:
        expected: dict = {}
        produce(server, 300, 0, expected)
        DatasetClient(transport=grpc(server)).maintain_dataset("production", "ml", "credit_predictions", ["flush"])
        check_rows(server, expected)
    finally:
        server.stop()
    table = data / "production" / "ml" / "credit_predictions"
    assert (table / "_delta_log" / "00000000000000000001.json").is_file()
    assert s3.keys(s3_bucket) == []
