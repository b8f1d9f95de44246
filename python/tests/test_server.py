"""The server program itself: command line, clean shutdown, and a registry and
tables that survive a restart on the same data directory."""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone

import pytest
from pydantic import BaseModel

from bifrost import (Bifrost, DatasetClient, DatasetProducer, FingerprintMismatchError, GrpcConfig,
                     TableConfig, WriteConfig)
from conftest import ServerProcess, server_binary


class Reading(BaseModel):
    sensor: str
    value: float
    at: datetime


class ReadingV2(BaseModel):
    sensor: str
    value: int
    at: datetime


def test_help_lists_every_flag_with_its_environment_variable():
    out = subprocess.run([str(server_binary()), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag, env in [("--port", "BIFROST_PORT"), ("--data-dir", "BIFROST_DATA_DIR"),
                      ("--host", "BIFROST_HOST"), ("--query-timeout", "BIFROST_QUERY_TIMEOUT")]:
        assert flag in out.stdout and env in out.stdout


def test_bad_flag_is_a_usage_error():
    out = subprocess.run([str(server_binary()), "--port", "not-a-port"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2
    assert "--port" in out.stderr


def test_tables_and_rows_survive_a_restart(tmp_path):
    data_dir = tmp_path / "data"
    config = TableConfig(model=Reading, catalog="plant", schema_name="sensors", table="readings",
                         partition_columns=["sensor"])
    rows = [Reading(sensor=f"s{i % 3}", value=i * 0.5, at=datetime(2026, 1, 1, tzinfo=timezone.utc))
            for i in range(250)]

    first = ServerProcess(data_dir)
    try:
        producer = DatasetProducer(config, GrpcConfig(server_uri=first.uri), WriteConfig(batch_size=100))
        for r in rows:
            producer.insert(r)
        assert producer.flush() == 250
        producer.shutdown()
    finally:
        first.stop()
    assert first.proc.returncode == 0  # SIGTERM is a clean shutdown

    second = ServerProcess(data_dir)
    try:
        transport = GrpcConfig(server_uri=second.uri)
        client = DatasetClient(transport, table_config=config)  # fingerprint check passes
        names = {(d["catalog"], d["schema_name"], d["table"]) for d in client.list_datasets()}
        assert ("plant", "sensors", "readings") in names
        described = client.describe_dataset("plant", "sensors", "readings")
        assert described["num_rows"] == 250
        assert described["fingerprint"] == config.fingerprint_str
        assert described["partition_columns"] == ["sensor"]
        total = client.sql("SELECT count(*) AS n, sum(value) AS s FROM plant.sensors.readings").to_arrow()
        assert total.column("n")[0].as_py() == 250
        assert total.column("s")[0].as_py() == pytest.approx(sum(r.value for r in rows))
        assert sorted(client.read(), key=lambda r: r.value) == rows

        with Bifrost(config, transport) as unified:
            assert unified.register() == "already_exists"
        changed = TableConfig(model=ReadingV2, catalog="plant", schema_name="sensors", table="readings")
        with pytest.raises(FingerprintMismatchError) as info:
            DatasetClient(transport, table_config=changed)
        assert config.fingerprint_str in str(info.value) and changed.fingerprint_str in str(info.value)
    finally:
        second.stop()
    assert second.proc.returncode == 0
