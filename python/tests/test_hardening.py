"""The server against hostile input and faults: batches that expand when decoded,
pathological SQL, bad configuration, a damaged WAL, names and values that could
never be stored, a table removed under the server, and queries that try to learn
about the host. Each either works or fails with a clear error; nothing
acknowledged is lost and nothing answers from a partial view."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig
from bifrost import BifrostError, QueryError

import raw_grpc
from conftest import ServerProcess, server_binary


class Note(BaseModel):
    text: str
    n: int


def note_config(table: str = "notes", partitioned: bool = False) -> TableConfig:
    return TableConfig(Note, catalog="hard", schema_name="tests", table=table,
                       partition_columns=["text"] if partitioned else None)


def register(server: ServerProcess, cfg: TableConfig) -> None:
    with DatasetProducer(cfg, GrpcConfig(server_uri=server.uri)) as producer:
        producer.register()


def note_batch(cfg: TableConfig, text: pa.Array, n: int) -> pa.RecordBatch:
    """A batch in the table's layout (system columns filled) with the given text column."""
    rows = len(text)
    now = dt.datetime.now(dt.timezone.utc)
    return pa.RecordBatch.from_arrays(
        [text, pa.array(range(n, n + rows), pa.int64()),
         pa.array([now] * rows, pa.timestamp("us", tz="UTC")),
         pa.array([now.date()] * rows, pa.date32()),
         pa.array(["batch"] * rows, pa.string())],
        names=[f.name for f in cfg.arrow_schema])


def ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def send(server: ServerProcess, cfg: TableConfig, data: bytes, producer_id: str = "", sequence: int = 0):
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    return raw_grpc.call(server.uri, "InsertBatch",
                         raw_grpc.insert_request(name, cfg.fingerprint_str, data, producer_id, sequence))


def count(server: ServerProcess, cfg: TableConfig) -> int:
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    return client.sql(f"SELECT count(*) AS n FROM {cfg.fqn}").to_arrow().column("n")[0].as_py()


def rss_mib(server: ServerProcess) -> float:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def bomb(cfg: TableConfig, value_bytes: int, references: int) -> bytes:
    """One value referenced many times through a dictionary: small on the wire."""
    text = pa.DictionaryArray.from_arrays(pa.array([0] * references, pa.int16()),
                                          pa.array(["x" * value_bytes], pa.string()))
    return ipc(note_batch(cfg, text, 0))


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


def bind_read_only(path: Path) -> None:
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)


# ---- resource bombs ---------------------------------------------------------------


def test_dictionary_bomb_is_refused_before_the_wal(data_dir):
    server = ServerProcess(data_dir)
    try:
        cfg = note_config()
        register(server, cfg)
        before = rss_mib(server)
        data = bomb(cfg, 1 << 20, 20000)  # 1 MiB value x 20,000 = 20 GB decoded
        assert len(data) < 2 << 20
        _, error = send(server, cfg, data)
        assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--max-batch-bytes" in error.details() and "'text'" in error.details()
        assert rss_mib(server) - before < 200
        # Nothing reached the WAL: a restart replays nothing and comes up.
        server.kill()
        server = ServerProcess(data_dir)
        assert count(server, cfg) == 0
        # A dictionary batch under the bound is an ordinary insert.
        _, error = send(server, cfg, bomb(cfg, 1000, 100))
        assert error is None
        assert count(server, cfg) == 100
    finally:
        server.stop()


