"""DatasetProducer / Bifrost end to end against the real server: flush semantics,
stats accounting, bulk inserts, backpressure, shutdown and exit behaviour."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import polars as pl
import pyarrow as pa
import pytest

from bifrost import (
    Bifrost,
    DatasetClient,
    DatasetProducer,
    ProducerClosedError,
    QueueFullError,
    SchemaError,
    TableConfig,
    WriteConfig,
)

from models import Event, make_events


def config(table: str) -> TableConfig:
    return TableConfig(Event, catalog="test", schema_name="producer", table=table, partition_columns=["category"])


def count_rows(grpc, cfg: TableConfig) -> int:
    client = DatasetClient(transport=grpc)
    return client.sql(f"SELECT count(*) AS n FROM {cfg.fqn}").to_arrow().column("n")[0].as_py()


def assert_accounted(stats: dict) -> None:
    assert stats["inserted"] == (stats["acknowledged"] + stats["queued"] + stats["in_flight"]
                                 + stats["dropped"] + stats["failed"])


def test_flush_makes_rows_visible_and_returns_count(grpc, unique_table):
    cfg = config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=100, scheduled_delay_secs=3600))
    events = make_events(250)
    for e in events:
        producer.insert(e)
    assert producer.flush(timeout=30) == 250
    assert count_rows(grpc, cfg) == 250  # read-your-writes, also from another client
    stats = producer.stats()
    assert stats["acknowledged"] == 250 and stats["sent_batches"] == 3
    assert_accounted(stats)
    assert producer.flush() == 0
    producer.shutdown()
    rows = DatasetClient(grpc, cfg).read()
    assert sorted(rows, key=lambda e: e.user_id) == events


def test_scheduled_delay_sends_without_flush(grpc, unique_table):
    import time

    cfg = config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=0.2))
    producer.insert(make_events(1)[0])
    deadline = time.monotonic() + 10
    while producer.stats()["acknowledged"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert producer.stats()["acknowledged"] == 1
    producer.shutdown()


def test_insert_many_and_insert_arrow(grpc, unique_table):
    cfg = config(unique_table)
    events = make_events(60)
    with DatasetProducer(cfg, grpc) as producer:
        assert producer.insert_many(events[:20]) == 20
        rows = [e.model_dump(mode="python") for e in events[20:40]]
        assert producer.insert_arrow(pa.Table.from_pylist(rows)) == 20
        frame = pl.DataFrame([e.model_dump(mode="json") for e in events[40:]])
        assert producer.insert_arrow(frame) == 20
        assert producer.flush() == 60
    assert sorted(DatasetClient(grpc, cfg).read(), key=lambda e: e.user_id) == events


def test_insert_arrow_rejects_unknown_columns(grpc, unique_table):
    producer = DatasetProducer(config(unique_table), grpc)
    with pytest.raises(SchemaError, match="bogus"):
        producer.insert_arrow(pa.table({"bogus": [1]}))
    producer.shutdown()


def test_insert_type_checks(grpc, unique_table):
    producer = DatasetProducer(config(unique_table), grpc)
    with pytest.raises(TypeError, match="Event"):
        producer.insert({"user_id": "x"})
    with pytest.raises(TypeError):
        producer.insert_many([make_events(1)[0], "not a record"])
    producer.shutdown()


def test_shutdown_is_idempotent_and_insert_after_raises(grpc, unique_table):
    cfg = config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(scheduled_delay_secs=3600))
    producer.insert_many(make_events(10))
    producer.shutdown()  # flushes
    assert count_rows(grpc, cfg) == 10
    producer.shutdown()
    with pytest.raises(ProducerClosedError) as info:
        producer.insert(make_events(1)[0])
    assert isinstance(info.value, RuntimeError)
    stats = producer.stats()
    assert stats["inserted"] == stats["acknowledged"] == 10


def test_block_backpressure_waits_for_room(grpc, unique_table):
    # The thread sends batches of 10 as soon as they fill, so a queue of 20 never
    # refuses; every one of the 500 records arrives.
    cfg = config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=10, max_queue_rows=20,
                                                      block_timeout_secs=30))
    producer.insert_many(make_events(500))
    producer.shutdown()
    assert producer.stats()["acknowledged"] == 500
    assert count_rows(grpc, cfg) == 500


def test_bifrost_unified_client(grpc, unique_table):
    cfg = config(unique_table)
    events = make_events(30)
    with Bifrost(cfg, grpc, WriteConfig(batch_size=7)) as bf:
        bf.insert(events[0])
        bf.insert_many(events[1:])
        assert bf.flush() == 30
        assert sorted(bf.read(), key=lambda e: e.user_id) == events
        assert bf.read(limit=5).__len__() == 5
        assert bf.sql(f"SELECT count(*) AS n FROM {cfg.fqn}").to_arrow().column("n")[0].as_py() == 30
        assert bf.register() == "already_exists"
        assert bf.describe_dataset("test", "producer", unique_table)["fingerprint"] == cfg.fingerprint_str
        assert isinstance(bf.producer, DatasetProducer) and isinstance(bf.client, DatasetClient)
    with pytest.raises(ProducerClosedError):
        bf.insert(events[0])


def test_unflushed_records_are_delivered_at_interpreter_exit(server, grpc, unique_table, tmp_path):
    script = tmp_path / "exit.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from bifrost import DatasetProducer, GrpcConfig, TableConfig, WriteConfig
        from models import Event, make_events
        cfg = TableConfig(Event, catalog="test", schema_name="producer", table={unique_table!r})
        producer = DatasetProducer(cfg, GrpcConfig(server_uri={server.uri!r}),
                                   WriteConfig(batch_size=1000, scheduled_delay_secs=3600))
        producer.insert_many(make_events(123))
        # no flush, no shutdown: the atexit hook must deliver the records
    """))
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    assert count_rows(grpc, TableConfig(Event, "test", "producer", unique_table)) == 123


