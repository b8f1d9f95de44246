"""The storage engine end to end: acknowledged rows are durable (WAL, replayed after
kill -9, torn tails discarded) and queryable at once; the background writer turns
them into Parquet + Delta commits; checkpoints, compaction, vacuum and log cleanup
keep the table valid for delta-rs and polars; two servers can share a data
directory; a full disk fails inserts without losing acknowledged rows."""
from __future__ import annotations

import json
import os
import random
import resource
import threading
import time
from pathlib import Path
from typing import List

import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

from conftest import ServerProcess

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

LONG = os.environ.get("BIFROST_LONG_TESTS") == "1"
SENSORS = ["north", "south", "east"]


class Reading(BaseModel):
    id: int
    sensor: str
    value: float


def readings(start: int, n: int) -> List[Reading]:
    return [Reading(id=i, sensor=SENSORS[i % 3], value=i * 0.5) for i in range(start, start + n)]


def config(table: str = "readings") -> TableConfig:
    return TableConfig(Reading, catalog="store", schema_name="tests", table=table, partition_columns=["sensor"])


def table_dir(data_dir: Path, cfg: TableConfig) -> Path:
    return data_dir / cfg.catalog / cfg.schema_name / cfg.table


def ids_in(server: ServerProcess, cfg: TableConfig) -> List[int]:
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    return client.sql(f"SELECT id FROM {cfg.fqn}").to_arrow().column("id").to_pylist()


def maintain(server: ServerProcess, cfg: TableConfig, *ops: str, retention_hours=None) -> dict:
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    return client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, list(ops), retention_hours)


def describe(server: ServerProcess, cfg: TableConfig) -> dict:
    return DatasetClient(GrpcConfig(server_uri=server.uri)).describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)


def insert(server: ServerProcess, cfg: TableConfig, rows: List[Reading], batch_size: int = 100) -> None:
    with DatasetProducer(cfg, GrpcConfig(server_uri=server.uri), WriteConfig(batch_size=batch_size)) as p:
        p.insert_many(rows)
        assert p.flush(timeout=60) == len(rows)


def delta_ids(path: Path) -> List[int]:
    return deltalake.DeltaTable(str(path)).to_pyarrow_table(columns=["id"]).column("id").to_pylist()


def live_files(path: Path) -> List[str]:
    import pyarrow as pa
    return pa.table(deltalake.DeltaTable(str(path)).get_add_actions(flatten=True)).column("path").to_pylist()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def test_rows_visible_at_ack_before_any_parquet(data_dir):
    """Acknowledged rows are queryable at once, from the tail, with no Parquet file
    and no commit yet; a flush moves them to Parquet without a row seen twice."""
    server = ServerProcess(data_dir)
    try:
        cfg = config()
        insert(server, cfg, readings(0, 300))
        path = table_dir(data_dir, cfg)
        assert sorted(ids_in(server, cfg)) == list(range(300))
        assert list(path.rglob("*.parquet")) == []
        assert sorted(p.name for p in (path / "_delta_log").glob("*.json")) == ["00000000000000000000.json"]
        info = describe(server, cfg)
        assert info["tail_rows"] == 300 and info["num_rows"] == 300
        assert len(list((path / "_bifrost" / "wal").glob("*.wal"))) == 1

        done = maintain(server, cfg, "flush")
        assert done["rows_flushed"] == 300 and done["delta_version"] == 1
        assert sorted(ids_in(server, cfg)) == list(range(300))
        assert len(list(path.rglob("*.parquet"))) == 3  # one per sensor partition
        assert list((path / "_bifrost" / "wal").glob("*.wal")) == []
        assert describe(server, cfg)["tail_rows"] == 0
        assert sorted(delta_ids(path)) == list(range(300))
        commit = [json.loads(line) for line in (path / "_delta_log" / "00000000000000000001.json").read_text().splitlines()]
        txns = [a["txn"] for a in commit if "txn" in a]
        assert len(txns) == 1 and txns[0]["version"] == 3  # the producer's 3 batches, one commit
    finally:
        server.stop()