def test_replay_quarantines_a_record_over_the_bound_and_comes_up(data_dir):
    """A WAL record that can never be applied (here: over a bound lowered since it
    was written) is skipped with an ERROR naming producer and sequence; replay
    goes on and the segment is kept aside."""
    server = ServerProcess(data_dir)
    cfg = note_config()
    register(server, cfg)
    assert send(server, cfg, bomb(cfg, 100_000, 50), "big", 1)[1] is None      # 5 MB decoded
    assert send(server, cfg, bomb(cfg, 10, 7), "small", 1)[1] is None
    server.kill()
    server = ServerProcess(data_dir, args=["--max-batch-bytes", "1MiB"])
    try:
        assert count(server, cfg) == 7
        log = server.log()
        assert "producer 'big', sequence 1" in log and "--max-batch-bytes" in log
        wal = data_dir / "hard" / "tests" / "notes" / "_bifrost" / "wal"
        assert list(wal.glob("*.wal.corrupt"))
    finally:
        server.stop()


def test_unflushed_rows_are_bounded_by_the_memory_limit(data_dir):
    """--memory-limit 64MB leaves 32 MiB for acknowledged rows not yet flushed:
    a second 20 MB batch right behind a first one waits (RESOURCE_EXHAUSTED,
    which producers retry) and is accepted once the flush made room."""
    server = ServerProcess(data_dir, args=["--memory-limit", "64MB"])
    try:
        cfg = note_config()
        register(server, cfg)
        assert send(server, cfg, bomb(cfg, 1 << 20, 20), "p", 1)[1] is None
        _, error = send(server, cfg, bomb(cfg, 1 << 20, 20), "p", 2)
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--memory-limit" in error.details()
        deadline = time.monotonic() + 30
        while error is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            _, error = send(server, cfg, bomb(cfg, 1 << 20, 20), "p", 2)
        assert error is None
        assert count(server, cfg) == 40
    finally:
        server.stop()


def test_pathological_sql_is_refused_before_planning(server):
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    chain = "with " + ", ".join(["a0 as (select 1 as x)"] + [f"a{i} as (select * from a{i - 1})" for i in range(1, 2000)])
    before = rss_mib(server)
    with pytest.raises(BifrostError, match="--max-query-selects"):
        client.sql(chain + " select * from a1999")
    with pytest.raises(BifrostError, match="--max-value-bytes"):
        client.sql("select length(repeat('x', 2000000000))")
    with pytest.raises(BifrostError, match="--max-value-bytes"):
        client.sql("select lpad('a', 3000000000, 'b')")
    assert rss_mib(server) - before < 300
    # Ordinary use of the same functions works.
    assert client.sql("select length(repeat('ab', 1000)) as n").to_arrow().column("n")[0].as_py() == 2000


def test_sql_text_longer_than_the_limit_is_refused(data_dir):
    server = ServerProcess(data_dir, args=["--max-sql-bytes", "1KiB"])
    try:
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        with pytest.raises(BifrostError, match="--max-sql-bytes"):
            client.sql("select 1 " + " " * 2000)
        assert client.sql("select 1 as one").to_arrow().column("one")[0].as_py() == 1
    finally:
        server.stop()


# ---- startup and configuration ------------------------------------------------------


def run_server(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), "--port", "0", *args], capture_output=True,
                          text=True, timeout=30)


