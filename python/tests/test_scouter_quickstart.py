"""The seed quickstart, run with the published scouter-ml 0.25.0 client (not our
compatibility namespace) against bifrost-server: register, 5,000 records, flush,
read() to validated models, sql() to Arrow / Polars / Pandas, the aggregation,
list / describe, the Bifrost unified client and shutdown; rows written through
bifrost.v1 (our package, in .venv) and through scouter.grpc.v1 are visible through
both, exactly once. Runs under .venv-scouter (make test-scouter)."""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from typing import Optional

import pytest

from scouter_wire import bifrost_python, require_real_scouter

require_real_scouter()

from pydantic import BaseModel  # noqa: E402

from scouter import GrpcConfig  # noqa: E402
from scouter.bifrost import (  # noqa: E402
    Bifrost,
    DatasetClient,
    DatasetProducer,
    TableConfig,
    WriteConfig,
)


class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: datetime


def wait_for_count(client, fqn: str, n: int) -> int:
    """The published client's flush() only signals its queue: wait until the
    rows it sent are acknowledged (and so visible) or 60 s have passed."""
    deadline = time.monotonic() + 60
    while True:
        got = client.sql(f"SELECT count(*) AS n FROM {fqn}").to_arrow().column("n")[0].as_py()
        if got >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.fixture
def transport(server):
    return GrpcConfig(server_uri=f"http://{server.uri}")


def test_seed_quickstart_with_the_published_client(server, transport, unique_table):
    table_config = TableConfig(model=PredictionRecord, catalog="production", schema_name="ml",
                               table=unique_table, partition_columns=["model_name"])
    fqn = table_config.fqn
    producer = DatasetProducer(table_config=table_config, transport=transport,
                               write_config=WriteConfig(batch_size=1000, scheduled_delay_secs=30))
    assert producer.register() == "created"
    assert producer.is_registered
    client = DatasetClient(transport=transport, table_config=table_config)

    rng = random.Random(42)
    expected: dict[str, tuple[int, float]] = {}
    for i in range(5000):
        model_name = rng.choice(["credit_v1", "credit_v2"])
        confidence = round(rng.uniform(0.5, 1.0), 4)
        producer.insert(PredictionRecord(
            user_id=f"user_{i}", model_name=model_name, prediction=round(rng.random(), 4),
            confidence=confidence, feature_1=rng.gauss(0, 1), feature_2=rng.gauss(5, 2),
            label=None if i % 3 else "approved", predicted_at=datetime.now(timezone.utc)))
        n, total = expected.get(model_name, (0, 0.0))
        expected[model_name] = (n + 1, total + confidence)
    producer.flush()
    assert wait_for_count(client, fqn, 5000) == 5000

    records = client.read()
    assert len(records) == 5000
    assert all(isinstance(r, PredictionRecord) for r in records)
    by_id = {r.user_id: r for r in records}
    assert len(by_id) == 5000
    assert by_id["user_0"].label == "approved" and by_id["user_1"].label is None
    assert by_id["user_0"].predicted_at.utcoffset().total_seconds() == 0
    assert len(client.read(limit=7)) == 7

    result = client.sql(f"SELECT count(*) AS n FROM {fqn} WHERE confidence > 0.9")
    n_high = result.to_arrow().column("n")[0].as_py()
    assert n_high == sum(1 for r in records if r.confidence > 0.9)
    assert result.to_pandas()["n"][0] == n_high
    assert result.to_polars()["n"][0] == n_high
    assert len(result.to_bytes()) == len(result) > 0

    result = client.sql(f"""
        SELECT model_name, COUNT(*) AS cnt, AVG(confidence) AS avg_conf
        FROM {fqn} GROUP BY model_name ORDER BY model_name""")
    rows = result.to_polars().rows()
    assert [r[0] for r in rows] == sorted(expected)
    for model_name, cnt, avg_conf in rows:
        n, total = expected[model_name]
        assert cnt == n and abs(avg_conf - total / n) < 1e-9

    listed = [d for d in client.list_datasets() if d["table"] == unique_table]
    assert len(listed) == 1
    assert listed[0]["fingerprint"] == table_config.fingerprint_str
    assert listed[0]["partition_columns"] == ["model_name"]
    assert listed[0]["status"] == "active"
    datetime.fromisoformat(listed[0]["created_at"])
    described = client.describe_dataset("production", "ml", unique_table)
    assert described["fingerprint"] == table_config.fingerprint_str
    assert "predicted_at" in described["arrow_schema_json"]
    producer.shutdown()


