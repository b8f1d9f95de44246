"""The asyncio face under a real event loop: queries run while other coroutines keep
running, many at once; cancelling the awaiting task cancels the server query (the
server's only worker is free again); AsyncDatasetClient, read_async, flush_async."""
from __future__ import annotations

import asyncio
import subprocess

import pytest
from pydantic import BaseModel

from bifrost import (
    AsyncDatasetClient,
    Bifrost,
    DatasetClient,
    DatasetProducer,
    GrpcConfig,
    QueryError,
    TableConfig,
)

SLOW = "SELECT sum(a.range * b.range) AS s FROM range(300000) a, range(300000) b"


class Reading(BaseModel):
    sensor: str
    value: float


async def _ticker(until: "asyncio.Future[object]", ticks: list) -> None:
    while not until.done():
        ticks.append(1)
        await asyncio.sleep(0.01)


def test_loop_keeps_running_during_queries(server):
    client = DatasetClient(GrpcConfig(server_uri=server.uri))

    async def main():
        query = asyncio.ensure_future(client.sql_async(
            "SELECT sum(a.range * b.range) AS s FROM range(3000) a, range(3000) b"))
        ticks: list = []
        await asyncio.gather(query, _ticker(query, ticks))
        # the ticker ran while the query was pending: the loop was never blocked
        return query.result(), len(ticks)

    result, ticks = asyncio.run(main())
    assert ticks >= 1
    n = 3000
    assert result.to_arrow().column("s")[0].as_py() == (n * (n - 1) // 2) ** 2


def test_many_concurrent_coroutines(server):
    client = DatasetClient(GrpcConfig(server_uri=server.uri))

    async def one(k: int) -> int:
        result = await client.sql_async("SELECT ? * 2 AS x", [k])
        return result.to_arrow().column("x")[0].as_py()

    async def main():
        return await asyncio.gather(*(one(k) for k in range(20)))

    assert asyncio.run(main()) == [2 * k for k in range(20)]


def test_async_errors_raise_in_the_coroutine(server):
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    with pytest.raises(QueryError):
        asyncio.run(client.sql_async("SELEC 1"))


def test_cancelling_the_task_cancels_the_server_query(tmp_path):
    from conftest import server_binary

    log = open(tmp_path / "async.log", "wb")
    # One worker: a query left running on the server would block the next call.
    proc = subprocess.Popen([str(server_binary()), "--port", "0", "--data-dir", str(tmp_path / "data"),
                             "--workers", "1", "--query-timeout", "600"], stdout=subprocess.PIPE, stderr=log)
    try:
        port = int(proc.stdout.readline().decode().split(":")[-1].split()[0])
        client = DatasetClient(GrpcConfig(server_uri=f"localhost:{port}", timeout_secs=60))

        async def main():
            task = asyncio.ensure_future(client.sql_async(SLOW))
            ticks: list = []
            ticker = asyncio.ensure_future(_ticker(task, ticks))
            while len(ticks) < 30:  # let the query reach the server
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await ticker
            # the single worker is free again: this answers long before the 600 s limit
            result = await client.sql_async("SELECT 11 AS x")
            return result.to_arrow().column("x")[0].as_py()

        assert asyncio.run(main()) == 11
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
        log.close()


def test_async_client_read_and_flush(grpc, unique_table):
    cfg = TableConfig(Reading, "test", "async_face", unique_table)

    async def main():
        with Bifrost(cfg, grpc) as bf:
            bf.insert_many([Reading(sensor=f"s{i % 3}", value=i / 2) for i in range(50)])
            assert await bf.flush_async() == 50
            assert await bf.producer.flush_async() == 0
            async with await AsyncDatasetClient.connect(grpc, cfg) as client:
                rows = await client.read(where="sensor = ?", params=["s1"])
                assert sorted(r.value for r in rows) == sorted(i / 2 for i in range(50) if i % 3 == 1)
                assert all(isinstance(r, Reading) for r in rows)
                assert len(await bf.read_async(limit=7)) == 7
                described = await client.describe_dataset("test", "async_face", unique_table)
                assert described["table"] == unique_table
                assert any(t["table"] == unique_table for t in await client.list_datasets())
                result = await client.sql("SELECT count(*) AS n FROM test.async_face." + unique_table)
                assert result.to_arrow().column("n")[0].as_py() == 50

    asyncio.run(main())


def test_producer_flush_async(grpc, unique_table):
    cfg = TableConfig(Reading, "test", "async_face", unique_table)

    async def main():
        with DatasetProducer(cfg, grpc) as producer:
            producer.insert(Reading(sensor="a", value=1.0))
            return await producer.flush_async(timeout=30)

    assert asyncio.run(main()) == 1
