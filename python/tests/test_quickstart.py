"""The documented quickstart and unified-client examples, run exactly as printed in
the docs (imports through ``scouter``, server at localhost:50051), then checked
against values computed independently here."""
from __future__ import annotations

import textwrap
from datetime import datetime, timezone

import pytest

SCHEMA = '''
from pydantic import BaseModel
from typing import Optional
from datetime import datetime

class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: datetime
'''

QUICKSTART = SCHEMA + '''
from scouter.bifrost import TableConfig

table_config = TableConfig(
    model=PredictionRecord, #(1)
    catalog="production", #(2)
    schema_name="ml",
    table="credit_predictions",
    partition_columns=["model_name"], #(3)
)

print(table_config.fqn) # "production.ml.credit_predictions"
print(table_config.fingerprint_str) # "a1b2c3d4..." (32-char hex)

from scouter.bifrost import DatasetProducer, WriteConfig
from scouter import GrpcConfig

producer = DatasetProducer(
    table_config=table_config,
    transport=GrpcConfig(server_uri="localhost:50051"),
    write_config=WriteConfig( #(1)
        batch_size=1000,
        scheduled_delay_secs=30,
    ),
)

from datetime import datetime, timezone

for i in range(5000):
    record = PredictionRecord(
        user_id=f"user_{i}",
        model_name="credit_v2",
        prediction=0.85,
        confidence=0.92,
        feature_1=1.23,
        feature_2=4.56,
        predicted_at=datetime.now(timezone.utc),
    )
    producer.insert(record) #(1)

from scouter.bifrost import DatasetClient

client = DatasetClient(
    transport=GrpcConfig(server_uri="localhost:50051"),
    table_config=table_config, #(1)
)

records = client.read() #(1)

for record in records[:5]:
    print(f"{record.user_id}: {record.prediction:.2f} (confidence: {record.confidence:.2f})")

# Get a QueryResult (Arrow IPC bytes wrapper)
result = client.sql("SELECT * FROM production.ml.credit_predictions WHERE confidence > 0.9")

# Convert to your preferred format
arrow_table = result.to_arrow() # pyarrow.Table
polars_df = result.to_polars() # polars.DataFrame
pandas_df = result.to_pandas() # pandas.DataFrame

# Aggregation
result = client.sql("""
    SELECT model_name, COUNT(*) as cnt, AVG(confidence) as avg_conf
    FROM production.ml.credit_predictions
    GROUP BY model_name
""")
df = result.to_polars()
print(df)

producer.shutdown() #(1)
'''

UNIFIED = '''
from scouter.bifrost import Bifrost, TableConfig
from scouter import GrpcConfig

bifrost = Bifrost(
    table_config=TableConfig(
        model=PredictionRecord,
        catalog="production",
        schema_name="ml",
        table="credit_predictions",
    ),
    transport=GrpcConfig(server_uri="localhost:50051"),
)

# Write
bifrost.insert(record)
bifrost.flush()

# Read
records = bifrost.read()
result = bifrost.sql("SELECT * FROM production.ml.credit_predictions WHERE confidence > 0.9")

# Access underlying clients for the full API
bifrost.producer.register()
bifrost.client.list_datasets()

bifrost.shutdown()
'''


def run(code: str, namespace: dict) -> dict:
    exec(compile(textwrap.dedent(code), "<documented example>", "exec", dont_inherit=True), namespace)
    return namespace


def test_quickstart_runs_unchanged(server_50051, capsys):
    started = datetime.now(timezone.utc)
    ns = run(QUICKSTART, {"__name__": "quickstart"})
    finished = datetime.now(timezone.utc)
    out = capsys.readouterr().out.splitlines()

    config = ns["table_config"]
    assert out[0] == "production.ml.credit_predictions"
    assert out[1] == config.fingerprint_str and len(out[1]) == 32

    # read(): 5,000 validated models, exactly the ones inserted.
    records = ns["records"]
    model = ns["PredictionRecord"]
    assert len(records) == 5000
    assert all(type(r) is model for r in records)
    assert sorted(r.user_id for r in records) == sorted(f"user_{i}" for i in range(5000))
    for r in records:
        assert (r.model_name, r.prediction, r.confidence, r.feature_1, r.feature_2, r.label) == (
            "credit_v2", 0.85, 0.92, 1.23, 4.56, None)
        assert r.predicted_at.tzinfo is not None
        assert started <= r.predicted_at <= finished
    assert out[2:7] == [f"{r.user_id}: 0.85 (confidence: 0.92)" for r in records[:5]]

    # WHERE confidence > 0.9: every record qualifies (confidence is 0.92 for all).
    expected_rows = sum(1 for i in range(5000) if 0.92 > 0.9)
    assert ns["arrow_table"].num_rows == expected_rows
    assert ns["polars_df"].height == expected_rows
    assert len(ns["pandas_df"]) == expected_rows
    assert set(ns["arrow_table"].column_names) >= {
        "user_id", "confidence", "scouter_created_at", "scouter_partition_date", "scouter_batch_id"}

    # GROUP BY model_name.
    df = ns["df"]
    assert df.columns == ["model_name", "cnt", "avg_conf"]
    rows = df.rows()
    assert len(rows) == 1
    assert rows[0][0] == "credit_v2" and rows[0][1] == 5000
    assert rows[0][2] == pytest.approx(0.92)

    # After shutdown every record is accounted as acknowledged.
    stats = ns["producer"].stats()
    assert stats["inserted"] == stats["acknowledged"] == 5000
    assert stats["failed"] == stats["dropped"] == stats["queued"] == stats["in_flight"] == 0
    # 5 full batches of 1,000 each got their own batch id.
    batch_ids = ns["client"].sql(
        "SELECT scouter_batch_id, count(*) AS n FROM production.ml.credit_predictions GROUP BY 1").to_arrow()
    assert sorted(batch_ids.column("n").to_pylist()) == [1000] * 5


def test_unified_client_example_runs_unchanged(server_50051):
    ns = run(SCHEMA, {"__name__": "unified"})
    ns["record"] = ns["PredictionRecord"](
        user_id="user_0", model_name="credit_v2", prediction=0.85, confidence=0.92,
        feature_1=1.23, feature_2=4.56, predicted_at=datetime.now(timezone.utc))
    run(UNIFIED, ns)
    assert ns["records"] == [ns["record"]]
    assert ns["result"].num_rows == 1
    stats = ns["bifrost"].producer.stats()
    assert stats["acknowledged"] == 1
    datasets = ns["bifrost"].client.list_datasets()
    assert [(d["catalog"], d["schema_name"], d["table"]) for d in datasets] == [("production", "ml", "credit_predictions")]
    assert ns["bifrost"].producer.register() == "already_exists"
