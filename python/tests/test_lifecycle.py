"""Server lifecycle: SIGTERM drains (no new calls, running ones finish within
--shutdown-timeout, tails flushed to Parquet, exit 0), the drain ends at once when
no call is running even with idle clients connected, a second signal exits at once
with the acknowledged rows kept by the WAL, and --version names the DuckDB and gRPC
it runs with."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from deltalake import DeltaTable
from pydantic import BaseModel

from bifrost import BifrostError, DatasetClient, DatasetProducer, GrpcConfig, TableConfig

from conftest import ServerProcess, server_binary

# Seconds of work and a one-row answer: a call that is running, not streaming, at SIGTERM.
LONG_QUERY = "SELECT count(*) AS n FROM range(12000) a, range(12500) b WHERE hash(a.range + b.range) >= 0"


class Item(BaseModel):
    id: int
    label: str


def insert_items(uri: str, n: int) -> TableConfig:
    cfg = TableConfig(Item, "life", "cycle", "items")
    with DatasetProducer(cfg, GrpcConfig(uri)) as producer:
        producer.insert_many([Item(id=i, label=f"l{i}") for i in range(n)])
        assert producer.flush() == n
    return cfg


def refused_new_call(uri: str) -> bool:
    try:
        with DatasetClient(GrpcConfig(uri, timeout_secs=2)) as client:
            client.list_datasets()
    except BifrostError:
        return True
    return False


def test_version_names_duckdb_and_grpc():
    out = subprocess.run([str(server_binary()), "--version"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("bifrost-server ")
    assert lines[1].startswith("duckdb v1.")
    assert lines[2].startswith("grpc core ")


@pytest.mark.parametrize("value", ["-1", "abc", "", "nan", "100000000"])
def test_bad_shutdown_timeout_is_a_usage_error(tmp_path, value):
    proc = subprocess.run([str(server_binary()), "--data-dir", str(tmp_path), "--port", "0",
                           "--shutdown-timeout", value], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "invalid value" in proc.stderr and "--shutdown-timeout" in proc.stderr


def test_sigterm_lets_a_running_query_finish_refuses_new_calls_and_flushes(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--shutdown-timeout", "120", "--flush-interval", "3600"])
    try:
        insert_items(srv.uri, 100)
        with DatasetClient(GrpcConfig(srv.uri)) as client:
            assert client.describe_dataset("life", "cycle", "items")["tail_rows"] == 100
            answer = {}
            worker = threading.Thread(target=lambda: answer.update(
                rows=client.sql(LONG_QUERY).to_arrow().to_pylist()))
            worker.start()
            while client.server_stats()["queries_running"] == 0:  # the long query is running now
                assert worker.is_alive()
            srv.proc.send_signal(signal.SIGTERM)
            while not refused_new_call(srv.uri):
                pass
            worker.join(timeout=300)
        assert answer["rows"] == [{"n": 150_000_000}]  # finished during the drain, not cancelled
        assert srv.proc.wait(timeout=120) == 0
    finally:
        srv.stop()
    log = srv.log_path.read_text()
    assert "draining" in log and "calls drained" in log
    # The tail went to Parquet at shutdown: a Delta reader sees all 100 rows without the server.
    table = DeltaTable(str(tmp_path / "data" / "life" / "cycle" / "items"))
    assert table.to_pyarrow_table().num_rows == 100


# A client process that made one query and then stays connected and idle until its
# stdin closes: the real DatasetClient, whose gRPC channel nobody polls meanwhile.
IDLE_CLIENT = """
import sys
from bifrost import DatasetClient, GrpcConfig
client = DatasetClient(GrpcConfig(sys.argv[1]))
n = client.sql("SELECT count(*) AS n FROM life.cycle.items").to_arrow().column("n")[0].as_py()
print(n, flush=True)
sys.stdin.read()
client.close()
"""


def test_sigterm_with_idle_clients_connected_drains_at_once_and_flushes(tmp_path):
    # gRPC core's shutdown waits for every connection to close, and an idle gRPC
    # client reads the server's GOAWAY only at its backup poll, every 5 s: the drain
    # took 4-5 s here before it ended at the last running call.
    srv = ServerProcess(tmp_path / "data", args=["--shutdown-timeout", "30", "--flush-interval", "3600"])
    clients = []
    try:
        cfg = TableConfig(Item, "life", "cycle", "items")
        with DatasetProducer(cfg, GrpcConfig(srv.uri)) as producer:
            producer.insert_many([Item(id=i, label=f"l{i}") for i in range(300)])
            assert producer.flush() == 300  # acknowledged, still in the tail (no flush for an hour)
            clients = [subprocess.Popen([sys.executable, "-c", IDLE_CLIENT, srv.uri], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env={**os.environ}) for _ in range(3)]
            for client in clients:
                assert client.stdout.readline().strip() == b"300"
            with DatasetClient(GrpcConfig(srv.uri)) as client:
                assert client.describe_dataset("life", "cycle", "items")["tail_rows"] == 300
            assert all(client.poll() is None for client in clients)  # connected and idle
            signalled = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(timeout=60) == 0
            took = time.monotonic() - signalled
    finally:
        for client in clients:
            client.stdin.close()
            client.wait(timeout=60)
        srv.stop()
    assert took < 3.0, f"exit {took:.2f} s after SIGTERM with no call running; log:\n{srv.log()}"
    assert "calls drained" in srv.log_path.read_text()
    table = DeltaTable(str(tmp_path / "data" / "life" / "cycle" / "items")).to_pyarrow_table()
    assert sorted(table.column("id").to_pylist()) == list(range(300))


def test_shutdown_timeout_cancels_calls_still_running(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--shutdown-timeout", "0.5"])
    try:
        with DatasetClient(GrpcConfig(srv.uri)) as client:
            result = client.sql("SELECT range AS i, repeat('x', 200) AS s FROM range(20000000)")
            reader = result.to_reader()
            reader.read_next_batch()
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(timeout=120) == 0  # the client stopped reading; the server did not wait
            with pytest.raises(BifrostError):
                for _ in reader:
                    pass
    finally:
        srv.stop()


def test_second_signal_exits_at_once_and_the_wal_keeps_acknowledged_rows(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--shutdown-timeout", "600", "--flush-interval", "3600"])
    try:
        insert_items(srv.uri, 250)
        with DatasetClient(GrpcConfig(srv.uri)) as client:
            result = client.sql("SELECT range AS i, repeat('x', 200) AS s FROM range(20000000)")
            result.to_reader().read_next_batch()  # a call that would hold the drain for 600 s
            srv.proc.send_signal(signal.SIGTERM)
            while not refused_new_call(srv.uri):
                pass
            srv.proc.send_signal(signal.SIGINT)
            assert srv.proc.wait(timeout=60) == 128 + signal.SIGINT
            result.close()
    finally:
        srv.stop()
    assert "exiting now" in srv.log_path.read_text()
    again = ServerProcess(tmp_path / "data")
    try:
        with DatasetClient(GrpcConfig(again.uri)) as client:
            n = client.sql("SELECT count(*) AS n FROM life.cycle.items").to_arrow().column("n")[0].as_py()
        assert n == 250
    finally:
        again.stop()
    assert again.proc.returncode == 0