def test_background_writer_flushes_by_rows(data_dir):
    """With a row threshold the writer commits on its own, each commit holding at
    least the threshold; what stays below it waits in the tail (still queryable)
    until the time limit or an explicit flush. Few commits, no loss."""
    server = ServerProcess(data_dir, args=["--flush-rows", "250"])
    try:
        cfg = config()
        insert(server, cfg, readings(0, 1000), batch_size=50)
        path = table_dir(data_dir, cfg)
        deadline = time.monotonic() + 30
        while describe(server, cfg)["tail_rows"] >= 250 and time.monotonic() < deadline:
            time.sleep(0.1)
        tail = describe(server, cfg)["tail_rows"]
        assert tail < 250
        flushes = len(list((path / "_delta_log").glob("*.json"))) - 1
        assert 1 <= flushes <= 4  # each writer flush takes >= 250 of the 1000 rows
        assert sorted(ids_in(server, cfg)) == list(range(1000))
        if tail:
            assert maintain(server, cfg, "flush")["rows_flushed"] == tail
        assert describe(server, cfg)["tail_rows"] == 0
        assert sorted(delta_ids(path)) == list(range(1000))
        assert sorted(ids_in(server, cfg)) == list(range(1000))
    finally:
        server.stop()


def test_acknowledged_rows_survive_kill9_and_torn_wal_tail(data_dir):
    server = ServerProcess(data_dir)
    cfg = config()
    insert(server, cfg, readings(0, 500))
    server.kill()
    path = table_dir(data_dir, cfg)
    segments = list((path / "_bifrost" / "wal").glob("*.wal"))
    assert len(segments) == 1
    with open(segments[0], "ab") as f:  # a write cut short by the crash
        f.write(b"BFWR\x00\x10\x00\x00garbage")
    server = ServerProcess(data_dir)
    try:
        assert sorted(ids_in(server, cfg)) == list(range(500))
        assert "torn tail discarded" in server.log()
        # Replayed rows were committed neither before nor now twice.
        insert(server, cfg, readings(500, 100))
        maintain(server, cfg, "flush")
        assert sorted(delta_ids(path)) == list(range(600))
    finally:
        server.stop()


def _crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _wal_records(blob: bytes) -> List[bytes]:
    """Splits a WAL segment (8-byte header, then magic | length | CRC-32C | payload,
    then zeros where appends bypass the page cache: the rest of the last record's
    4 KiB block and blocks written ahead of small appends)."""
    assert blob[:8] == b"BFWAL01\n"
    records, off = [], 8
    while off < len(blob):
        if blob[off:off + 4] != b"BFWR":
            assert not any(blob[off:]) and len(blob) % 4096 == 0
            break
        n = int.from_bytes(blob[off + 4:off + 8], "little")
        records.append(blob[off:off + 12 + n])
        off += 12 + n
    return records


def _wal_frame(payload: bytes) -> bytes:
    n = len(payload).to_bytes(4, "little")
    crc = _crc32c(payload, _crc32c(n))
    return b"BFWR" + n + crc.to_bytes(4, "little") + payload


def test_undecodable_wal_record_does_not_take_later_records_with_it(data_dir):
    """A record whose checksum matches but whose content cannot be decoded (a bug,
    not a torn write) is skipped at replay; the acknowledged records after it are
    replayed and the segment is kept aside as .corrupt."""
    server = ServerProcess(data_dir)
    cfg = config()
    insert(server, cfg, readings(0, 300))  # three batches, three WAL records
    server.kill()
    wal = table_dir(data_dir, cfg) / "_bifrost" / "wal"
    (segment,) = wal.glob("*.wal")
    blob = segment.read_bytes()
    records = _wal_records(blob)
    assert len(records) == 3
    bogus = _wal_frame(b"\x01\x00\x00" + (99).to_bytes(8, "little") + b"not an Arrow IPC stream")
    segment.write_bytes(blob[:8] + records[0] + bogus + records[1] + records[2])
    server = ServerProcess(data_dir)
    try:
        assert sorted(ids_in(server, cfg)) == list(range(300))
        assert "cannot be applied" in server.log() and "producer" in server.log()
        assert maintain(server, cfg, "flush")["rows_flushed"] == 300
        assert sorted(delta_ids(table_dir(data_dir, cfg))) == list(range(300))
        assert [p.name for p in wal.iterdir()] == [segment.name + ".corrupt"]
    finally:
        server.stop()


