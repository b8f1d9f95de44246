"""Producer events reach the application (issue 12, item 6): the "bifrost" logger
gets outage, recovery and failure records with the table and counts, during a real
server outage; WriteConfig(on_error=...) is called with count, error and table on
bifrost's event thread, and an exception in it is logged, never fatal."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from pydantic import BaseModel

from bifrost import (BifrostError, DatasetProducer, GrpcConfig, RecordTooLargeError, SchemaError,
                     TableConfig, WriteConfig)


class Item(BaseModel):
    id: int
    text: str


def cfg(table: str) -> TableConfig:
    return TableConfig(Item, catalog="test", schema_name="events", table=table)


@pytest.fixture
def restartable(tmp_path):
    from conftest import ServerProcess

    servers = [ServerProcess(tmp_path / "data", port=0)]
    yield servers
    servers[-1].stop()


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def events_of(caplog, kind: str):
    return [r for r in caplog.records if r.name == "bifrost" and getattr(r, "bifrost_event", None) == kind]


def test_outage_and_recovery_are_logged(restartable, caplog):
    from conftest import ServerProcess

    caplog.set_level(logging.INFO, logger="bifrost")
    grpc = GrpcConfig(server_uri=restartable[0].uri)
    producer = DatasetProducer(cfg("outage"), grpc, WriteConfig(scheduled_delay_secs=3600))
    restartable[0].stop()
    for i in range(3):
        producer.insert(Item(id=i, text="t"))
    with pytest.raises(BifrostError):
        producer.flush(timeout=1)
    assert wait_for(lambda: events_of(caplog, "retrying"))
    retrying = events_of(caplog, "retrying")[0]
    assert retrying.levelno == logging.WARNING
    assert retrying.bifrost_table == "test.events.outage" and retrying.bifrost_count == 3
    assert "test.events.outage" in retrying.getMessage() and "3 records" in retrying.getMessage()
    restartable.append(ServerProcess(restartable[0].data_dir, port=restartable[0].port))
    assert producer.flush(timeout=60) == 3
    assert wait_for(lambda: events_of(caplog, "recovered"))
    recovered = events_of(caplog, "recovered")[0]
    assert recovered.levelno == logging.INFO and recovered.bifrost_count == 3
    assert len(events_of(caplog, "retrying")) == 1  # once per outage, not per attempt
    producer.shutdown()


def test_on_error_is_called_and_its_exceptions_are_logged(grpc, unique_table, caplog):
    caplog.set_level(logging.INFO, logger="bifrost")
    calls = []

    def on_error(count, error, table):
        calls.append((count, error, table, threading.current_thread().name))
        raise RuntimeError("callback bug")

    config = cfg(unique_table)
    producer = DatasetProducer(config, grpc, WriteConfig(scheduled_delay_secs=3600, max_batch_bytes=10_000,
                                                          on_error=on_error))
    with pytest.raises(RecordTooLargeError):
        producer.insert(Item(id=1, text="x" * 20_000))
    producer._core.insert('{"id": 2}')  # a record the table refuses: fails on the sending thread
    producer.insert(Item(id=3, text="ok"))
    with pytest.raises(SchemaError, match="1 record"):
        producer.flush(timeout=30)
    assert wait_for(lambda: len(calls) == 2)
    too_large, failed = sorted(calls, key=lambda c: isinstance(c[1], RecordTooLargeError), reverse=True)
    assert too_large[0] == 1 and isinstance(too_large[1], RecordTooLargeError) and too_large[2] == config.fqn
    assert failed[0] == 1 and isinstance(failed[1], BifrostError) and "text" in str(failed[1])
    assert {c[3] for c in calls} == {"bifrost-events"}
    assert wait_for(lambda: len([r for r in caplog.records if "on_error callback" in r.getMessage()]) == 2)
    assert events_of(caplog, "batch_failed") and events_of(caplog, "record_too_large")
    producer.insert(Item(id=4, text="still delivering"))  # the sender survived the callback's error
    assert producer.flush(timeout=30) == 1
    producer.shutdown()


def test_grpc_core_log_lines_go_to_logging_not_raw_stderr():
    import os
    import re
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import logging, time
        logging.basicConfig(level=logging.DEBUG, format="ROUTED %(name)s %(message)s")
        from bifrost import DatasetClient, GrpcConfig
        client = DatasetClient(transport=GrpcConfig(server_uri="127.0.0.1:1", timeout_secs=1))
        try:
            client.sql("SELECT 1")
        except Exception:
            pass
        time.sleep(1)  # the event thread delivers
    """)
    env = dict(os.environ, GRPC_VERBOSITY="INFO")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert "ROUTED bifrost.grpc gRPC: " in out.stderr, out.stderr
    # gRPC's own format ("I1202 03:35:45.297429 123 file.cc:12] ...") never appears.
    assert not re.search(r"^[IEWD]\d{4} \d\d:\d\d:\d\d", out.stderr, re.M), out.stderr
