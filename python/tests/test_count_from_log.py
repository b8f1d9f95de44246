"""`SELECT count(*) FROM catalog.schema.table` is answered from the table's Delta
log (each file's numRecords) plus its unflushed rows, without opening a Parquet
file, and is exactly the count DuckDB would give: in every state of the table
(empty, unflushed, flushed, both, truncated, compacted, restarted), while inserts
and flushes run, for files of other writers without stats (counted by DuckDB), and
with the same column name, type, errors and grants as any query."""
from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import (DatasetClient, DatasetProducer, GrpcConfig, NotFoundError, PermissionDeniedError,
                     QueryError, TableConfig, WriteConfig)

from conftest import ServerProcess, server_binary


class Row(BaseModel):
    id: int
    value: float


def config(table: str) -> TableConfig:
    return TableConfig(Row, catalog="cnt", schema_name="log", table=table)


def insert(grpc: GrpcConfig, cfg: TableConfig, ids) -> None:
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert_many([Row(id=i, value=i / 2) for i in ids])
        producer.flush(timeout=60)


def count(client: DatasetClient, cfg: TableConfig, suffix: str = "") -> int:
    return client.sql(f"SELECT count(*) AS n FROM {cfg.fqn}{suffix}").to_arrow()["n"][0].as_py()


def counts_agree(client: DatasetClient, cfg: TableConfig, expected: int) -> None:
    """The plain count (from the log) and a count DuckDB computes from the rows."""
    assert count(client, cfg) == expected
    assert count(client, cfg, " WHERE id IS NOT NULL OR id IS NULL") == expected


def maintain(client: DatasetClient, cfg: TableConfig, *ops: str) -> dict:
    return client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, list(ops))


def table_dir(data: Path, cfg: TableConfig) -> Path:
    return data / cfg.catalog / cfg.schema_name / cfg.table


def test_count_in_every_state_of_a_table(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data, args=["--compact-min-files", "2"])
    cfg = config("states")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        with DatasetProducer(cfg, grpc) as producer:
            producer.register()
        counts_agree(client, cfg, 0)                  # registered, nothing stored
        insert(grpc, cfg, range(100))
        counts_agree(client, cfg, 100)                # unflushed only
        maintain(client, cfg, "flush")
        counts_agree(client, cfg, 100)                # files only
        insert(grpc, cfg, range(100, 130))
        counts_agree(client, cfg, 130)                # files + unflushed
        maintain(client, cfg, "flush")
        maintain(client, cfg, "optimize")
        counts_agree(client, cfg, 130)                # compacted
        client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
        counts_agree(client, cfg, 0)                  # truncated
        insert(grpc, cfg, range(7))
    finally:
        server.kill()                                 # the 7 rows are in the WAL only
    server = ServerProcess(data)
    try:
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        counts_agree(client, cfg, 7)                  # replayed after a crash
        table = client.sql(f"SELECT count(*) FROM {cfg.fqn}").to_arrow()
        assert table.column_names == ["count_star()"] and table.schema.field(0).type == pa.int64()
        assert table.column(0).to_pylist() == [7]
        quoted = client.sql(f'select COUNT(*) as "Rows" from "{cfg.catalog}"."{cfg.schema_name}"."{cfg.table}";')
        assert quoted.to_arrow().to_pylist() == [{"Rows": 7}]
    finally:
        server.stop()


def test_other_shapes_are_not_answered_from_the_log(server):
    cfg = config("shapes")
    grpc = GrpcConfig(server_uri=server.uri)
    client = DatasetClient(grpc)
    insert(grpc, cfg, range(10))
    maintain(client, cfg, "flush")
    insert(grpc, cfg, range(10, 15))
    fqn = cfg.fqn
    cases = {
        f"SELECT count(*) AS n FROM {fqn} WHERE id < 3": [3],
        f"SELECT count(*) AS n FROM {fqn} LIMIT 0": [],
        f"SELECT count(*) AS n FROM {fqn} GROUP BY id % 2 ORDER BY n": [7, 8],
        f"SELECT count(DISTINCT id % 3) AS n FROM {fqn}": [3],
        f"SELECT count(id) AS n FROM {fqn}": [15],
        f"SELECT count(*) FILTER (WHERE id >= 10) AS n FROM {fqn}": [5],
        f"SELECT count(*) AS n FROM {fqn} HAVING count(*) > 100": [],
        f"SELECT count(*) AS n FROM (SELECT * FROM {fqn} WHERE id > 12)": [2],
        f"WITH t AS (SELECT * FROM {fqn} LIMIT 4) SELECT count(*) AS n FROM t": [4],
        f"SELECT count(*) + 1 AS n FROM {fqn}": [16],
        f"SELECT count(*) AS n FROM {fqn} USING SAMPLE 0 PERCENT (bernoulli)": [0],
    }
    for sql, expected in cases.items():
        assert client.sql(sql).to_arrow()["n"].to_pylist() == expected, sql