def test_bad_values_and_data_dirs_fail_at_start_with_one_line(tmp_path):
    for args, needle, code in [
        (["--memory-limit", "4XB"], "--memory-limit", 2),
        (["--max-batch-bytes", "lots"], "--max-batch-bytes", 2),
        (["--vacuum-retention", "0.5"], "--unsafe-short-retention", 2),
        (["--client-stall-timeout", "-1"], "--client-stall-timeout", 2),
    ]:
        done = run_server("--data-dir", str(tmp_path / "d"), *args)
        assert done.returncode == code, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], done.stderr
    a_file = tmp_path / "file"
    a_file.write_text("x")
    done = run_server("--data-dir", str(a_file))
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0
    assert "not a directory" in done.stderr


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a read-only file system")
def test_read_only_data_dir_refuses_to_start(data_dir):
    server = ServerProcess(data_dir)
    cfg = note_config()
    register(server, cfg)
    assert send(server, cfg, ipc(note_batch(cfg, pa.array(["a"] * 543), 0)))[1] is None
    server.kill()
    bind_read_only(data_dir)
    try:
        done = run_server("--data-dir", str(data_dir))
        assert done.returncode == 1
        assert "not writable" in done.stderr and done.stderr.strip().count("\n") == 0
    finally:
        subprocess.run(["umount", str(data_dir)], check=True)
    server = ServerProcess(data_dir)
    try:
        assert count(server, cfg) == 543
    finally:
        server.stop()


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a read-only file system")
def test_a_table_whose_wal_cannot_be_replayed_refuses_queries_instead_of_answering_zero(data_dir):
    server = ServerProcess(data_dir)
    cfg = note_config()
    register(server, cfg)
    assert send(server, cfg, ipc(note_batch(cfg, pa.array(["a"] * 500), 0)))[1] is None
    server.kill()
    wal = data_dir / "hard" / "tests" / "notes" / "_bifrost" / "wal"
    bind_read_only(wal)
    server = ServerProcess(data_dir)
    try:
        with pytest.raises(BifrostError, match="not available"):
            count(server, cfg)
        subprocess.run(["umount", str(wal)], check=True)
        deadline = time.monotonic() + 15
        while True:  # the server retries opening the table every 2 s
            try:
                assert count(server, cfg) == 500
                break
            except BifrostError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        subprocess.run(["umount", str(wal)], capture_output=True)
        server.stop()


# ---- the WAL -----------------------------------------------------------------------


def test_damage_in_the_middle_of_the_wal_loses_only_the_damaged_record(data_dir):
    server = ServerProcess(data_dir)
    cfg = note_config()
    register(server, cfg)
    for k in range(100):  # 100 records of 1,000 rows
        assert send(server, cfg, ipc(note_batch(cfg, pa.array([f"v{k}"] * 1000), k * 1000)))[1] is None
    server.kill()
    wal = data_dir / "hard" / "tests" / "notes" / "_bifrost" / "wal"
    (segment,) = wal.glob("*.wal")
    blob = bytearray(segment.read_bytes())
    at = len(blob) // 10
    blob[at:at + 16] = bytes(b ^ 0xFF for b in blob[at:at + 16])
    segment.write_bytes(bytes(blob))
    server = ServerProcess(data_dir)
    try:
        rows = count(server, cfg)
        assert 98_000 <= rows < 100_000, rows
        log = server.log()
        assert "ERROR" in log and "is damaged" in log and "bytes in" in log
        assert list(wal.glob("*.wal.corrupt"))
    finally:
        server.stop()


