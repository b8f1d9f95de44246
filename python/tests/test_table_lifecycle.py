"""Drop and truncate against the real server. truncate_dataset commits the removal of
every live file (history kept: older versions stay readable until vacuum deletes the
files); drop_dataset flushes (or discards) the WAL, removes the table from the
catalog and deletes its directory, after which the name registers anew with any
schema. Both need the admin grant and a confirmation naming the table."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import List, Optional

import pytest
from pydantic import BaseModel

from bifrost import (BifrostError, DatasetClient, DatasetProducer, GrpcConfig, NotFoundError, PermissionDeniedError,
                     SchemaError, TableConfig, WriteConfig)

from conftest import ServerProcess, server_binary

deltalake = pytest.importorskip("deltalake")


class Item(BaseModel):
    id: int
    label: str


class ItemV2(BaseModel):
    id: str
    price: Optional[float] = None


def make_config(table: str, model=Item) -> TableConfig:
    return TableConfig(model, catalog="life", schema_name="cycle", table=table)


def table_dir(server: ServerProcess, cfg: TableConfig) -> Path:
    return server.data_dir / cfg.catalog / cfg.schema_name / cfg.table


def insert(grpc: GrpcConfig, cfg: TableConfig, ids) -> None:
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert_many([Item(id=i, label=f"l{i}") for i in ids])
        assert producer.flush(timeout=60) == len(ids)


def ids(rows) -> List[int]:
    return sorted(r.id for r in rows)


def test_truncate_removes_every_row_and_keeps_history(server, grpc, unique_table):
    cfg = make_config(unique_table)
    client = DatasetClient(grpc)
    insert(grpc, cfg, range(0, 5))
    v1 = client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])["delta_version"]
    insert(grpc, cfg, range(5, 8))  # in the tail: flushed, then removed with the rest
    with pytest.raises(SchemaError, match=f"confirm must be the table's full name '{cfg.fqn}'"):
        client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm="life.cycle.other")
    with pytest.raises(TypeError):
        client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=None)
    done = client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
    assert done["rows_removed"] == 8 and done["files_removed"] >= 2
    bound = DatasetClient(grpc, cfg)
    assert bound.read() == []
    assert client.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)["num_rows"] == 0
    history = client.history(cfg.catalog, cfg.schema_name, cfg.table)
    assert history[-1]["version"] == done["delta_version"]
    assert history[-1]["operation"] == "DELETE"
    assert history[-1]["rows_removed"] == 8 and history[-1]["files_removed"] == done["files_removed"]
    assert ids(bound.read(version=v1)) == list(range(5))
    assert ids(bound.read(version=done["delta_version"] - 1)) == list(range(8))
    # Other Delta readers see an empty table at the new version.
    dt = deltalake.DeltaTable(str(table_dir(server, cfg)))
    assert dt.version() == done["delta_version"] and dt.to_pyarrow_table().num_rows == 0
    # The table takes rows again; truncating an empty table commits nothing.
    insert(grpc, cfg, range(100, 103))
    assert ids(bound.read()) == [100, 101, 102]
    again = client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
    assert again["rows_removed"] == 3
    empty = client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
    assert empty == {"delta_version": again["delta_version"], "files_removed": 0, "rows_removed": 0}


def test_vacuum_after_truncate_reclaims_the_files(tmp_path):
    server = ServerProcess(tmp_path / "data", args=["--unsafe-short-retention"])
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        cfg = make_config("vacuumed")
        insert(grpc, cfg, range(4))
        client = DatasetClient(grpc, cfg)
        v1 = client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])["delta_version"]
        client.truncate_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
        assert list(table_dir(server, cfg).rglob("*.parquet"))
        done = client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["vacuum"], retention_hours=0)
        assert done["files_deleted"] >= 1
        assert not [p for p in table_dir(server, cfg).rglob("*.parquet") if "_delta_log" not in str(p)]
        with pytest.raises(Exception, match="removed by vacuum"):
            client.read(version=v1)
    finally:
        server.stop()


def test_drop_removes_the_table_and_a_new_registration_starts_clean(server, grpc, unique_table):
    cfg = make_config(unique_table)
    client = DatasetClient(grpc)
    insert(grpc, cfg, range(10))
    client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush", "checkpoint"])
    insert(grpc, cfg, range(10, 13))  # unflushed: flushed before the drop
    directory = table_dir(server, cfg)
    assert directory.is_dir()
    assert list((directory / "_delta_log").glob("*.checkpoint.parquet"))  # not a data file
    data_files = [p for p in directory.rglob("*.parquet") if "_delta_log" not in p.parts]
    with pytest.raises(SchemaError, match="confirm must be the table's full name"):
        client.drop_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.table)
    done = client.drop_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
    # the data files, and the one the drop's flush wrote; never the checkpoint
    assert done["rows_discarded"] == 0 and done["files_deleted"] == len(data_files) + 1
    assert not directory.exists()
    assert not list(directory.parent.glob(".dropped-*"))
    assert cfg.fqn not in {f"{t['catalog']}.{t['schema_name']}.{t['table']}" for t in client.list_datasets()}
    with pytest.raises(NotFoundError):
        client.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)
    with pytest.raises(Exception, match="(?i)does not exist|not found"):
        client.sql(f"SELECT * FROM {cfg.fqn}")
    with pytest.raises(NotFoundError):
        client.drop_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn)
    # The name takes a different schema now, from version 0 with no rows.
    cfg2 = make_config(unique_table, ItemV2)
    with DatasetProducer(cfg2, grpc) as producer:
        producer.insert(ItemV2(id="x", price=1.5))
        assert producer.flush(timeout=60) == 1
    info = client.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)
    assert info["fingerprint"] == cfg2.fingerprint_str and info["num_rows"] == 1
    assert [h["operation"] for h in client.history(cfg.catalog, cfg.schema_name, cfg.table)] == ["CREATE TABLE"]
    assert DatasetClient(grpc, cfg2).read() == [ItemV2(id="x", price=1.5)]


def test_drop_with_discard_wal_drops_unflushed_rows(server, grpc, unique_table):
    cfg = make_config(unique_table)
    insert(grpc, cfg, range(7))
    client = DatasetClient(grpc)
    done = client.drop_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn, discard_wal=True)
    assert done == {"rows_discarded": 7, "files_deleted": 0}
    assert not table_dir(server, cfg).exists()


def test_drop_survives_a_restart_and_needs_the_admin_grant(tmp_path):
    hashed = subprocess.run([str(server_binary()), "hash-password"], input="pw", text=True,
                            capture_output=True, check=True).stdout.strip()
    auth = tmp_path / "users.json"
    auth.write_text(json.dumps({"users": [
        {"name": "admin", "password_hash": hashed, "grants": [{"on": "*.*.*", "allow": ["read", "write", "admin"]}]},
        {"name": "writer", "password_hash": hashed, "grants": [{"on": "life.*.*", "allow": ["read", "write"]}]}]}))
    auth.chmod(0o600)
    data = tmp_path / "data"
    server = ServerProcess(data, args=["--auth-file", str(auth)])
    admin = GrpcConfig(server_uri=server.uri, username="admin", password="pw")
    writer = GrpcConfig(server_uri=server.uri, username="writer", password="pw")
    cfg = make_config("guarded")
    try:
        insert(writer, cfg, range(3))
        for call in (lambda c: c.drop_dataset("life", "cycle", "guarded", confirm=cfg.fqn),
                     lambda c: c.truncate_dataset("life", "cycle", "guarded", confirm=cfg.fqn),
                     lambda c: c.drop_dataset("life", "cycle", "absent", confirm="life.cycle.absent")):
            with pytest.raises(PermissionDeniedError, match="may not admin"):
                call(DatasetClient(writer))
        assert len(DatasetClient(writer, cfg).read()) == 3
        DatasetClient(admin).drop_dataset("life", "cycle", "guarded", confirm=cfg.fqn)
    finally:
        server.stop()
    server = ServerProcess(data, args=["--auth-file", str(auth)])
    try:
        admin = GrpcConfig(server_uri=server.uri, username="admin", password="pw")
        assert DatasetClient(admin).list_datasets() == []
        assert not (data / "life" / "cycle" / "guarded").exists()
    finally:
        server.stop()


def test_drop_while_a_producer_inserts_then_register_anew(server, grpc, unique_table):
    import threading

    cfg = make_config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=10, scheduled_delay_secs=0.01))
    stop = threading.Event()
    refused: List[str] = []

    def keep_inserting() -> None:
        i = 0
        while not stop.is_set():
            producer.insert(Item(id=i, label="old"))
            i += 1
            if i % 100 == 0:
                try:
                    producer.flush(timeout=30)
                except NotFoundError as exc:  # the table was dropped under it
                    refused.append(str(exc))

    thread = threading.Thread(target=keep_inserting)
    thread.start()
    try:
        client = DatasetClient(grpc)
        import time as _time
        deadline = _time.monotonic() + 60
        while producer.stats()["acknowledged"] == 0 and _time.monotonic() < deadline:
            _time.sleep(0.05)
        done = client.drop_dataset(cfg.catalog, cfg.schema_name, cfg.table, confirm=cfg.fqn, discard_wal=True)
        assert done["rows_discarded"] >= 0
        while not refused and _time.monotonic() < deadline:  # the old producer's batches now fail
            _time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        try:
            producer.shutdown(timeout=10)
        except BifrostError as exc:  # batches in flight when the table went: reported, not silent
            assert "was dropped" in str(exc) or "is not registered" in str(exc), exc
    # "was dropped" while the entry is still held, "is not registered" once it is forgotten
    assert refused and ("was dropped" in refused[0] or "is not registered" in refused[0]), refused
    assert not table_dir(server, cfg).exists()
    cfg2 = make_config(unique_table, ItemV2)
    with DatasetProducer(cfg2, grpc) as p:
        p.insert(ItemV2(id="new"))
        assert p.flush(timeout=60) == 1
    assert DatasetClient(grpc, cfg2).read() == [ItemV2(id="new")]
    assert [h["operation"] for h in DatasetClient(grpc).history(cfg.catalog, cfg.schema_name, cfg.table)] == [
        "CREATE TABLE"]