def test_a_missing_table_and_a_missing_grant_fail_as_for_any_query(tmp_path):
    hashed = subprocess.run([str(server_binary()), "hash-password"], input="pw", text=True,
                            capture_output=True, check=True).stdout.strip()
    auth = tmp_path / "users.json"
    auth.write_text(json.dumps({"users": [
        {"name": "admin", "password_hash": hashed, "grants": [{"on": "*.*.*", "allow": ["read", "write", "admin"]}]},
        {"name": "other", "password_hash": hashed, "grants": [{"on": "elsewhere.*.*", "allow": ["read"]}]}]}))
    auth.chmod(0o600)
    server = ServerProcess(tmp_path / "data", args=["--auth-file", str(auth)])
    cfg = config("guarded")
    try:
        admin = GrpcConfig(server_uri=server.uri, username="admin", password="pw")
        insert(admin, cfg, range(5))
        with pytest.raises(PermissionDeniedError):
            count(DatasetClient(GrpcConfig(server_uri=server.uri, username="other", password="pw")), cfg)
        with pytest.raises((QueryError, NotFoundError), match="(?i)does not exist|not found"):
            DatasetClient(admin).sql("SELECT count(*) FROM cnt.log.absent").to_arrow()
        DatasetClient(admin).drop_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
        with pytest.raises((QueryError, NotFoundError), match="(?i)does not exist|not found"):
            count(DatasetClient(admin), cfg)
    finally:
        server.stop()


def test_the_count_opens_no_file_but_files_without_stats_are_counted_by_duckdb(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data)
    cfg = config("no_stats")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        insert(grpc, cfg, range(40))
        maintain(client, cfg, "flush")
    finally:
        server.stop()
    path = table_dir(data, cfg)
    log = path / "_delta_log"
    commits = sorted(log.glob("*.json"))
    add = next(json.loads(line)["add"] for line in commits[-1].read_text().splitlines() if '"add"' in line)
    # Another writer's commit: the same rows again in a copy of the file, its add without stats.
    source = path / add["path"]
    copy = source.parent / "part-other-writer.parquet"
    copy.write_bytes(source.read_bytes())
    other = dict(add, path=str(Path(add["path"]).parent / copy.name))
    other.pop("stats", None)
    other.pop("tags", None)
    version = int(commits[-1].stem) + 1
    (log / f"{version:020d}.json").write_text(
        json.dumps({"commitInfo": {"timestamp": other["modificationTime"], "operation": "WRITE"}}) + "\n"
        + json.dumps({"add": other}) + "\n")
    server = ServerProcess(data)
    try:
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        counts_agree(client, cfg, 80)  # DuckDB counts the file without stats
        # Without the other writer's file every count is known: a damaged file
        # (same size, bytes overwritten) does not stop the count, only queries
        # that read it.
        client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
        for start in (0, 25):
            insert(GrpcConfig(server_uri=server.uri), cfg, range(start, start + 25))
            maintain(client, cfg, "flush")
    finally:
        server.stop()
    last = sorted(log.glob("*.json"))[-1]
    live = next(json.loads(line)["add"]["path"] for line in last.read_text().splitlines() if '"add"' in line)
    damaged = path / live
    damaged.write_bytes(b"\0" * damaged.stat().st_size)
    server = ServerProcess(data)  # a new process: no footer cached from before
    try:
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        assert count(client, cfg) == 50
        with pytest.raises(QueryError):
            client.sql(f"SELECT sum(id) AS n FROM {cfg.fqn}").to_arrow()
    finally:
        server.stop()


def test_counts_while_inserts_and_flushes_run_never_lose_or_invent_rows(tmp_path):
    """Every count lies between the rows acknowledged before it was asked and those
    acknowledged after its answer, and counts never go back, while a producer
    inserts and the server flushes every few hundred rows."""
    server = ServerProcess(tmp_path / "data", args=["--flush-rows", "300", "--flush-interval", "0.05"])
    cfg = config("moving")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=50, scheduled_delay_secs=0.005))
        producer.register()
        stop = threading.Event()

        def feed():
            i = 0
            while not stop.is_set():
                producer.insert_many([Row(id=i + k, value=1.0) for k in range(50)])
                producer.flush(timeout=60)
                i += 50

        feeder = threading.Thread(target=feed)
        feeder.start()
        seen = []
        try:
            for _ in range(150):
                before = producer.stats()["acknowledged"]
                n = count(client, cfg)
                after = producer.stats()
                # batches in flight may be stored before their answer arrives
                assert before <= n <= after["acknowledged"] + after["in_flight"], (before, n, after)
                seen.append(n)
        finally:
            stop.set()
            feeder.join(60)
        assert seen == sorted(seen)
        producer.flush(timeout=60)
        total = producer.stats()["acknowledged"]
        producer.shutdown()
        assert total > 300
        counts_agree(client, cfg, total)
    finally:
        server.stop()