def test_bifrost_unified_client_and_both_protocols_see_every_row_once(server, transport,
                                                                        unique_table):
    table_config = TableConfig(model=PredictionRecord, catalog="production", schema_name="ml",
                               table=unique_table)
    bf = Bifrost(table_config=table_config, transport=transport,
                 write_config=WriteConfig(batch_size=100, scheduled_delay_secs=1))
    assert bf.register() == "created"
    assert bf.fingerprint == table_config.fingerprint_str
    assert bf.namespace == table_config.fqn
    now = datetime.now(timezone.utc)
    for i in range(300):
        bf.insert(PredictionRecord(user_id=f"s{i}", model_name="m", prediction=0.5, confidence=0.5,
                                   feature_1=float(i), feature_2=0.0, predicted_at=now))
    bf.flush()
    assert wait_for_count(bf, table_config.fqn, 300) == 300

    # 200 rows through bifrost.v1 with our own package, into the same table.
    script = f"""
import sys
from datetime import datetime, timezone
from typing import Optional
from pydantic import BaseModel
from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig
class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: datetime
tc = TableConfig(model=PredictionRecord, catalog="production", schema_name="ml", table="{unique_table}")
transport = GrpcConfig(server_uri="{server.uri}")
p = DatasetProducer(table_config=tc, transport=transport)
now = datetime.now(timezone.utc)
for i in range(200):
    p.insert(PredictionRecord(user_id=f"b{{i}}", model_name="m", prediction=0.5, confidence=0.5,
                              feature_1=float(i), feature_2=0.0, predicted_at=now))
p.flush()
p.shutdown()
c = DatasetClient(transport=transport, table_config=tc)
print(len(c.read()), len({{r.user_id for r in c.read()}}))
"""
    assert bifrost_python(script).split() == ["500", "500"]
    records = bf.read()
    assert len(records) == 500
    assert len({r.user_id for r in records}) == 500
    assert {r.user_id[0] for r in records} == {"s", "b"}
    assert any(d["table"] == unique_table for d in bf.list_datasets())
    assert bf.describe_dataset("production", "ml", unique_table)["table"] == unique_table
    assert bf.sql(f"SELECT count(DISTINCT user_id) AS n FROM {table_config.fqn}").to_arrow() \
        .column("n")[0].as_py() == 500
    bf.shutdown()


def test_a_table_registered_through_bifrost_v1_serves_the_published_client(server, transport,
                                                                          unique_table):
    script = f"""
from datetime import datetime, timezone
from typing import Optional
from pydantic import BaseModel
from bifrost import DatasetProducer, GrpcConfig, TableConfig
class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: datetime
tc = TableConfig(model=PredictionRecord, catalog="production", schema_name="ml", table="{unique_table}")
with DatasetProducer(table_config=tc, transport=GrpcConfig(server_uri="{server.uri}")) as p:
    now = datetime.now(timezone.utc)
    for i in range(50):
        p.insert(PredictionRecord(user_id=f"b{{i}}", model_name="m", prediction=0.5,
                                  confidence=0.5, feature_1=1.0, feature_2=2.0, predicted_at=now))
    print(p.flush(timeout=60))
"""
    assert bifrost_python(script).split() == ["50"]
    table_config = TableConfig(model=PredictionRecord, catalog="production", schema_name="ml",
                               table=unique_table)
    producer = DatasetProducer(table_config=table_config, transport=transport)
    assert producer.register() == "already_exists"
    client = DatasetClient(transport=transport, table_config=table_config)
    assert sorted(r.user_id for r in client.read()) == sorted(f"b{i}" for i in range(50))
    empty = client.sql(f"SELECT * FROM {table_config.fqn} WHERE false").to_arrow()
    assert empty.num_rows == 0 and "predicted_at" in empty.column_names
    producer.shutdown()
