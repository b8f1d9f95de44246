"""Several batches of one producer in flight at once: the server stores a batch
only after the earlier one it names (after_sequence), so a later batch that
arrives first never hides the earlier one from exactly-once, and a producer with
max_in_flight > 1 loses and duplicates nothing, also across a server restart."""
from __future__ import annotations

import threading
import time

import grpc
import pyarrow as pa
import pytest

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

import raw_grpc
from conftest import ServerProcess
from test_hardening import Note, ipc, note_batch, note_config, register


def send(server: ServerProcess, cfg: TableConfig, batch: pa.RecordBatch, producer_id: str, sequence: int,
         after: int = 0):
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    return raw_grpc.call(server.uri, "InsertBatch",
                         raw_grpc.insert_request(name, cfg.fingerprint_str, ipc(batch), producer_id, sequence,
                                                 after))


def count(server: ServerProcess, cfg: TableConfig) -> int:
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    return client.sql(f"SELECT count(*) AS n FROM {cfg.catalog}.{cfg.schema_name}.{cfg.table}").to_arrow()["n"][0].as_py()


def test_a_later_batch_waits_for_the_earlier_one_it_names(server):
    cfg = note_config("in_flight_order")
    register(server, cfg)
    results = {}

    def later():
        results["later"] = send(server, cfg, note_batch(cfg, pa.array(["b"] * 5), 100), "p-order", 2, after=1)

    thread = threading.Thread(target=later)
    thread.start()
    time.sleep(0.2)  # the later batch is waiting on the server
    assert thread.is_alive() or results["later"][1] is not None
    _, error = send(server, cfg, note_batch(cfg, pa.array(["a"] * 3), 0), "p-order", 1)
    assert error is None
    thread.join(10)
    assert results["later"][1] is None, results["later"][1]
    # Both stored: the earlier one was not taken for a duplicate of the later one.
    assert count(server, cfg) == 8
    # Retries of either are duplicates now.
    for seq, after in ((1, 0), (2, 1)):
        reply, error = send(server, cfg, note_batch(cfg, pa.array(["x"]), 0), "p-order", seq, after)
        assert error is None
    assert count(server, cfg) == 8


def test_a_batch_whose_predecessor_never_arrives_is_refused_for_retry(server):
    cfg = note_config("in_flight_missing")
    register(server, cfg)
    start = time.monotonic()
    _, error = send(server, cfg, note_batch(cfg, pa.array(["b"] * 2), 0), "p-missing", 2, after=1)
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    assert "has not stored" in error.details()
    assert time.monotonic() - start < 10
    assert count(server, cfg) == 0
    # The earlier one, then the retry of the later one: both stored once.
    assert send(server, cfg, note_batch(cfg, pa.array(["a"]), 0), "p-missing", 1)[1] is None
    assert send(server, cfg, note_batch(cfg, pa.array(["b"] * 2), 0), "p-missing", 2, after=1)[1] is None
    assert count(server, cfg) == 3


@pytest.mark.parametrize("after", [2, 3])
def test_after_sequence_must_name_an_earlier_batch(server, after):
    cfg = note_config("in_flight_bad")
    register(server, cfg)
    _, error = send(server, cfg, note_batch(cfg, pa.array(["a"]), 0), "p-bad", 2, after=after)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_sequence" in error.details()


def test_a_producer_with_batches_in_flight_loses_and_duplicates_nothing(server):
    cfg = TableConfig(Note, catalog="hard", schema_name="tests", table="in_flight_many")
    n = 20_000
    with DatasetProducer(cfg, GrpcConfig(server_uri=server.uri),
                         WriteConfig(batch_size=100, max_in_flight=8, max_queue_rows=n)) as producer:
        for i in range(n):
            producer.insert(Note(text=f"t{i % 7}", n=i))
        producer.flush(timeout=120)
        stats = producer.stats()
    assert stats["acknowledged"] == n and stats["failed"] == 0 and stats["sent_batches"] == n // 100
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    table = client.sql("SELECT count(*) AS rows, count(DISTINCT n) AS distinct_n, min(n) AS lo, max(n) AS hi "
                       "FROM hard.tests.in_flight_many").to_arrow().to_pylist()[0]
    assert table == {"rows": n, "distinct_n": n, "lo": 0, "hi": n - 1}


def test_batches_in_flight_across_a_server_restart_arrive_exactly_once(tmp_path):
    srv = ServerProcess(tmp_path / "data")
    cfg = TableConfig(Note, catalog="hard", schema_name="tests", table="in_flight_restart")
    n = 30_000
    try:
        producer = DatasetProducer(cfg, GrpcConfig(server_uri=srv.uri),
                                   WriteConfig(batch_size=50, max_in_flight=8, max_queue_rows=n))
        producer.register()
        for i in range(n // 2):
            producer.insert(Note(text="a", n=i))
        srv.kill()  # kill -9 with batches in flight
        for i in range(n // 2, n):
            producer.insert(Note(text="b", n=i))
        srv = ServerProcess(tmp_path / "data", port=srv.port)
        producer.flush(timeout=120)
        stats = producer.stats()
        producer.shutdown()
        assert stats["acknowledged"] == n and stats["failed"] == 0
        client = DatasetClient(GrpcConfig(server_uri=srv.uri))
        row = client.sql("SELECT count(*) AS rows, count(DISTINCT n) AS distinct_n "
                         "FROM hard.tests.in_flight_restart").to_arrow().to_pylist()[0]
        assert row == {"rows": n, "distinct_n": n}
    finally:
        srv.stop()