def test_kill9_after_commit_before_wal_delete_applies_once(data_dir):
    """A WAL segment whose batches were committed already (crash between commit and
    segment deletion) is replayed as duplicates: the txn versions skip them."""
    server = ServerProcess(data_dir)
    cfg = config()
    insert(server, cfg, readings(0, 200))
    path = table_dir(data_dir, cfg)
    segment = next((path / "_bifrost" / "wal").glob("*.wal"))
    saved = segment.read_bytes()
    maintain(server, cfg, "flush")
    server.kill()
    segment.write_bytes(saved)  # as if the crash came before its deletion
    server = ServerProcess(data_dir)
    try:
        assert sorted(ids_in(server, cfg)) == list(range(200))
        assert describe(server, cfg)["tail_rows"] == 0
    finally:
        server.stop()
    assert sorted(delta_ids(path)) == list(range(200))


def test_crash_loop_every_acknowledged_row_exactly_once(data_dir):
    """Several producers insert without pause while the server is killed with
    SIGKILL at random moments (during inserts, flushes and commits) and restarted;
    afterwards every row is present exactly once and delta-rs agrees."""
    cycles = 100 if LONG else 20
    rng = random.Random(11)
    args = ["--flush-rows", "400", "--flush-interval", "0.3", "--checkpoint-interval", "5"]
    server = ServerProcess(data_dir, args=args)
    port = server.port
    cfg = config("crash")
    grpc = GrpcConfig(server_uri=f"localhost:{port}")
    stop = threading.Event()
    n_producers = 3
    counts = [0] * n_producers
    producers = [DatasetProducer(cfg, grpc, WriteConfig(batch_size=40, scheduled_delay_secs=0.02))
                 for _ in range(n_producers)]

    def run(k: int) -> None:
        i = 0
        while not stop.is_set():
            producers[k].insert(Reading(id=k * 10_000_000 + i, sensor=SENSORS[i % 3], value=float(i)))
            i += 1
            if i % 40 == 0:
                time.sleep(0.005)
        counts[k] = i

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_producers)]
    for t in threads:
        t.start()
    try:
        for _ in range(cycles):
            time.sleep(rng.uniform(0.05, 0.5))
            server.kill()
            server = ServerProcess(data_dir, port=port, args=args)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        for p in producers:
            p.flush(timeout=120)
            stats = p.stats()
            assert stats["failed"] == 0 and stats["dropped"] == 0
            p.shutdown()
        expected = sorted(k * 10_000_000 + i for k in range(n_producers) for i in range(counts[k]))
        assert sum(counts) > cycles * 40  # the load really ran through the crashes
        got = ids_in(server, cfg)
        assert len(got) == len(set(got)), "a row is present twice"
        assert sorted(got) == expected, f"{len(set(expected) - set(got))} acknowledged rows lost"
        maintain(server, cfg, "flush")
        assert sorted(delta_ids(table_dir(data_dir, cfg))) == expected
    finally:
        server.stop()


