"""History and time travel against the real server: history() lists each Delta
version with what it did (create, writes, compaction, truncate), read(version=N) and
SQL naming catalog.schema."table@vN" read the table as it was at version N (never
the unflushed tail), under the caller's read grant; versions that do not exist or
whose log was cleaned up fail with a clear error."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import pytest
from pydantic import BaseModel

from bifrost import (DatasetClient, DatasetProducer, GrpcConfig, NotFoundError, PermissionDeniedError,
                     QueryError, TableConfig)

from conftest import ServerProcess, server_binary


class Event(BaseModel):
    id: int
    kind: str
    note: Optional[str] = None


def make_config(table: str) -> TableConfig:
    return TableConfig(Event, catalog="tt", schema_name="hist", table=table, partition_columns=["kind"])


def insert(grpc: GrpcConfig, cfg: TableConfig, ids: range) -> None:
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert_many([Event(id=i, kind="ab"[i % 2]) for i in ids])
        assert producer.flush(timeout=60) == len(ids)


def flush(client: DatasetClient, cfg: TableConfig, *ops: str) -> dict:
    return client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, list(ops or ["flush"]))


def ids(rows: List[Event]) -> List[int]:
    return sorted(r.id for r in rows)


def test_history_lists_creates_writes_and_compaction(grpc, unique_table):
    cfg = make_config(unique_table)
    client = DatasetClient(grpc)
    insert(grpc, cfg, range(0, 10))
    flush(client, cfg)
    insert(grpc, cfg, range(10, 15))
    flush(client, cfg)
    done = flush(client, cfg, "optimize")
    assert done["files_removed"] > 0
    history = client.history(cfg.catalog, cfg.schema_name, cfg.table)
    assert [h["version"] for h in history] == list(range(len(history)))
    assert history[0]["operation"] == "CREATE TABLE" and history[0]["schema_version"] == 0
    writes = [h for h in history if h["operation"] == "WRITE"]
    assert sum(h["rows_added"] for h in writes) == 15
    assert all(h["data_change"] and h["rows_removed"] == 0 and h["files_added"] >= 1 for h in writes)
    optimize = history[-1]
    assert optimize["operation"] == "OPTIMIZE"
    assert optimize["data_change"] is False and optimize["rows_added"] == 0
    assert optimize["files_removed"] == done["files_removed"] and optimize["files_added"] == done["files_added"]
    assert all(h["schema_version"] == 0 for h in history)
    assert all(h["timestamp_ms"] >= history[0]["timestamp_ms"] > 0 for h in history)
    with pytest.raises(NotFoundError):
        client.history(cfg.catalog, cfg.schema_name, cfg.table + "_missing")


def test_read_at_a_version_sees_exactly_that_version(grpc, unique_table):
    cfg = make_config(unique_table)
    insert(grpc, cfg, range(0, 6))
    admin = DatasetClient(grpc)
    v1 = flush(admin, cfg)["delta_version"]
    insert(grpc, cfg, range(6, 9))
    v2 = flush(admin, cfg)["delta_version"]
    insert(grpc, cfg, range(9, 12))  # acknowledged, still in the tail
    client = DatasetClient(grpc, cfg)
    assert ids(client.read()) == list(range(12))
    assert client.read(version=0) == []
    assert ids(client.read(version=v1)) == list(range(6))
    assert ids(client.read(version=v2)) == list(range(9))  # the tail is never part of a version
    assert ids(client.read(version=v2, where="kind = ?", params=["a"])) == [0, 2, 4, 6, 8]
    # Compaction changes files, not rows: the version before and after read alike.
    v3 = flush(admin, cfg, "flush", "optimize")["delta_version"]
    assert ids(client.read(version=v3)) == list(range(12))
    assert ids(client.read(version=v1)) == list(range(6))
    # The facade and the asyncio face take the same version.
    from bifrost import Bifrost
    import asyncio
    facade = Bifrost(cfg, grpc)
    try:
        assert ids(facade.read(version=v1)) == list(range(6))
        assert [h["version"] for h in facade.history()][-1] == v3
        assert ids(asyncio.run(client.read_async(version=v1))) == list(range(6))
    finally:
        facade.close()
    # The same through SQL, with the name spelled in any case.
    table = f'{cfg.catalog}.{cfg.schema_name}."{cfg.table.upper()}@V{v1}"'
    result = client.sql(f"SELECT count(*) AS n, min(id) AS lo FROM {table}").to_arrow().to_pylist()
    assert result == [{"n": 6, "lo": 0}]
    joined = client.sql(
        f'SELECT count(*) AS n FROM {cfg.fqn} cur JOIN {cfg.catalog}.{cfg.schema_name}."{cfg.table}@v{v2}" old '
        "USING (id)").to_arrow().to_pylist()
    assert joined == [{"n": 9}]


def test_versions_that_do_not_exist_are_refused_clearly(grpc, unique_table):
    cfg = make_config(unique_table)
    insert(grpc, cfg, range(3))
    client = DatasetClient(grpc, cfg)
    latest = flush(client, cfg)["delta_version"]
    with pytest.raises(NotFoundError, match=rf"version {latest + 1} does not exist \(the latest is {latest}\)"):
        client.read(version=latest + 1)
    for bad in (-1, True, 1.5, "1"):
        with pytest.raises(ValueError, match="version must be a non-negative int"):
            client.read(version=bad)
    # Not a version suffix: an ordinary (missing) table name.
    for name in (f"{cfg.table}@v", f"{cfg.table}@v1x", f"{cfg.table}@v" + "9" * 19, f"{cfg.table}@1"):
        with pytest.raises(QueryError):
            client.sql(f'SELECT * FROM {cfg.catalog}.{cfg.schema_name}."{name}"')
    with pytest.raises(NotFoundError, match="is not registered"):
        client.sql(f'SELECT * FROM {cfg.catalog}.{cfg.schema_name}."nosuch@v0"')
    with pytest.raises(NotFoundError, match="does not exist"):
        client.sql(f'SELECT * FROM {cfg.catalog}.{cfg.schema_name}."{cfg.table}@v{10**17}"')


def test_versions_before_a_cleaned_log_are_refused_and_the_checkpoint_is_read(grpc, unique_table):
    cfg = make_config(unique_table)
    insert(grpc, cfg, range(0))
    client = DatasetClient(grpc, cfg)
    for start in (0, 4, 8):
        insert(grpc, cfg, range(start, start + 4))
        flush(client, cfg)
    done = client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["checkpoint", "cleanup_log"],
                                   retention_hours=0)
    checkpoint = done["checkpoint_version"]
    assert checkpoint == 3 and done["log_files_deleted"] >= 3
    history = client.history(cfg.catalog, cfg.schema_name, cfg.table)
    assert history[0]["version"] == checkpoint and history[0]["schema_version"] == -1
    with pytest.raises(NotFoundError, match="no longer readable.*oldest readable version is 3"):
        client.read(version=1)
    assert ids(client.read(version=checkpoint)) == list(range(12))
    insert(grpc, cfg, range(12, 14))
    v = flush(client, cfg)["delta_version"]
    assert ids(client.read(version=v)) == list(range(14))


def test_time_travel_keeps_the_read_grant(tmp_path):
    done = __import__("subprocess").run([str(server_binary()), "hash-password"], input="pw", text=True,
                                        capture_output=True, check=True)
    auth = tmp_path / "users.json"
    auth.write_text(json.dumps({"users": [
        {"name": "admin", "password_hash": done.stdout.strip(),
         "grants": [{"on": "*.*.*", "allow": ["read", "write", "admin"]}]},
        {"name": "narrow", "password_hash": done.stdout.strip(),
         "grants": [{"on": "tt.hist.open", "allow": ["read"]}]}]}))
    auth.chmod(0o600)
    server = ServerProcess(tmp_path / "data", args=["--auth-file", str(auth)])
    try:
        admin = GrpcConfig(server_uri=server.uri, username="admin", password="pw")
        narrow = GrpcConfig(server_uri=server.uri, username="narrow", password="pw")
        for table in ("open", "secret"):
            insert(admin, make_config(table), range(3))
            flush(DatasetClient(admin), make_config(table))
        reader = DatasetClient(narrow)
        assert reader.sql('SELECT count(*) AS n FROM tt.hist."open@v1"').to_arrow().to_pylist() == [{"n": 3}]
        assert len(reader.history("tt", "hist", "open")) == 2
        for query in ('SELECT * FROM tt.hist."secret@v1"', 'SELECT * FROM tt.hist."secret@v99"'):
            with pytest.raises(PermissionDeniedError, match="may not read table tt.hist.secret"):
                reader.sql(query)
        with pytest.raises(PermissionDeniedError):
            reader.history("tt", "hist", "secret")
        with pytest.raises(PermissionDeniedError):
            reader.history("tt", "hist", "absent")  # no grant: existence is not revealed
    finally:
        server.stop()


def test_concurrent_queries_of_the_same_version(grpc, unique_table):
    from concurrent.futures import ThreadPoolExecutor

    cfg = make_config(unique_table)
    insert(grpc, cfg, range(20))
    admin = DatasetClient(grpc)
    v1 = flush(admin, cfg)["delta_version"]
    insert(grpc, cfg, range(20, 30))
    v2 = flush(admin, cfg)["delta_version"]
    client = DatasetClient(grpc, cfg)

    def count(i: int) -> int:
        version = v1 if i % 2 else v2
        return (version, len(client.read(version=version)))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(count, range(200)))
    assert all(n == (20 if version == v1 else 30) for version, n in results)
    both = client.sql(f'SELECT (SELECT count(*) FROM tt.hist."{cfg.table}@v{v1}") AS a, '
                      f'(SELECT count(*) FROM tt.hist."{cfg.table}@v{v2}") AS b').to_arrow().to_pylist()
    assert both == [{"a": 20, "b": 30}]
    names = " UNION ALL ".join(f'SELECT 1 FROM tt.hist."{cfg.table}@v{v1}"' for _ in range(17))
    with pytest.raises(QueryError, match="at most 16 table versions"):
        client.sql(names)