@pytest.mark.parametrize("damage", ["cut short", "footer bytes flipped"])
def test_a_damaged_checkpoint_is_logged_and_the_json_commits_are_replayed(data_dir, damage):
    """The newest checkpoint cut short (a torn copy) or with bytes of its Parquet
    footer flipped: the server says so (WARN naming the file) and opens the table
    from its JSON commits, every row there."""
    server = ServerProcess(data_dir)
    cfg = note_config("checkpointed")
    try:
        register(server, cfg)
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        for k in range(4):
            assert send(server, cfg, ipc(note_batch(cfg, pa.array([f"v{k}"] * 100), k * 100)))[1] is None
            client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])
        client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["checkpoint"])
    finally:
        server.stop()
    log_dir = data_dir / "hard" / "tests" / "checkpointed" / "_delta_log"
    (checkpoint,) = log_dir.glob("*.checkpoint.parquet")
    blob = bytearray(checkpoint.read_bytes())
    if damage == "cut short":
        blob = blob[: len(blob) * 2 // 3]
    else:  # the footer (thrift metadata) sits before its 4-byte length and "PAR1"
        footer = int.from_bytes(blob[-8:-4], "little")
        at = len(blob) - 8 - footer // 2
        blob[at:at + 8] = bytes(b ^ 0xFF for b in blob[at:at + 8])
    checkpoint.write_bytes(bytes(blob))
    server = ServerProcess(data_dir)
    try:
        assert count(server, cfg) == 400
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        ns = client.sql(f"SELECT n FROM {cfg.fqn} WHERE n >= 0").to_arrow()["n"].to_pylist()
        assert sorted(ns) == list(range(400))
        log = server.full_log()
        assert checkpoint.name in log and "replaying the JSON commits instead" in log, log
        assert "WARN" in log
    finally:
        server.stop()


# ---- names, values and the wire ------------------------------------------------------


def test_nul_bytes_empty_column_names_and_trailing_bytes_are_refused(server):
    schema = '{"properties": {"a": {"type": "integer"}}, "required": ["a"], "title": "M", "type": "object"}'
    _, error = raw_grpc.call(server.uri, "RegisterTable",
                             raw_grpc.register_request(raw_grpc.table_name("hard", "tests", b"nul\x00x"), schema))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "NUL" in error.details()
    _, error = raw_grpc.call(server.uri, "Query", raw_grpc.query_request(b"select 1\x00; select 2"))
    assert error is not None and "NUL" in error.details()
    empty = '{"properties": {"": {"type": "integer"}}, "required": [""], "title": "M", "type": "object"}'
    _, error = raw_grpc.call(server.uri, "RegisterTable",
                             raw_grpc.register_request(raw_grpc.table_name("hard", "tests", "empty_col"), empty))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty name" in error.details()
    cfg = note_config("trailing")
    register(server, cfg)
    _, error = send(server, cfg, ipc(note_batch(cfg, pa.array(["a"]), 0)) + b"junk")
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after the end-of-stream marker" in error.details()
    assert count(server, cfg) == 0


def test_partition_values_that_cannot_be_a_directory_are_refused_at_insert(data_dir):
    server = ServerProcess(data_dir)
    try:
        cfg = note_config("by_text", partitioned=True)
        register(server, cfg)
        for bad in ["x" * 300, "/" * 86, "a\x00b"]:
            _, error = send(server, cfg, ipc(note_batch(cfg, pa.array([bad]), 0)))
            assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, bad[:10]
            assert "partition column 'text'" in error.details()
        fine = "x" * 200
        assert send(server, cfg, ipc(note_batch(cfg, pa.array([fine, "short"]), 0)))[1] is None
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        assert client.maintain_dataset("hard", "tests", "by_text", ["flush"])["rows_flushed"] == 2
        texts = client.sql(f"SELECT text FROM {cfg.fqn} ORDER BY text").to_arrow().column("text").to_pylist()
        assert texts == ["short", fine]
    finally:
        server.stop()


def test_a_table_directory_removed_under_the_server_is_dropped_and_can_be_registered_again(data_dir):
    server = ServerProcess(data_dir)
    try:
        cfg = note_config("removed")
        grpc_config = GrpcConfig(server_uri=server.uri)
        register(server, cfg)
        assert send(server, cfg, ipc(note_batch(cfg, pa.array(["a"] * 200), 0)))[1] is None
        shutil.rmtree(data_dir / "hard" / "tests" / "removed")
        deadline = time.monotonic() + 15
        while True:
            try:
                count(server, cfg)
            except BifrostError:
                break
            assert time.monotonic() < deadline, "the removed table still answers"
            time.sleep(0.3)
        assert "was removed while the server ran" in server.log()
        import json
        response, error = raw_grpc.call(server.uri, "RegisterTable", raw_grpc.register_request(
            raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table), json.dumps(Note.model_json_schema())))
        assert error is None and b"created" in response and b"already_exists" not in response
        with DatasetProducer(cfg, grpc_config) as producer:
            producer.insert(Note(text="b", n=1))
            assert producer.flush(timeout=30) == 1
        assert count(server, cfg) == 1
    finally:
        server.stop()


