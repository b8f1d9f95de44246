"""A server opening a table from a checkpoint plus the JSON commits after it: the
row count is right and every producer's txn version survives (a resent batch is
still a duplicate), whether the checkpoint was written by this server (read as
typed columns) or by delta-rs, and whether a producer's last txn is in the
checkpoint or only in a later commit. Partition values include null and the
string "NULL", which must stay apart."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import List, Optional

import pyarrow as pa
import pytest
from pydantic import BaseModel

import raw_grpc
from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

from conftest import ServerProcess

deltalake = pytest.importorskip("deltalake")

ARGS = ["--checkpoint-interval", "0", "--maintenance-interval", "0", "--flush-interval", "3600"]


class Reading(BaseModel):
    id: int
    sensor: Optional[str]
    value: float


CFG = TableConfig(Reading, catalog="ckpt", schema_name="open", table="readings", partition_columns=["sensor"])
SENSORS = ["north", None, "NULL"]


def ipc(ids: List[int]) -> bytes:
    schema = CFG.arrow_schema
    columns = {"id": pa.array(ids, pa.int64()),
               "sensor": pa.array([SENSORS[i % len(SENSORS)] for i in ids], pa.string()),
               "value": pa.array([i * 0.5 for i in ids], pa.float64())}
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(columns[field.name].cast(field.type))
        elif pa.types.is_timestamp(field.type):
            arrays.append(pa.array([datetime.datetime(2025, 1, 1)] * len(ids), field.type))
        elif pa.types.is_date(field.type):
            arrays.append(pa.array([datetime.date(2025, 1, 1)] * len(ids), field.type))
        else:
            arrays.append(pa.array(["b1"] * len(ids)).cast(field.type))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return sink.getvalue().to_pybytes()


def send(server: ServerProcess, producer: str, sequence: int, ids: List[int]) -> None:
    name = raw_grpc.table_name(CFG.catalog, CFG.schema_name, CFG.table)
    request = raw_grpc.insert_request(name, CFG.fingerprint_str, ipc(ids), producer_id=producer,
                                      sequence=sequence)
    _, error = raw_grpc.call(server.uri, "InsertBatch", request)
    assert error is None, error


def batch_ids(producer: str, sequence: int) -> List[int]:
    base = {"p-a": 0, "p-b": 1000, "p-c": 2000}[producer] + sequence * 10
    return list(range(base, base + 4))


def register(server: ServerProcess) -> None:
    with DatasetProducer(CFG, GrpcConfig(server_uri=server.uri)) as producer:
        producer.register()


def maintain(server: ServerProcess, *ops: str, retention_hours=None) -> dict:
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    return client.maintain_dataset(CFG.catalog, CFG.schema_name, CFG.table, list(ops), retention_hours)


def rows(server: ServerProcess) -> list:
    """(id, sensor) of every row, duplicates kept."""
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    table = client.sql(f"SELECT id, sensor FROM {CFG.fqn}").to_arrow()
    return sorted(zip(table.column("id").to_pylist(), table.column("sensor").to_pylist()),
                  key=lambda r: r[0])


def expected(batches) -> list:
    return sorted(((i, SENSORS[i % len(SENSORS)]) for producer, sequence in batches
                   for i in batch_ids(producer, sequence)), key=lambda r: r[0])


def commit(server: ServerProcess, batches) -> None:
    for producer, sequence in batches:
        send(server, producer, sequence, batch_ids(producer, sequence))
    maintain(server, "flush")


def resend_all_then_one_new(server: ServerProcess, sent, new) -> None:
    """Every batch sent before is a duplicate after the restart; a new one is not."""
    for producer, sequence in sent:
        send(server, producer, sequence, batch_ids(producer, sequence))
    send(server, *new, batch_ids(*new))
    maintain(server, "flush")


def test_open_from_our_checkpoint_and_later_commits_keeps_rows_and_txns(tmp_path: Path):
    data_dir = tmp_path / "data"
    path = data_dir / CFG.catalog / CFG.schema_name / CFG.table
    server = ServerProcess(data_dir, args=ARGS)
    register(server)
    before = [("p-a", 1), ("p-b", 1), ("p-a", 2), ("p-b", 2), ("p-a", 3)]
    after = [("p-a", 4), ("p-c", 1)]
    try:
        for batch in before:
            commit(server, [batch])
        done = maintain(server, "checkpoint")
        assert done["checkpoint_version"] == done["delta_version"]
        commit(server, after)
        # Nothing before the checkpoint is left: the server must read it.
        assert maintain(server, "cleanup_log", retention_hours=0)["log_files_deleted"] > 0
    finally:
        server.stop()
    assert not (path / "_delta_log" / f"{0:020d}.json").exists()
    sent = before + after
    server = ServerProcess(data_dir, args=ARGS)
    try:
        assert rows(server) == expected(sent)
        # p-b's last txn is only in the checkpoint, p-c's only in a later commit.
        resend_all_then_one_new(server, sent, ("p-b", 3))
        assert rows(server) == expected(sent + [("p-b", 3)])
    finally:
        server.stop()
    assert sorted(deltalake.DeltaTable(str(path)).to_pyarrow_table(columns=["id"]).column("id").to_pylist()) \
        == [i for i, _ in expected(sent + [("p-b", 3)])]


def test_open_from_a_delta_rs_checkpoint_keeps_rows_and_txns(tmp_path: Path):
    data_dir = tmp_path / "data"
    path = data_dir / CFG.catalog / CFG.schema_name / CFG.table
    server = ServerProcess(data_dir, args=ARGS)
    register(server)
    before = [("p-a", 1), ("p-b", 1), ("p-a", 2)]
    try:
        for batch in before:
            commit(server, [batch])
    finally:
        server.stop()
    table = deltalake.DeltaTable(str(path))
    table.create_checkpoint()
    checkpoint_version = table.version()
    server = ServerProcess(data_dir, args=ARGS)
    after = [("p-c", 1)]
    try:
        commit(server, after)
    finally:
        server.stop()
    for v in range(checkpoint_version):  # only delta-rs's checkpoint can tell the state
        (path / "_delta_log" / f"{v:020d}.json").unlink()
    sent = before + after
    server = ServerProcess(data_dir, args=ARGS)
    try:
        assert rows(server) == expected(sent)
        resend_all_then_one_new(server, sent, ("p-a", 3))
        assert rows(server) == expected(sent + [("p-a", 3)])
    finally:
        server.stop()