def test_write_config_validation():
    for kwargs in ({"batch_size": 0}, {"scheduled_delay_secs": 0}, {"scheduled_delay_secs": -1},
                   {"max_queue_rows": 0}, {"backpressure": "sometimes"}, {"block_timeout_secs": 0}):
        with pytest.raises(ValueError):
            WriteConfig(**kwargs)
    with pytest.raises(TypeError):
        WriteConfig(batch_size=1.5)
    assert WriteConfig(scheduled_delay_secs=0.5).scheduled_delay_secs == 0.5
    wc = WriteConfig()
    assert (wc.batch_size, wc.scheduled_delay_secs, wc.backpressure) == (1000, 30, "block")


def test_server_restart_while_inserting_loses_and_duplicates_nothing(tmp_path):
    """The producer keeps accepting inserts while its server restarts, resends what
    was not acknowledged, and the server applies each batch once (producer id +
    sequence recorded as Delta txn actions)."""
    import threading
    import time

    from bifrost import GrpcConfig
    from conftest import ServerProcess

    data_dir = tmp_path / "data"
    first = ServerProcess(data_dir, port=0)
    port = first.port
    grpc = GrpcConfig(server_uri=first.uri)
    cfg = config("restart")
    events = make_events(3000, seed=3)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=100, scheduled_delay_secs=0.05))
    stop_at = threading.Event()

    def insert_all():
        for i, e in enumerate(events):
            producer.insert(e)
            if i == 1000:
                stop_at.set()
            if i % 100 == 0:
                time.sleep(0.01)

    inserter = threading.Thread(target=insert_all)
    inserter.start()
    stop_at.wait(30)
    first.stop()  # mid-ingest: some batches acknowledged, some in flight, more queued
    second = ServerProcess(data_dir, port=port)
    try:
        inserter.join(60)
        assert producer.flush(timeout=120) >= 0
        stats = producer.stats()
        assert stats["acknowledged"] == len(events) and stats["failed"] == 0
        assert_accounted(stats)
        producer.shutdown()
        rows = DatasetClient(GrpcConfig(server_uri=second.uri)).sql(
            f"SELECT user_id FROM {cfg.fqn}").to_arrow().column("user_id").to_pylist()
        assert len(rows) == len(events)  # nothing lost
        assert sorted(rows) == sorted(e.user_id for e in events)  # nothing twice
    finally:
        second.stop()


@pytest.fixture
def restartable(tmp_path):
    """A private server that a test may stop and start again on the same port."""
    from conftest import ServerProcess

    servers = [ServerProcess(tmp_path / "data", port=0)]
    yield servers
    servers[-1].stop()


def _restart(servers):
    from conftest import ServerProcess

    servers.append(ServerProcess(servers[0].data_dir, port=servers[0].port))


def _restart_and_deliver(servers, producer, cfg, expected: int) -> None:
    """Starts the server again; the producer delivers exactly the expected rows."""
    from bifrost import GrpcConfig

    _restart(servers)
    assert producer.flush(timeout=60) == expected
    producer.shutdown()
    assert count_rows(GrpcConfig(server_uri=servers[-1].uri), cfg) == expected


