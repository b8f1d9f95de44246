"""ServerStats: DatasetClient.server_stats() reports uptime, versions and per table
the backlog and throughput counters (moving by exactly what was sent), refusals and
duplicates; tables the caller may not read are left out; `bifrost top` shows it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel

import raw_grpc
from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

BIN = Path(sys.executable).parent / "bifrost"


class Tick(BaseModel):
    k: int
    s: str


def stats_of(client, table):
    stats = client.server_stats()
    return stats, next((t for t in stats["tables"] if t["table"] == table), None)


def test_server_stats_counts_exactly_what_was_sent(server, unique_table):
    cfg = TableConfig(Tick, "stats", "srv", unique_table)
    with DatasetClient(GrpcConfig(server.uri)) as client:
        with DatasetProducer(cfg, GrpcConfig(server.uri)) as producer:
            stats, mine = stats_of(client, unique_table)
            assert mine is not None and mine["rows_acknowledged"] == 0 and mine["tail_rows"] == 0
            assert stats["version"] == "0.1.0" and stats["duckdb_version"].startswith("v1.")
            assert stats["uptime_secs"] > 0 and stats["started_at_ms"] > 0
            producer.insert_many([Tick(k=i, s="x" * i) for i in range(1234)])
            producer.flush()
        _, mine = stats_of(client, unique_table)
        assert mine["rows_acknowledged"] == 1234 and mine["tail_rows"] == 1234 and mine["num_rows"] == 1234
        assert mine["bytes_acknowledged"] > 0 and mine["tail_bytes"] > 0
        assert mine["flushes"] == 0 and mine["last_flush_at_ms"] == 0
        client.maintain_dataset("stats", "srv", unique_table, ["flush"])
        _, after = stats_of(client, unique_table)
        assert after["tail_rows"] == 0 and after["tail_bytes"] == 0 and after["num_rows"] == 1234
        assert after["flushes"] == 1 and after["last_flush_at_ms"] > 0 and after["num_files"] >= 1
        # a refused batch (wrong fingerprint) and a duplicate (same producer id and sequence twice)
        name = raw_grpc.table_name("stats", "srv", unique_table)
        _, error = raw_grpc.call(server.uri, "InsertBatch", raw_grpc.insert_request(name, "0" * 32, b"ipc"))
        assert error is not None
        ipc = _ipc(cfg)
        fp = cfg.fingerprint_str
        for _ in range(2):
            _, error = raw_grpc.call(server.uri, "InsertBatch",
                                     raw_grpc.insert_request(name, fp, ipc, producer_id="p-1", sequence=1))
            assert error is None
        _, last = stats_of(client, unique_table)
        assert last["inserts_refused"] == 1 and last["duplicates_skipped"] == 1
        assert last["rows_acknowledged"] == 1234 + 2


def _ipc(cfg):
    schema = cfg.arrow_schema
    import datetime

    columns = {"k": pa.array([1, 2], pa.int64()), "s": pa.array(["a", "b"])}
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(columns[field.name].cast(field.type))
        elif pa.types.is_timestamp(field.type):
            arrays.append(pa.array([datetime.datetime(2025, 1, 1)] * 2, field.type))
        elif pa.types.is_date(field.type):
            arrays.append(pa.array([datetime.date(2025, 1, 1)] * 2, field.type))
        else:
            arrays.append(pa.array(["b1", "b1"]).cast(field.type))
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def test_bifrost_top_shows_tables_and_rates(server, unique_table):
    cfg = TableConfig(Tick, "stats", "top", unique_table)
    with DatasetProducer(cfg, GrpcConfig(server.uri)) as producer:
        producer.insert_many([Tick(k=i, s="y") for i in range(50)])
        producer.flush()
    env = {**os.environ, "BIFROST_GRPC_URI": server.uri, "COLUMNS": "220", "NO_COLOR": "1"}
    proc = subprocess.run([str(BIN), "top", "--iterations", "2", "--interval", "0.2"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"stats.top.{unique_table}" in proc.stdout and "rows/s" in proc.stdout and "up 00:" in proc.stdout
    raw = json.loads(subprocess.run([str(BIN), "top", "--json"], capture_output=True, text=True, env=env,
                                    timeout=60, check=True).stdout)
    assert any(t["table"] == unique_table and t["rows_acknowledged"] == 50 for t in raw["tables"])
