"""Bifrost quickstart: define a schema, write 5,000 records through the background
producer, read them back as validated models and run SQL aggregations.

Run against a server: BIFROST_GRPC_URI=localhost:50051 python examples/quickstart.py
(`make demo` starts a server on a free port and runs this script)."""
from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone
from typing import Optional

from pydantic import BaseModel

from scouter import GrpcConfig
from scouter.bifrost import DatasetClient, DatasetProducer, TableConfig, WriteConfig


class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: datetime


def main() -> None:
    uri = os.environ.get("BIFROST_GRPC_URI", "localhost:50051")
    transport = GrpcConfig(server_uri=uri)

    table_config = TableConfig(
        model=PredictionRecord,
        catalog="production",
        schema_name="ml",
        table="credit_predictions",
        partition_columns=["model_name"],
    )
    print(f"table        {table_config.fqn}")
    print(f"fingerprint  {table_config.fingerprint_str}")

    producer = DatasetProducer(
        table_config=table_config,
        transport=transport,
        write_config=WriteConfig(batch_size=1000, scheduled_delay_secs=30),
    )

    client = DatasetClient(transport=transport, table_config=table_config)
    # Rows already there (a rerun against the same server) count towards the totals.
    expected = {
        name: (cnt, total)
        for name, cnt, total in client.sql(
            f"SELECT model_name, count(*), sum(confidence) FROM {table_config.fqn} GROUP BY 1"
        ).to_polars().rows()
    }
    before = sum(n for n, _ in expected.values())

    rng = random.Random(42)
    start = time.perf_counter()
    for i in range(5000):
        model_name = rng.choice(["credit_v1", "credit_v2"])
        confidence = round(rng.uniform(0.5, 1.0), 4)
        record = PredictionRecord(
            user_id=f"user_{i}",
            model_name=model_name,
            prediction=round(rng.random(), 4),
            confidence=confidence,
            feature_1=rng.gauss(0, 1),
            feature_2=rng.gauss(5, 2),
            label=None if i % 3 else "approved",
            predicted_at=datetime.now(timezone.utc),
        )
        producer.insert(record)
        n, total = expected.get(model_name, (0, 0.0))
        expected[model_name] = (n + 1, total + confidence)
    insert_secs = time.perf_counter() - start
    flushed = producer.flush()
    print(f"inserted     5000 records in {insert_secs * 1e3:.1f} ms "
          f"({insert_secs / 5000 * 1e6:.2f} us/insert); flush acknowledged {flushed}")

    records = client.read()
    print(f"read back    {len(records)} validated {PredictionRecord.__name__} objects")
    assert len(records) == before + 5000
    for record in sorted(records, key=lambda r: int(r.user_id.split('_')[1]))[:3]:
        print(f"  {record.user_id}: {record.prediction:.2f} (confidence: {record.confidence:.2f})")

    result = client.sql(f"SELECT count(*) AS n FROM {table_config.fqn} WHERE confidence > 0.9")
    print(f"confidence > 0.9: {result.to_arrow().column('n')[0].as_py()} rows")

    result = client.sql(f"""
        SELECT model_name, COUNT(*) AS cnt, AVG(confidence) AS avg_conf
        FROM {table_config.fqn}
        GROUP BY model_name
        ORDER BY model_name
    """)
    print(result.to_polars())
    for model_name, cnt, avg_conf in result.to_polars().rows():
        n, total = expected[model_name]
        assert cnt == n and abs(avg_conf - total / n) < 1e-9, (model_name, cnt, avg_conf)
    print("aggregation matches the values computed while inserting")

    producer.shutdown()
    print(f"producer stats: {producer.stats()}")


if __name__ == "__main__":
    main()