def test_raise_policy_with_the_server_down(restartable):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    cfg = config("raise_down")
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600,
                                                      max_queue_rows=5, backpressure="raise"))
    restartable[0].stop()
    accepted = 0
    with pytest.raises(QueueFullError):
        for e in make_events(50):
            producer.insert(e)
            accepted += 1
    assert accepted == 5  # the bound counts queued and in-flight records alike
    assert producer.stats()["dropped"] == 0
    _restart_and_deliver(restartable, producer, cfg, accepted)


def test_flush_timeout_raises_and_nothing_is_lost(restartable):
    """flush(timeout) raises TimeoutError while the server is away; the records
    stay queued and a later flush delivers them once."""
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    cfg = config("flush_timeout")
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=10, scheduled_delay_secs=3600))
    restartable[0].stop()
    for e in make_events(25):
        producer.insert(e)
    with pytest.raises(TimeoutError):
        producer.flush(timeout=0.5)
    stats = producer.stats()
    assert stats["acknowledged"] == 0 and stats["failed"] == 0 and stats["dropped"] == 0
    assert stats["inserted"] == 25 == stats["queued"] + stats["in_flight"]
    _restart_and_deliver(restartable, producer, cfg, 25)


def test_insert_arrow_refused_part_way_says_how_many_rows_were_queued(restartable):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    cfg = config("arrow_part_way")
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600,
                                                      max_queue_rows=100_000, backpressure="raise"))
    restartable[0].stop()
    rows = pa.Table.from_pylist([e.model_dump() for e in make_events(1)] * 150_000)
    with pytest.raises(QueueFullError) as refused:
        producer.insert_arrow(rows)  # goes in chunks of 65536 rows; the second does not fit
    assert refused.value.rows_queued == 65536
    assert producer.stats()["inserted"] == 65536
    _restart_and_deliver(restartable, producer, cfg, 65536)


def test_byte_bound_with_the_server_down(restartable):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    cfg = config("bytes_down")
    events = make_events(50)
    record_bytes = len(events[0].model_dump_json())
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600,
                                                      max_queue_rows=1000, max_queue_bytes=10 * record_bytes,
                                                      backpressure="raise"))
    restartable[0].stop()
    accepted = 0
    with pytest.raises(QueueFullError, match="max_queue_bytes"):
        for e in events:
            producer.insert(e)
            accepted += 1
    # About ten JSON records' bytes: the binary rows counted are smaller than the JSON.
    assert 7 <= accepted <= 30
    _restart_and_deliver(restartable, producer, cfg, accepted)


def test_drops_are_reported_to_logging(restartable, caplog):
    import logging
    import re
    import time

    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    producer = DatasetProducer(config("drop_log"), grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600,
                                                                    max_queue_rows=5,
                                                                    backpressure="drop_newest"))
    restartable[0].stop()
    caplog.set_level(logging.INFO, logger="bifrost")
    for e in make_events(20):
        producer.insert(e)
    assert producer.stats()["dropped"] == 15
    deadline = time.monotonic() + 10
    while "dropped" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = caplog.text
    _restart(restartable)
    assert producer.flush(timeout=60) == 5
    producer.shutdown()
    assert re.search(r"drop_log: dropped \d+ record\(s\) .*drop_newest; \d+ in total", seen), seen


def test_drop_newest_policy_with_the_server_down(restartable):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    cfg = config("drop_down")
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600,
                                                      max_queue_rows=5, backpressure="drop_newest"))
    restartable[0].stop()
    for e in make_events(40):
        producer.insert(e)  # never raises, never blocks
    stats = producer.stats()
    assert stats["inserted"] == 40 and 30 <= stats["dropped"] <= 35
    assert_accounted(stats)
    _restart(restartable)
    producer.flush(timeout=60)
    producer.shutdown()
    stats = producer.stats()
    assert stats["acknowledged"] == 40 - stats["dropped"]
    assert count_rows(GrpcConfig(server_uri=restartable[-1].uri), cfg) == stats["acknowledged"]


def test_block_policy_times_out_with_the_server_down(restartable):
    from bifrost import BifrostTimeoutError, GrpcConfig

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    cfg = config("block_down")
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600,
                                                      max_queue_rows=5, backpressure="block",
                                                      block_timeout_secs=0.5))
    restartable[0].stop()
    accepted = 0
    with pytest.raises(BifrostTimeoutError):
        for e in make_events(50):
            producer.insert(e)
            accepted += 1
    assert 5 <= accepted <= 10
    _restart_and_deliver(restartable, producer, cfg, accepted)
