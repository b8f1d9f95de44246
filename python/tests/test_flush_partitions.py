"""A flush writes a tail's rows into one Parquet file per partition date when every
row shares the same date (the common case: one date per day of ingest), and with
DuckDB's PARTITION_BY when the dates differ or the table has partition columns of
its own. Either way each Delta reader sees exactly the rows acknowledged, with the
date as a partition value (not a column inside the files), and a null-free single
date never sends rows to the wrong directory."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from bifrost import DatasetClient, GrpcConfig

import raw_grpc
from test_hardening import ipc, note_config, register

DATE = "scouter_partition_date"


def adds(table_dir: Path) -> list:
    out = []
    for commit in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                out.append(action["add"])
    return out


def batch(cfg, texts, ns, dates) -> bytes:
    rows = len(texts)
    now = dt.datetime.now(dt.timezone.utc)
    return ipc(pa.RecordBatch.from_arrays(
        [pa.array(texts, pa.string()), pa.array(ns, pa.int64()),
         pa.array([now] * rows, pa.timestamp("us", tz="UTC")),
         pa.array(dates, pa.date32()), pa.array(["batch"] * rows, pa.string())],
        names=[f.name for f in cfg.arrow_schema]))


def send(server, cfg, data: bytes) -> None:
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    _, error = raw_grpc.call(server.uri, "InsertBatch", raw_grpc.insert_request(name, cfg.fingerprint_str, data))
    assert error is None, error


def flush(server, cfg) -> None:
    DatasetClient(GrpcConfig(server_uri=server.uri)).maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table,
                                                                       ["flush"])


def table_dir(server, cfg) -> Path:
    return Path(server.data_dir) / cfg.catalog / cfg.schema_name / cfg.table


def readers_agree(path: Path, expected: dict) -> None:
    """deltalake, polars and DuckDB each read {(text, n, date)} exactly as expected."""
    got = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    assert sorted((r["text"], r["n"], r[DATE]) for r in got) == sorted(expected)
    frame = pl.read_delta(str(path))
    assert sorted(zip(frame["text"], frame["n"], frame[DATE])) == sorted(expected)
    con = duckdb.connect()
    files = [str(path / a["path"]) for a in adds(path)]
    rows = con.execute("SELECT text, n, CAST(" + DATE + " AS DATE) FROM read_parquet(?, hive_partitioning = true)",
                       [files]).fetchall()
    assert sorted(rows) == sorted(expected)


def test_rows_of_one_date_go_into_one_file_of_that_date(server):
    cfg = note_config("flush_one_date")
    register(server, cfg)
    day = dt.date(2024, 2, 29)
    expected = []
    for b in range(5):  # several batches, one tail
        texts = [f"b{b}-{i}" if i % 7 else "" for i in range(3000)]
        ns = [b * 10_000 + i for i in range(3000)]
        send(server, cfg, batch(cfg, texts, ns, [day] * 3000))
        expected += [(t, n, day) for t, n in zip(texts, ns)]
    flush(server, cfg)
    path = table_dir(server, cfg)
    files = adds(path)
    assert len(files) == 1
    assert files[0]["path"].startswith(f"{DATE}=2024-02-29/part-")
    assert files[0]["partitionValues"] == {DATE: "2024-02-29"}
    assert json.loads(files[0]["stats"])["numRecords"] == 15_000
    parquet = pq.ParquetFile(path / files[0]["path"])
    assert DATE not in parquet.schema_arrow.names  # a partition value, not a column
    assert parquet.metadata.num_rows == 15_000
    assert (path / files[0]["path"]).stat().st_size == files[0]["size"]
    readers_agree(path, expected)


def test_rows_of_several_dates_are_split_by_date(server):
    cfg = note_config("flush_dates")
    register(server, cfg)
    days = [dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(1970, 1, 1), dt.date(1969, 12, 31)]
    expected = []
    # one batch with every date, then batches of one date each: the tail holds all
    texts = [f"mixed-{i}" for i in range(400)]
    dates = [days[i % 4] for i in range(400)]
    send(server, cfg, batch(cfg, texts, list(range(400)), dates))
    expected += [(t, i, d) for i, (t, d) in enumerate(zip(texts, dates))]
    for k, day in enumerate(days):
        texts = [f"d{k}-{i}" for i in range(100)]
        send(server, cfg, batch(cfg, texts, [1000 + k * 100 + i for i in range(100)], [day] * 100))
        expected += [(t, 1000 + k * 100 + i, day) for i, t in enumerate(texts)]
    flush(server, cfg)
    path = table_dir(server, cfg)
    files = adds(path)
    assert sorted(f["partitionValues"][DATE] for f in files) == sorted(d.isoformat() for d in days)
    for f in files:
        assert f["path"].startswith(f"{DATE}={f['partitionValues'][DATE]}/")
        assert json.loads(f["stats"])["numRecords"] == 200
    readers_agree(path, expected)


def test_one_date_then_another_date_in_the_next_flush(server):
    cfg = note_config("flush_next_day")
    register(server, cfg)
    first, second = dt.date(2025, 6, 30), dt.date(2025, 7, 1)
    send(server, cfg, batch(cfg, ["a", "b"], [1, 2], [first, first]))
    flush(server, cfg)
    send(server, cfg, batch(cfg, ["c"], [3], [second]))
    flush(server, cfg)
    path = table_dir(server, cfg)
    assert sorted(f["partitionValues"][DATE] for f in adds(path)) == ["2025-06-30", "2025-07-01"]
    readers_agree(path, [("a", 1, first), ("b", 2, first), ("c", 3, second)])
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    got = client.sql(f"SELECT text, {DATE} AS d FROM {cfg.fqn} ORDER BY text").to_arrow().to_pylist()
    assert got == [{"text": "a", "d": first}, {"text": "b", "d": first}, {"text": "c", "d": second}]


def test_a_table_with_its_own_partition_column_keeps_partition_by(server):
    cfg = note_config("flush_own_partitions", partitioned=True)
    register(server, cfg)
    day = dt.date(2024, 5, 5)
    texts = ["north", "south", "north", "NULL", "é x"]
    send(server, cfg, batch(cfg, texts, list(range(5)), [day] * 5))
    flush(server, cfg)
    path = table_dir(server, cfg)
    values = sorted((f["partitionValues"][DATE], f["partitionValues"]["text"]) for f in adds(path))
    assert values == [("2024-05-05", "NULL"), ("2024-05-05", "north"), ("2024-05-05", "south"),
                      ("2024-05-05", "é x")]
    got = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    assert sorted((r["text"], r["n"], r[DATE]) for r in got) == sorted((t, i, day) for i, t in enumerate(texts))


@pytest.mark.parametrize("n_dates", [1, 3])
def test_a_flush_that_cannot_write_its_file_leaves_nothing_and_loses_nothing(tmp_path, n_dates):
    """The file size limit hit in the middle of the COPY (as a full disk would), for
    the one-file write of a single date and for PARTITION_BY's: the flush fails with
    the reason, no partial file stays in a date's directory, the rows stay
    queryable, and the next flush stores each row once."""
    import os
    import resource

    from bifrost import BifrostError
    from conftest import ServerProcess

    server = ServerProcess(tmp_path / "data")
    try:
        cfg = note_config("flush_full")
        register(server, cfg)
        days = [dt.date(2024, 8, 1) + dt.timedelta(days=k) for k in range(n_dates)]
        texts = [os.urandom(24).hex() for _ in range(20_000)]  # ~1 MB that zstd cannot shrink
        dates = [days[i % n_dates] for i in range(20_000)]
        send(server, cfg, batch(cfg, texts, list(range(20_000)), dates))
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        with pytest.raises(BifrostError, match="(?i)writing Parquet failed"):
            flush(server, cfg)
        path = table_dir(server, cfg)
        assert not list(path.rglob("part-*.parquet"))
        assert adds(path) == []
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        assert client.sql(f"SELECT count(*) AS n FROM {cfg.fqn}").to_arrow()["n"][0].as_py() == 20_000
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        flush(server, cfg)
        assert len(adds(path)) == n_dates
        readers_agree(path, [(t, i, d) for i, (t, d) in enumerate(zip(texts, dates))])
    finally:
        server.stop()
