"""Producer life cycle (issue 12, items 3 and 4): exact accounting after recovery and
after shutdown; every blocking call answers Ctrl-C; a finite default block
timeout; exit with undelivered records reports them within the shutdown timeout."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bifrost import BifrostTimeoutError, DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

from models import Event, make_events

TESTS = os.path.dirname(os.path.abspath(__file__))


def cfg(table: str) -> TableConfig:
    return TableConfig(Event, catalog="test", schema_name="lifecycle", table=table, partition_columns=["category"])


@pytest.fixture
def restartable(tmp_path):
    from conftest import ServerProcess

    servers = [ServerProcess(tmp_path / "data", port=0)]
    yield servers
    servers[-1].stop()


def test_last_error_is_cleared_after_recovery(restartable):
    from conftest import ServerProcess

    grpc = GrpcConfig(server_uri=restartable[0].uri)
    producer = DatasetProducer(cfg("recover"), grpc, WriteConfig(scheduled_delay_secs=3600))
    restartable[0].stop()
    producer.insert(make_events(1)[0])
    with pytest.raises(BifrostTimeoutError):
        producer.flush(timeout=1)
    assert "retrying" in producer.stats()["last_error"]
    restartable.append(ServerProcess(restartable[0].data_dir, port=restartable[0].port))
    assert producer.flush(timeout=60) == 1
    stats = producer.stats()
    assert stats["last_error"] is None and stats["acknowledged"] == 1 and stats["failed"] == 0
    producer.shutdown()


def test_rows_sent_across_a_graceful_restart_arrive_once(restartable):
    """A rolling restart under load: the server is stopped with SIGTERM while a
    producer keeps sending (batches in flight are refused during the drain or cut
    with the connection) and started again on the same port. Every row arrives,
    none twice, and the producer reports nothing failed."""
    from conftest import ServerProcess

    first = restartable[0]
    events = make_events(3000)
    producer = DatasetProducer(cfg("restart"), GrpcConfig(server_uri=first.uri),
                               WriteConfig(batch_size=50, scheduled_delay_secs=0.01,
                                           max_queue_rows=10_000, block_timeout_secs=None))
    producer.register()

    def send() -> None:
        for k in range(0, len(events), 25):
            producer.insert_many(events[k:k + 25])
            time.sleep(0.005)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while producer.stats()["acknowledged"] < 500:  # mid-stream
        assert time.monotonic() < deadline, producer.stats()
        time.sleep(0.01)
    first.stop()  # SIGTERM: drain, flush, exit 0
    assert first.proc.returncode == 0
    restartable.append(ServerProcess(first.data_dir, port=first.port))
    sender.join(timeout=120)
    assert not sender.is_alive()
    producer.flush(timeout=120)
    stats = producer.stats()
    assert stats["acknowledged"] == len(events) and stats["failed"] == 0 and stats["dropped"] == 0
    producer.shutdown()
    with DatasetClient(GrpcConfig(server_uri=restartable[-1].uri)) as client:
        got = client.sql("SELECT count(*) AS n, count(DISTINCT user_id) AS users "
                         "FROM test.lifecycle.restart").to_arrow().to_pylist()
    assert got == [{"n": len(events), "users": len(events)}]


def test_flush_after_shutdown_reports_nothing_stale(grpc, unique_table):
    producer = DatasetProducer(cfg(unique_table), grpc, WriteConfig(scheduled_delay_secs=3600))
    events = make_events(5)
    producer.insert(events[0])
    assert producer.flush(timeout=30) == 1
    for e in events[1:]:
        producer.insert(e)
    producer.shutdown()  # delivers the last four: shutdown is the final flush
    assert producer.flush() == 0
    assert producer.stats()["acknowledged"] == 5


def test_default_block_timeout_is_finite():
    assert WriteConfig().block_timeout_secs == 5.0
    assert WriteConfig().shutdown_timeout_secs == 10.0


CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from bifrost import DatasetProducer, GrpcConfig, TableConfig, WriteConfig
    from models import Event, make_events
    cfg = TableConfig(Event, catalog="test", schema_name="lifecycle", table="sigint",
                      partition_columns=["category"])
    producer = DatasetProducer(cfg, GrpcConfig(server_uri={uri!r}),
                               WriteConfig(max_queue_rows=1, block_timeout_secs=None,
                                           scheduled_delay_secs=3600))
    events = make_events(3)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent stops the server, then says go
    producer.insert(events[0])  # fills the bound (max_queue_rows=1); cannot be delivered
    try:
        if {call!r} == "insert":
            print("blocking", flush=True)
            producer.insert(events[1])  # the bound is full and the server is down
        elif {call!r} == "flush":
            print("blocking", flush=True)
            producer.flush()
        else:
            print("blocking", flush=True)
            producer.shutdown(timeout=3600)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        os._exit(0)
    print("returned", flush=True)
    os._exit(3)
""")


@pytest.mark.parametrize("call", ["insert", "flush", "shutdown"])
def test_blocking_calls_raise_keyboard_interrupt(restartable, call):
    uri = restartable[0].uri
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=TESTS, uri=uri, call=call)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        restartable[0].stop()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "blocking"
        time.sleep(0.5)  # inside the blocking call
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=1.0)  # the bound: out within 1 s of Ctrl-C
        assert proc.stdout.read().strip() == "interrupted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exit_with_undelivered_records_reports_them_within_the_shutdown_timeout(restartable):
    uri = restartable[0].uri
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        from bifrost import DatasetProducer, GrpcConfig, TableConfig, WriteConfig
        from models import Event, make_events
        cfg = TableConfig(Event, catalog="test", schema_name="lifecycle", table="atexit",
                          partition_columns=["category"])
        producer = DatasetProducer(cfg, GrpcConfig(server_uri={uri!r}),
                                   WriteConfig(scheduled_delay_secs=3600, shutdown_timeout_secs=1))
        print("ready", flush=True)
        sys.stdin.readline()
        for e in make_events(3):
            producer.insert(e)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        restartable[0].stop()
        _, err = proc.communicate("go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "3 record(s) not yet delivered at exit; waiting up to 1 s" in err, err
    assert "lost data at exit" in err and "3 record(s) failed" in err, err


def test_flush_without_a_timeout_is_bounded_by_the_write_config_and_loses_nothing(restartable):
    """No default configuration blocks forever: flush() without a timeout waits
    WriteConfig.flush_timeout_secs, then raises; the records stay queued and are
    delivered once the server is back."""
    from conftest import ServerProcess

    server = restartable[0]
    port = server.port
    grpc = GrpcConfig(server_uri=server.uri)
    producer = DatasetProducer(cfg("bounded_flush"), grpc,
                               WriteConfig(scheduled_delay_secs=3600, flush_timeout_secs=1.5))
    producer.register()
    server.stop()
    producer.insert_many(make_events(20, seed=5))
    started = time.monotonic()
    with pytest.raises(BifrostTimeoutError):
        producer.flush()
    assert time.monotonic() - started < 10
    assert producer.stats()["failed"] == 0 and producer.stats()["dropped"] == 0
    restartable.append(ServerProcess(server.data_dir, port=port))
    assert producer.flush(timeout=60) == 20
    producer.shutdown()
    assert WriteConfig().flush_timeout_secs == 300.0
