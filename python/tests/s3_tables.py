"""Shared pieces of the S3 end-to-end tests (test_s3_*.py): the partitioned test
table, a bifrost-server on an s3:// data dir with its own local WAL dir, inserting
through the producer, and reading the rows back through the server, through
delta-rs / polars / DuckDB delta_scan directly from the bucket."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

from conftest import ServerProcess
from s3_support import S3Env, delta_scan

SENSORS = ["north", "south", "east"]


class Reading(BaseModel):
    id: int
    sensor: str
    value: float


def readings(start: int, n: int) -> List[Reading]:
    return [Reading(id=i, sensor=SENSORS[i % 3], value=i * 0.5) for i in range(start, start + n)]


def big_batch(start: int, n: int) -> pa.Table:
    """Rows start..start+n as one Arrow table (for insert_arrow)."""
    ids = range(start, start + n)
    return pa.table({"id": pa.array(ids, type=pa.int64()),
                     "sensor": pa.array([SENSORS[i % 3] for i in ids]),
                     "value": pa.array([i * 0.5 for i in ids], type=pa.float64())})


def config(table: str = "readings") -> TableConfig:
    return TableConfig(Reading, catalog="store", schema_name="tests", table=table, partition_columns=["sensor"])


def data_uri(bucket: str, prefix: str = "tables") -> str:
    return f"s3://{bucket}/{prefix}"


def table_uri(bucket: str, cfg: TableConfig, prefix: str = "tables") -> str:
    return f"{data_uri(bucket, prefix)}/{cfg.catalog}/{cfg.schema_name}/{cfg.table}"


def table_key(cfg: TableConfig, prefix: str = "tables") -> str:
    """The table's key prefix inside its bucket (no trailing slash)."""
    return f"{prefix}/{cfg.catalog}/{cfg.schema_name}/{cfg.table}"


def start_server(s3: S3Env, bucket: str, tmp_path: Path, name: str = "a", args: Sequence = (),
                 port: int = 0, prefix: str = "tables", env: Optional[Dict[str, str]] = None,
                 wal_dir: Optional[Path] = None) -> ServerProcess:
    """A server on s3://bucket/prefix (through the fault proxy), WAL in
    tmp_path/wal-<name> (the same dir again on a restart with the same name)."""
    wal = wal_dir or tmp_path / f"wal-{name}"
    return ServerProcess(data_uri(bucket, prefix), port=port, args=["--wal-dir", wal, *args],
                         log_dir=tmp_path, log_name=name, env=env if env is not None else s3.server_env())


def grpc(server: ServerProcess) -> GrpcConfig:
    return GrpcConfig(server_uri=server.uri)


def insert(server: ServerProcess, cfg: TableConfig, rows: List[Reading], batch_size: int = 100) -> None:
    with DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=batch_size)) as p:
        p.insert_many(rows)
        assert p.flush(timeout=120) == len(rows)


def ids_in(server: ServerProcess, cfg: TableConfig) -> List[int]:
    client = DatasetClient(grpc(server))
    return client.sql(f"SELECT id FROM {cfg.fqn}").to_arrow().column("id").to_pylist()


def wait_for_ids(server, cfg, expected: List[int], timeout: float) -> float:
    """Seconds until the server's SQL returns exactly expected (AssertionError after timeout)."""
    start = time.monotonic()
    got: List[int] = []
    while time.monotonic() - start < timeout:
        try:
            got = sorted(ids_in(server, cfg))
        except Exception:  # noqa: BLE001 - the table may not be known here yet
            got = []
        if got == expected:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{server.uri} shows {len(got)} of {len(expected)} rows after {timeout} s")


def maintain(server: ServerProcess, cfg: TableConfig, *ops: str, retention_hours=None) -> dict:
    client = DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=300))
    return client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, list(ops), retention_hours)


def describe(server: ServerProcess, cfg: TableConfig) -> dict:
    return DatasetClient(grpc(server)).describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)


def delta_rs_ids(s3: S3Env, uri: str) -> List[int]:
    import deltalake

    table = deltalake.DeltaTable(uri, storage_options=s3.storage_options())
    return table.to_pyarrow_table(columns=["id"]).column("id").to_pylist()


def polars_ids(s3: S3Env, uri: str) -> List[int]:
    import polars as pl

    return pl.read_delta(uri, storage_options=s3.storage_options())["id"].to_list()


def duckdb_ids(s3: S3Env, uri: str) -> List[int]:
    return delta_scan(s3.direct_endpoint, uri, "id").column("id").to_pylist()


def all_reader_ids(s3: S3Env, uri: str) -> Dict[str, List[int]]:
    """Sorted ids as each independent reader sees the table in the bucket."""
    return {"delta-rs": sorted(delta_rs_ids(s3, uri)), "polars": sorted(polars_ids(s3, uri)),
            "duckdb": sorted(duckdb_ids(s3, uri))}


def assert_exactly_once(got: List[int], expected: List[int], what: str = "") -> None:
    dupes = len(got) - len(set(got))
    assert dupes == 0, f"{what}: {dupes} rows present twice"
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not missing and not extra, f"{what}: {len(missing)} acknowledged rows lost, {len(extra)} unexpected"