def test_two_servers_append_to_one_table(tmp_path):
    """Two server processes on one data directory commit concurrently: the log is
    contiguous, no commit is lost, delta-rs and polars read every row, and each
    server's view catches up with the other's commits."""
    data = tmp_path / "data"
    args = ["--flush-rows", "150", "--flush-interval", "0.2"]
    a = ServerProcess(data, args=args)
    b = ServerProcess(data, args=args)
    cfg = config("shared")
    try:
        jobs = [threading.Thread(target=insert, args=(srv, cfg, readings(start, 3000), 50))
                for srv, start in ((a, 0), (b, 100_000))]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join(120)
        maintain(a, cfg, "flush")
        maintain(b, cfg, "flush")
        path = table_dir(data, cfg)
        versions = sorted(int(p.name[:20]) for p in (path / "_delta_log").glob("*.json"))
        assert versions == list(range(len(versions))) and len(versions) > 4
        # both servers committed (each commit carries its producer's txn; a flush takes
        # whatever its generations hold, so how many commits there are depends on speed)
        app_ids = {json.loads(line)["txn"]["appId"]
                   for f in (path / "_delta_log").glob("*.json")
                   for line in f.read_text().splitlines() if '"txn"' in line}
        assert len(app_ids) == 2, app_ids
        expected = sorted(list(range(3000)) + list(range(100_000, 103_000)))
        assert sorted(delta_ids(path)) == expected
        assert sorted(pl.read_delta(str(path))["id"].to_list()) == expected
        for srv in (a, b):
            deadline = time.monotonic() + 15
            while sorted(ids_in(srv, cfg)) != expected and time.monotonic() < deadline:
                time.sleep(0.2)
            assert sorted(ids_in(srv, cfg)) == expected
    finally:
        a.stop()
        b.stop()


def test_table_registered_by_another_server_becomes_queryable(tmp_path):
    """A table that only the other server writes to shows up here for SQL and in
    list_datasets without any call on this server touching it first."""
    data = tmp_path / "data"
    a = ServerProcess(data)
    b = ServerProcess(data)
    cfg = config("elsewhere")
    try:
        insert(a, cfg, readings(0, 120))
        maintain(a, cfg, "flush")
        client = DatasetClient(GrpcConfig(server_uri=b.uri))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if client.sql(f"SELECT count(*) AS n FROM {cfg.fqn}").to_arrow().column("n")[0].as_py() == 120:
                    break
            except Exception:  # noqa: BLE001 - not there yet
                pass
            time.sleep(0.2)
        assert sorted(ids_in(b, cfg)) == list(range(120))
        assert cfg.fqn in {f"{d['catalog']}.{d['schema_name']}.{d['table']}" for d in client.list_datasets()}
    finally:
        a.stop()
        b.stop()


def test_checkpoint_then_log_cleanup_delta_rs_opens_from_checkpoint(data_dir):
    server = ServerProcess(data_dir, args=["--checkpoint-interval", "0", "--maintenance-interval", "0"])
    cfg = config("ckpt")
    path = table_dir(data_dir, cfg)
    try:
        for k in range(8):
            insert(server, cfg, readings(k * 50, 50))
            maintain(server, cfg, "flush")
        done = maintain(server, cfg, "checkpoint")
        assert done["checkpoint_version"] == 8 == done["delta_version"]
        log = path / "_delta_log"
        assert json.loads((log / "_last_checkpoint").read_text())["version"] == 8
        checkpoint = log / "00000000000000000008.checkpoint.parquet"
        import pyarrow.parquet as pq
        actions = pq.read_table(checkpoint)
        assert {"protocol", "metaData", "txn", "add"} <= set(actions.column_names)
        assert actions.column("add").drop_null().length() == len(live_files(path))
        insert(server, cfg, readings(400, 50))
        maintain(server, cfg, "flush")
        # Retention keeps recent commits; with none, everything before the checkpoint goes.
        assert maintain(server, cfg, "cleanup_log")["log_files_deleted"] == 0
        assert maintain(server, cfg, "cleanup_log", retention_hours=0)["log_files_deleted"] == 8
        assert sorted(p.name for p in log.glob("*.json")) == [
            "00000000000000000008.json", "00000000000000000009.json"]
    finally:
        server.stop()
    table = deltalake.DeltaTable(str(path))
    assert table.version() == 9
    assert sorted(table.to_pyarrow_table(columns=["id"]).column("id").to_pylist()) == list(range(450))
    assert sorted(pl.read_delta(str(path))["id"].to_list()) == list(range(450))
    # Our own server opens the table from the checkpoint too.
    server = ServerProcess(data_dir)
    try:
        assert sorted(ids_in(server, cfg)) == list(range(450))
        insert(server, cfg, readings(450, 10))
        assert maintain(server, cfg, "flush")["delta_version"] == 10
    finally:
        server.stop()
    assert len(delta_ids(path)) == 460