# ---- what queries may see ---------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "select * from pg_settings",
    "select * from pg_catalog.pg_settings",
    "select current_setting('allowed_directories')",
    "PRAGMA database_list",
    "PRAGMA show_tables",
    "select * from information_schema.tables",
    "select * from duckdb_settings()",
    "select * from duckdb_views()",
    "SHOW ALL TABLES",
    "select * from pg_views",
])
def test_queries_learn_nothing_about_the_host(server, sql):
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    with pytest.raises(BifrostError) as caught:
        client.sql(sql)
    assert str(server.data_dir) not in str(caught.value)


def test_describe_gives_a_location_relative_to_the_data_dir(server):
    cfg = note_config("located")
    register(server, cfg)
    info = DatasetClient(GrpcConfig(server_uri=server.uri)).describe_dataset("hard", "tests", "located")
    assert info["location"] == "hard/tests/located"
    assert str(server.data_dir) not in str(info)


# ---- vacuum ----------------------------------------------------------------------------


def test_short_vacuum_retention_needs_the_servers_opt_in(server):
    cfg = note_config("retention")
    register(server, cfg)
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    with pytest.raises(BifrostError, match="--unsafe-short-retention"):
        client.maintain_dataset("hard", "tests", "retention", ["vacuum"], retention_hours=0)
    assert client.maintain_dataset("hard", "tests", "retention", ["vacuum"], retention_hours=2)["files_deleted"] == 0


class Tick(BaseModel):
    id: int
    source: str


def test_two_servers_vacuuming_at_retention_zero_lose_nothing(tmp_path):
    """Two servers on one directory, producers on both, and vacuum with retention
    0 every few hundred milliseconds on both: a file is deleted only when no live
    writer can still commit it (write leases), so every acknowledged row ends up
    in Delta exactly once."""
    deltalake = pytest.importorskip("deltalake")
    data_dir = tmp_path / "data"
    args = ["--unsafe-short-retention", "--vacuum-retention", "0.0003", "--flush-rows", "3000",
            "--flush-interval", "0.3", "--maintenance-interval", "1", "--compact-min-files", "4"]
    a = ServerProcess(data_dir, args=args)
    b = ServerProcess(data_dir, args=args)
    cfg = TableConfig(Tick, catalog="hard", schema_name="tests", table="vacuumed")
    per_producer, producers = 20_000, 4
    stop = False
    errors = []

    def produce(k: int) -> None:
        server = a if k % 2 == 0 else b
        try:
            with DatasetProducer(cfg, GrpcConfig(server_uri=server.uri), WriteConfig(batch_size=500)) as p:
                for i in range(per_producer):
                    p.insert(Tick(id=k * per_producer + i, source=f"p{k}"))
                    if i % 2000 == 0:
                        time.sleep(0.05)
                assert p.flush(timeout=120) == per_producer
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    def vacuum() -> None:
        k = 0
        while not stop:
            server = (a, b)[k % 2]
            try:
                DatasetClient(GrpcConfig(server_uri=server.uri)).maintain_dataset(
                    "hard", "tests", "vacuumed", ["vacuum"], retention_hours=0)
            except BifrostError:
                pass  # not registered yet on the first rounds
            k += 1
            time.sleep(0.2)

    import threading
    try:
        with DatasetProducer(cfg, GrpcConfig(server_uri=a.uri)) as p:
            p.register()
        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        vacuumer = threading.Thread(target=vacuum)
        vacuumer.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop = True
        vacuumer.join()
        assert not errors, errors
        for server in (a, b):
            DatasetClient(GrpcConfig(server_uri=server.uri)).maintain_dataset(
                "hard", "tests", "vacuumed", ["flush"])
        table = deltalake.DeltaTable(str(data_dir / "hard" / "tests" / "vacuumed"))
        ids = table.to_pyarrow_table(columns=["id"]).column("id").to_pylist()
        assert len(ids) == producers * per_producer
        assert sorted(ids) == list(range(producers * per_producer))
        deadline = time.monotonic() + 10  # each server reads the other's commits every second
        while ((count(a, cfg), count(b, cfg)) != (producers * per_producer,) * 2
               and time.monotonic() < deadline):
            time.sleep(0.2)
        assert count(a, cfg) == count(b, cfg) == producers * per_producer
    finally:
        stop = True
        a.stop()
        b.stop()


