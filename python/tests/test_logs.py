"""Server logs: --log-format json writes one JSON object per line with time, level,
component, table and producer; flush and compaction lines carry rows, files, bytes
and duration; --log-level filters; text lines name the component and table; bad
values are usage errors."""
from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime

import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

from conftest import ServerProcess, server_binary


class Reading(BaseModel):
    sensor: str
    value: float


def write_and_compact(uri: str, table: str, batches: int = 3) -> None:
    cfg = TableConfig(Reading, "logs", "json", table)
    with DatasetProducer(cfg, GrpcConfig(uri)) as producer:
        for b in range(batches):
            producer.insert_many([Reading(sensor=f"s{b}", value=float(i)) for i in range(10)])
            producer.flush()
            with DatasetClient(GrpcConfig(uri)) as client:
                client.maintain_dataset("logs", "json", table, ["flush"])
    with DatasetClient(GrpcConfig(uri)) as client:
        client.maintain_dataset("logs", "json", table, ["optimize"])


def parsed_lines(text: str):
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_logs_one_object_per_line_with_fields(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--log-format", "json", "--compact-min-files", "2"])
    try:
        write_and_compact(srv.uri, "t1")
    finally:
        srv.stop()
    assert srv.proc.returncode == 0
    records = parsed_lines(srv.log_path.read_text())
    for r in records:
        assert set(r) >= {"time", "level", "component", "table", "producer", "msg"}
        assert r["level"] in ("DEBUG", "INFO", "WARN", "ERROR")
        datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert r["component"] and "/" not in r["component"]
    flushes = [r for r in records if "flushed" in r["msg"]]
    assert len(flushes) == 3
    for r in flushes:
        assert r["table"] == "logs.json.t1" and r["component"] == "table_writer"
        fields = dict(re.findall(r"(\w+)=([\d.]+)", r["msg"]))
        assert fields["rows"] == "10" and fields["files"] == "1"
        assert int(fields["bytes"]) > 0 and "duration_ms" in fields
    compactions = [r for r in records if "compacted" in r["msg"]]
    assert len(compactions) == 1 and compactions[0]["table"] == "logs.json.t1"
    assert re.search(r"files=3 into files=1 rows=30 bytes=\d+ .*duration_ms=\d+", compactions[0]["msg"])
    registered = [r for r in records if r["msg"].startswith("registered table")]
    assert registered and registered[0]["component"] == "service" and registered[0]["table"] == "logs.json.t1"
    assert any(r["msg"].startswith("stopped") for r in records)


def test_json_lines_name_the_producer_and_escape_what_clients_send(tmp_path):
    """A refused batch is logged with its table and producer; quotes, control bytes
    and non-ASCII text from the request stay valid JSON."""
    import raw_grpc

    srv = ServerProcess(tmp_path / "data", args=["--log-format", "json"])
    try:
        write_and_compact(srv.uri, "t2", batches=1)
        name = raw_grpc.table_name("logs", "json", "t2")
        request = raw_grpc.insert_request(name, 'fp"\\\x01\u00e9\u2603', b"not ipc", producer_id="prod \"7\" \u00e9", sequence=1)
        _, error = raw_grpc.call(srv.uri, "InsertBatch", request)
        assert error is not None
    finally:
        srv.stop()
    records = parsed_lines(srv.log_path.read_text())
    rejected = [r for r in records if r["msg"].startswith("InsertBatch rejected")]
    assert len(rejected) == 1
    assert rejected[0]["table"] == "logs.json.t2" and rejected[0]["level"] == "WARN"
    assert rejected[0]["producer"] == 'prod "7" \u00e9'
    assert 'fp"\\\x01\u00e9\u2603' in rejected[0]["msg"]


def test_grpc_core_lines_go_through_the_same_logger(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--log-format", "json", "--log-level", "debug"])
    srv.stop()
    records = parsed_lines(srv.log_path.read_text())
    assert any(r["component"] == "grpc" and r["level"] == "DEBUG" for r in records)
    srv = ServerProcess(tmp_path / "data2", args=["--log-format", "json"])
    srv.stop()
    assert not any(r["component"] == "grpc" for r in parsed_lines(srv.log_path.read_text()))


def test_log_level_filters_and_text_names_component_and_table(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--log-level", "warn"])
    try:
        write_and_compact(srv.uri, "t3", batches=1)
    finally:
        srv.stop()
    assert " INFO " not in srv.log_path.read_text()
    srv = ServerProcess(tmp_path / "data2", args=["--log-format", "text"])
    try:
        write_and_compact(srv.uri, "t4", batches=1)
    finally:
        srv.stop()
    text = srv.log_path.read_text()
    assert re.search(r"^\S+Z INFO  table_writer table=logs\.json\.t4 table logs\.json\.t4: flushed rows=10 ",
                     text, re.M), text


@pytest.mark.parametrize("flag,value", [("--log-format", "xml"), ("--log-format", ""), ("--log-level", "loud"),
                                        ("--log-level", "INFO\x01")])
def test_bad_log_options_are_usage_errors(tmp_path, flag, value):
    proc = subprocess.run([str(server_binary()), "--data-dir", str(tmp_path), "--port", "0", flag, value],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "invalid value" in proc.stderr and flag in proc.stderr