def test_compaction_then_vacuum(data_dir):
    server = ServerProcess(data_dir, args=["--compact-min-files", "0", "--maintenance-interval", "0",
                                           "--unsafe-short-retention"])
    cfg = config("compact")
    path = table_dir(data_dir, cfg)
    try:
        for k in range(6):
            insert(server, cfg, readings(k * 30, 30))
            maintain(server, cfg, "flush")
        before = sorted(ids_in(server, cfg))
        files_before = live_files(path)
        assert len(files_before) == 18  # 6 flushes x 3 partitions
        done = maintain(server, cfg, "optimize")
        assert done["files_removed"] == 18 and done["files_added"] == 3
        assert sorted(ids_in(server, cfg)) == before == list(range(180))
        assert sorted(delta_ids(path)) == before
        assert len(live_files(path)) == 3
        # One OPTIMIZE commit for the whole run (version 7), no data change.
        assert done["delta_version"] == 7
        actions = [json.loads(line)
                   for line in (path / "_delta_log" / f"{7:020d}.json").read_text().splitlines()]
        assert all(a[k]["dataChange"] is False for a in actions for k in ("add", "remove") if k in a)
        assert sum("remove" in a for a in actions) == 18
        assert {a["commitInfo"]["operation"] for a in actions if "commitInfo" in a} == {"OPTIMIZE"}
        # Removed files stay until vacuum; a young unreferenced file is kept too.
        on_disk = {str(p.relative_to(path)) for p in path.rglob("*.parquet")}
        assert len(on_disk) == 21
        stray = path / "scouter_partition_date=2020-01-01" / "sensor=north" / "part-stray.parquet"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"left by a crashed writer")
        assert maintain(server, cfg, "vacuum", retention_hours=1)["files_deleted"] == 0
        old = time.time() - 2 * 3600
        os.utime(stray, (old, old))
        for f in files_before:
            os.utime(path / f, (old, old))
        # The removed files are old on disk but were removed just now: kept.
        assert maintain(server, cfg, "vacuum", retention_hours=1)["files_deleted"] == 1
        assert not stray.exists()
        # A checkpoint keeps the tombstones: delta-rs reads it, with the removes in it.
        assert maintain(server, cfg, "checkpoint")["checkpoint_version"] == 7
        import pyarrow.parquet as pq
        checkpoint = pq.read_table(path / "_delta_log" / "00000000000000000007.checkpoint.parquet")
        assert checkpoint.column("remove").drop_null().length() == 18
        assert sorted(delta_ids(path)) == before
        assert maintain(server, cfg, "vacuum", retention_hours=0)["files_deleted"] == 18
        data_files = {str(p.relative_to(path)) for p in path.rglob("*.parquet") if "_delta_log" not in p.parts}
        assert data_files == set(live_files(path))
        assert sorted(ids_in(server, cfg)) == before
    finally:
        server.stop()
    assert sorted(delta_ids(path)) == list(range(180))