def test_a_missing_or_unreadable_data_file_names_the_table_and_the_file(data_dir):
    server = ServerProcess(data_dir)
    try:
        damaged, healthy = note_config("damaged"), note_config("healthy")
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        for cfg in (damaged, healthy):
            register(server, cfg)
            for k in range(2):  # two flushes, two files
                assert send(server, cfg, ipc(note_batch(cfg, pa.array(["a"] * 10), k * 10)))[1] is None
                client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])
        table_path = data_dir / "hard" / "tests" / "damaged"
        files = sorted(table_path.rglob("*.parquet"), key=lambda p: p.stat().st_mtime)
        assert len(files) == 2
        victim = files[-1]
        original = victim.read_bytes()
        relative = str(victim.relative_to(table_path))
        # a query that reads the rows (a plain count(*) is answered from the log)
        reading = f"SELECT sum(length(text)) AS n FROM {damaged.fqn}"
        for damage in ("remove", "garbage"):
            if damage == "remove":
                victim.unlink()
            else:
                victim.write_bytes(b"garbage")
            with pytest.raises(BifrostError) as caught:
                client.sql(reading).to_arrow()
            message = str(caught.value)
            assert "hard.tests.damaged" in message and relative in message, message
            assert str(data_dir) not in message
            assert count(server, healthy) == 20  # other tables are not affected
            assert client.describe_dataset("hard", "tests", "damaged")["num_files"] == 2
        victim.write_bytes(original)  # the operator restores the file
        assert count(server, damaged) == 20
    finally:
        server.stop()


def test_bit_rot_is_found_by_verify_and_never_copied_by_compaction(data_dir):
    """256 flipped bytes inside a Parquet file: verify names the file and what is
    wrong; compaction leaves it alone instead of rewriting wrong values into a
    fresh file; the add action carries the checksum in its tags."""
    import json
    server = ServerProcess(data_dir, args=["--compact-min-files", "0", "--maintenance-interval", "0"])
    try:
        cfg = note_config("rotting")
        register(server, cfg)
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        for k in range(3):
            assert send(server, cfg, ipc(note_batch(cfg, pa.array([f"v{k}"] * 1000), k * 1000)))[1] is None
            client.maintain_dataset("hard", "tests", "rotting", ["flush"])
        table_path = data_dir / "hard" / "tests" / "rotting"
        adds = [json.loads(line)["add"] for f in sorted((table_path / "_delta_log").glob("*.json"))
                for line in f.read_text().splitlines() if '"add"' in line]
        assert len(adds) == 3 and all(len(a["tags"]["bifrost.crc32c"]) == 8 for a in adds)
        done = client.maintain_dataset("hard", "tests", "rotting", ["verify"])
        assert done["files_verified"] == 3 and done["bad_files"] == []
        victim = table_path / adds[1]["path"]
        blob = bytearray(victim.read_bytes())
        middle = len(blob) // 2
        blob[middle:middle + 256] = bytes(b ^ 0x5A for b in blob[middle:middle + 256])
        victim.write_bytes(bytes(blob))
        done = client.maintain_dataset("hard", "tests", "rotting", ["verify"])
        assert len(done["bad_files"]) == 1
        assert done["bad_files"][0].startswith(adds[1]["path"]) and "checksum" in done["bad_files"][0]
        done = client.maintain_dataset("hard", "tests", "rotting", ["optimize"])
        assert done["files_removed"] == 2  # the two intact files; the damaged one stays as it is
        assert "compaction leaves data file" in server.log()
        assert victim.exists()
    finally:
        server.stop()
