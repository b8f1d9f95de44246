"""A partitioned table the server wrote to S3 is a plain Delta table: delta-rs,
polars read_delta and DuckDB's delta_scan read the same rows straight from the
bucket as the server's own SQL, after plain flushes, after compaction (OPTIMIZE),
a checkpoint, vacuum and log cleanup (maintenance forced through MaintainTable,
as in test_storage.py), and after a restart that opens the table from the
checkpoint."""
from __future__ import annotations

from typing import List, Tuple

import pytest

from s3_support import delta_scan
from s3_tables import (all_reader_ids, config, describe, ids_in, insert, maintain, readings, start_server, table_key,
                       table_uri)

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

# No automatic maintenance: each step is forced; vacuum at retention 0 below.
ARGS = ["--maintenance-interval", "0", "--flush-interval", "3600", "--checkpoint-interval", "0",
        "--compact-min-files", "0", "--unsafe-short-retention"]


def live_files(s3, uri: str) -> List[str]:
    import pyarrow as pa

    table = deltalake.DeltaTable(uri, storage_options=s3.storage_options())
    return sorted(pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist())


def rows_by_each_reader(s3, uri: str) -> dict:
    """(id, sensor, value) rows, sorted, as delta-rs / polars / DuckDB read them."""
    def tuples(table) -> List[Tuple]:
        return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "sensor", "value"))))

    return {
        "delta-rs": tuples(deltalake.DeltaTable(uri, storage_options=s3.storage_options()).to_pyarrow_table()),
        "polars": tuples(pl.read_delta(uri, storage_options=s3.storage_options()).to_arrow()),
        "duckdb": tuples(delta_scan(s3.direct_endpoint, uri)),
    }


def data_keys(s3, bucket: str, cfg) -> List[str]:
    prefix = table_key(cfg) + "/"
    return sorted(k[len(prefix):] for k in s3.keys(bucket, prefix)
                  if k.endswith(".parquet") and "/_delta_log/" not in k and "_bifrost" not in k)


def test_readers_agree_through_compaction_checkpoint_vacuum(s3, s3_bucket, tmp_path):
    cfg = config("readers")
    uri = table_uri(s3_bucket, cfg)
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        for k in range(4):
            insert(server, cfg, readings(k * 50, 50))
            assert maintain(server, cfg, "flush")["rows_flushed"] == 50
        expected_ids = list(range(200))
        expected_rows = sorted((r.id, r.sensor, r.value) for r in readings(0, 200))
        assert sorted(ids_in(server, cfg)) == expected_ids
        assert rows_by_each_reader(s3, uri) == {r: expected_rows for r in ("delta-rs", "polars", "duckdb")}
        files_before = live_files(s3, uri)
        assert len(files_before) == 12  # 4 flushes x 3 sensor partitions
        assert data_keys(s3, s3_bucket, cfg) == files_before

        done = maintain(server, cfg, "optimize")
        assert done["files_removed"] == 12 and done["files_added"] == 3
        assert len(live_files(s3, uri)) == 3
        assert all_reader_ids(s3, uri) == {r: expected_ids for r in ("delta-rs", "polars", "duckdb")}
        assert sorted(ids_in(server, cfg)) == expected_ids
        # Removed files stay in the bucket until vacuum.
        assert len(data_keys(s3, s3_bucket, cfg)) == 15

        done = maintain(server, cfg, "checkpoint")
        version = done["checkpoint_version"]
        assert version == done["delta_version"] == 5  # create, 4 writes; optimize is 5
        log_keys = s3.keys(s3_bucket, table_key(cfg) + "/_delta_log/")
        assert f"{table_key(cfg)}/_delta_log/{version:020d}.checkpoint.parquet" in log_keys
        assert f"{table_key(cfg)}/_delta_log/_last_checkpoint" in log_keys
        assert rows_by_each_reader(s3, uri) == {r: expected_rows for r in ("delta-rs", "polars", "duckdb")}

        assert maintain(server, cfg, "vacuum", retention_hours=0)["files_deleted"] == 12
        assert data_keys(s3, s3_bucket, cfg) == live_files(s3, uri)
        assert all_reader_ids(s3, uri) == {r: expected_ids for r in ("delta-rs", "polars", "duckdb")}

        # Log files before the checkpoint go; readers start from the checkpoint.
        assert maintain(server, cfg, "cleanup_log", retention_hours=0)["log_files_deleted"] == 5
        jsons = [k.rsplit("/", 1)[1] for k in s3.keys(s3_bucket, table_key(cfg) + "/_delta_log/")
                 if k.endswith(".json")]
        assert jsons == [f"{version:020d}.json"]
        assert rows_by_each_reader(s3, uri) == {r: expected_rows for r in ("delta-rs", "polars", "duckdb")}
        assert sorted(ids_in(server, cfg)) == expected_ids
    finally:
        server.stop()

    # The server opens the table from the checkpoint and keeps appending to it.
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        assert sorted(ids_in(server, cfg)) == expected_ids
        insert(server, cfg, readings(200, 30))
        assert maintain(server, cfg, "flush")["delta_version"] == version + 1
    finally:
        server.stop()
    assert all_reader_ids(s3, uri) == {r: list(range(230)) for r in ("delta-rs", "polars", "duckdb")}
    table = deltalake.DeltaTable(uri, storage_options=s3.storage_options())
    assert table.version() == version + 1
    assert "sensor" in table.metadata().partition_columns


def test_empty_table_on_s3_reads_empty(s3, s3_bucket, tmp_path):
    """A registered table with no rows yet is a valid, empty Delta table."""
    from bifrost import DatasetProducer

    from s3_tables import grpc

    cfg = config("empty")
    uri = table_uri(s3_bucket, cfg)
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        with DatasetProducer(cfg, grpc(server)) as producer:
            producer.register()
        info = describe(server, cfg)
        assert (info["num_rows"], info["delta_version"]) == (0, 0)
        assert ids_in(server, cfg) == []
        assert maintain(server, cfg, "flush")["rows_flushed"] == 0
    finally:
        server.stop()
    assert all_reader_ids(s3, uri) == {"delta-rs": [], "polars": [], "duckdb": []}