def test_maintenance_rejects_bad_requests(data_dir):
    from bifrost import BifrostError, NotFoundError

    server = ServerProcess(data_dir)
    try:
        cfg = config()
        insert(server, cfg, readings(0, 10))
        with pytest.raises(BifrostError, match="unknown maintenance operation 'defrag'"):
            maintain(server, cfg, "defrag")
        with pytest.raises(NotFoundError):
            maintain(server, config("missing"), "flush")
        with pytest.raises(ValueError):
            maintain(server, cfg, "vacuum", retention_hours=-1)
    finally:
        server.stop()


def test_full_disk_fails_inserts_loses_nothing(data_dir):
    """With the server's file size limit hit, inserts fail with a clear status and
    are retried by the producer; acknowledged rows stay; once space is back,
    every row arrives exactly once."""
    server = ServerProcess(data_dir)
    cfg = config("full")
    try:
        insert(server, cfg, readings(0, 100))
        # Writes beyond 64 KiB now fail (EFBIG, like a full disk for this process).
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        grpc = GrpcConfig(server_uri=server.uri)
        producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=500))
        producer.insert_many(readings(100, 3000))
        deadline = time.monotonic() + 30
        while "WAL" not in (producer.stats().get("last_error") or "") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "writing the WAL" in producer.stats()["last_error"]
        assert server.proc.poll() is None
        assert sorted(ids_in(server, cfg))[:100] == list(range(100))
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        producer.flush(timeout=60)
        producer.shutdown()
        got = ids_in(server, cfg)
        assert sorted(got) == list(range(3100))
    finally:
        server.stop()
    assert sorted(delta_ids(table_dir(data_dir, cfg))) == list(range(3100))


def test_replay_skips_records_marked_aborted(data_dir):
    """A WAL record followed by an abort record for it (an insert that reached the
    disk but failed before its acknowledgement) is not replayed."""
    import struct

    server = ServerProcess(data_dir)
    cfg = config("aborted")
    insert(server, cfg, readings(0, 10))   # WAL record 1
    insert(server, cfg, readings(10, 10))  # WAL record 2
    server.kill()
    segment = next((table_dir(data_dir, cfg) / "_bifrost" / "wal").glob("*.wal"))
    with open(segment, "ab") as f:
        f.write(_wal_frame(bytes([2]) + struct.pack("<Q", 2)))
    server = ServerProcess(data_dir)
    try:
        assert sorted(ids_in(server, cfg)) == list(range(10))
    finally:
        server.stop()
    assert sorted(delta_ids(table_dir(data_dir, cfg))) == list(range(10))


def test_automatic_maintenance_compacts_and_checkpoints(data_dir):
    """With maintenance on (the default, here with short periods), many small
    flushes are compacted and checkpointed without anyone asking."""
    args = ["--flush-rows", "20", "--flush-interval", "0.1", "--compact-min-files", "4",
            "--maintenance-interval", "0.5", "--checkpoint-interval", "5"]
    server = ServerProcess(data_dir, args=args)
    cfg = config("auto")
    path = table_dir(data_dir, cfg)
    try:
        for k in range(8):
            insert(server, cfg, readings(k * 30, 30), batch_size=30)
            # Each insert flushed on its own, so that there are many small files to
            # compact: inserts that arrive faster than the flush tick were flushed
            # together (3 flushes of 9 files, below --compact-min-files per partition).
            deadline = time.monotonic() + 30
            while describe(server, cfg)["tail_rows"] > 0:
                assert time.monotonic() < deadline, "an insert was not flushed"
                time.sleep(0.02)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if describe(server, cfg)["tail_rows"] == 0 and len(live_files(path)) <= 3 * 2 \
                    and (path / "_delta_log" / "_last_checkpoint").exists():
                break
            time.sleep(0.2)
        files = live_files(path)
        assert len(files) <= 6, f"{len(files)} live files: not compacted"
        assert (path / "_delta_log" / "_last_checkpoint").exists()
        assert "compacted" in server.log()
        assert sorted(ids_in(server, cfg)) == list(range(240))
    finally:
        server.stop()
    assert sorted(delta_ids(path)) == list(range(240))
