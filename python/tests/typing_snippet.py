"""Checked by mypy (``make test-types``), never run: the public API's types as an
application sees them. ``assert_type`` fails the mypy run if an inferred type
drifts (e.g. read() returning list[Any] instead of list[Model])."""
from __future__ import annotations

import asyncio
from typing import List

import pyarrow as pa
from pydantic import BaseModel
from typing_extensions import assert_type

from bifrost import (
    AsyncDatasetClient,
    Bifrost,
    DatasetClient,
    DatasetProducer,
    GrpcConfig,
    QueryResult,
    TableConfig,
    WriteConfig,
)


class Event(BaseModel):
    name: str
    value: float


def sync_use() -> None:
    grpc = GrpcConfig(server_uri="localhost:50051")
    config = TableConfig(Event, catalog="c", schema_name="s", table="t")
    assert_type(config, TableConfig[Event])
    with DatasetClient(grpc, config) as client:
        assert_type(client, DatasetClient[Event])
        rows = client.read(limit=10, where="value > ?", params=[1.0])
        assert_type(rows, List[Event])
        first: Event = rows[0]
        print(first.value + 1.0)
        result = client.sql("SELECT 1")
        assert_type(result, QueryResult)
        reader = result.to_reader()
        assert_type(reader, pa.RecordBatchReader)
        assert_type(result.to_arrow(), pa.Table)
    with Bifrost(config, grpc, WriteConfig(batch_size=10)) as bf:
        assert_type(bf.read(), List[Event])
        bf.insert(Event(name="a", value=1.0))
    producer = DatasetProducer(config, grpc)
    producer.insert(Event(name="b", value=2.0))
    producer.shutdown()


async def async_use() -> None:
    grpc = GrpcConfig(server_uri="localhost:50051")
    config = TableConfig(Event, catalog="c", schema_name="s", table="t")
    async with await AsyncDatasetClient.connect(grpc, config) as client:
        assert_type(await client.read(), List[Event])
        assert_type(await client.sql("SELECT 1"), QueryResult)
    sync_client = DatasetClient(grpc, config)
    assert_type(await sync_client.read_async(), List[Event])
    producer = DatasetProducer(config, grpc)
    assert_type(await producer.flush_async(), int)


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(async_use())
