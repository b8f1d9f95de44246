"""The `bifrost` command-line tool, every command run as a subprocess against the
real server: health, tables, describe, history, sql (table, csv, json, parquet
streamed to a file), load (1M-row Parquet, CSV, JSON lines), maintain, tail, and
the CLI conventions (exit 2 for usage errors, exit 1 with one stderr line for a
server refusal)."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

BIN = Path(sys.executable).parent / "bifrost"


class Score(BaseModel):
    user: str
    score: float
    n: int
    at: datetime
    note: Optional[str] = None


def run(server, *args, env_extra=None, check=True, timeout=300, module=False):
    env = {**os.environ, "BIFROST_GRPC_URI": server.uri, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("BIFROST_USERNAME", None)
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "bifrost", *args] if module else [str(BIN), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def make_table(server, name, rows=0):
    config = TableConfig(Score, "cli", "ml", name)
    with DatasetProducer(config, GrpcConfig(server.uri)) as producer:
        for i in range(rows):
            producer.insert(Score(user=f"u{i}", score=i / 2, n=i, at=datetime(2025, 1, 1, tzinfo=timezone.utc),
                                  note=None if i % 2 else f"note {i}"))
        producer.flush()
    return config


def count(server, fqn):
    with DatasetClient(GrpcConfig(server.uri)) as client:
        return client.sql(f"SELECT count(*) AS c FROM {fqn}").to_arrow().column(0)[0].as_py()


def test_console_script_and_module_both_run(server):
    assert BIN.exists(), "the bifrost console script is not installed"
    a = run(server, "health")
    b = run(server, "health", module=True)
    assert "SERVING" in a.stdout and "SERVING" in b.stdout and "bifrost-server 0.1.0 (duckdb v1." in a.stdout
    assert run(server, "--version").stdout.startswith("bifrost")


def test_health_fails_with_exit_1_when_no_server(server):
    proc = run(server, "--server", "localhost:1", "--timeout", "3", "health", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("bifrost: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_usage_errors_exit_2(server):
    assert run(server, "describe", check=False).returncode == 2
    assert run(server, "describe", "not-a-table-name", check=False).returncode == 2
    assert run(server, "nosuchcommand", check=False).returncode == 2
    assert run(server, "maintain", "a.b.c", "explode", check=False).returncode == 2


def test_tables_and_describe(server, unique_table):
    make_table(server, unique_table, rows=3)
    fqn = f"cli.ml.{unique_table}"
    out = run(server, "tables").stdout
    assert fqn in out
    listed = json.loads(run(server, "tables", "--json").stdout)
    assert any(t["table"] == unique_table for t in listed)
    out = run(server, "describe", fqn).stdout
    for column in ("user", "score", "n", "at", "note", "scouter_created_at"):
        assert column in out
    assert "3 (3 in the tail" in out
    info = json.loads(run(server, "describe", fqn, "--json").stdout)
    assert info["num_rows"] == 3 and info["tail_rows"] == 3


def test_describe_missing_table_exits_1(server):
    proc = run(server, "describe", "cli.ml.no_such_table", check=False)
    assert proc.returncode == 1 and "no_such_table" in proc.stderr and "Traceback" not in proc.stderr


def test_sql_table_and_bad_sql(server, unique_table):
    make_table(server, unique_table, rows=5)
    proc = run(server, "sql", f"SELECT user, n, note FROM cli.ml.{unique_table} ORDER BY n")
    assert "u4" in proc.stdout and "NULL" in proc.stdout and "note 0" in proc.stdout
    assert "5 rows" in proc.stderr
    limited = run(server, "sql", "--max-rows", "2", f"SELECT n FROM cli.ml.{unique_table}")
    assert "3 not shown" in limited.stderr
    bad = run(server, "sql", "SELEC nonsense", check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("bifrost: ") and "Traceback" not in bad.stderr
    markup = run(server, "sql", "SELECT * FROM [bold]nope[/bold]", check=False)
    assert markup.returncode == 1 and "[bold]nope[/bold]" in markup.stderr
    write = run(server, "sql", f"DELETE FROM cli.ml.{unique_table}", check=False)
    assert write.returncode == 1


def test_sql_formats_stream_to_files(server, unique_table, tmp_path):
    make_table(server, unique_table, rows=10)
    query = (f"SELECT user, score, n, note, 'a\"b,c' AS quoted, 'NaN'::DOUBLE AS nan, "
             f"'inf'::DOUBLE AS inf, '' AS empty FROM cli.ml.{unique_table} ORDER BY n")
    out = tmp_path / "r.parquet"
    run(server, "sql", "--format", "parquet", "--output", str(out), query)
    table = pq.read_table(out)
    assert table.num_rows == 10 and table.column("n").to_pylist() == list(range(10))
    assert table.column("note").to_pylist()[1] is None

    csv_out = tmp_path / "r.csv"
    run(server, "sql", "-f", "csv", "-o", str(csv_out), query)
    rows = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    assert len(rows) == 10 and rows[3]["quoted"] == 'a"b,c' and rows[0]["user"] == "u0"

    lines = run(server, "sql", "-f", "json", query).stdout.splitlines()
    assert len(lines) == 10
    first = json.loads(lines[0])
    assert first["n"] == 0 and first["nan"] == "NaN" and first["inf"] == "Infinity" and first["empty"] == ""
    assert json.loads(lines[1])["note"] is None


def test_sql_large_result_streams_as_parquet(server, tmp_path):
    out = tmp_path / "big.parquet"
    proc = run(server, "sql", "-f", "parquet", "-o", str(out), "SELECT range AS i, repeat('x', 100) AS s FROM range(2000000)")
    assert "2,000,000 rows" in proc.stderr
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == 2_000_000 and meta.num_row_groups > 1


def test_load_one_million_row_parquet(server, unique_table, tmp_path):
    make_table(server, unique_table)
    n = 1_000_000
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({
        "user": pa.array([f"u{i % 1000}" for i in range(n)]),
        "score": pa.array([i * 0.5 for i in range(n)], pa.float64()),
        "n": pa.array(range(n), pa.int64()),
        "at": pa.array([datetime(2025, 1, 1, tzinfo=timezone.utc)] * n, pa.timestamp("us", "UTC")),
    }), path)
    proc = run(server, "load", f"cli.ml.{unique_table}", str(path))
    assert "loaded 1,000,000 rows" in proc.stderr and "acknowledged 1,000,000" in proc.stderr
    assert count(server, f"cli.ml.{unique_table}") == n
    with DatasetClient(GrpcConfig(server.uri)) as client:
        s = client.sql(f"SELECT sum(n) AS s, count(note) AS c FROM cli.ml.{unique_table}").to_arrow().to_pylist()[0]
    assert s == {"s": n * (n - 1) // 2, "c": 0}


def test_load_csv_and_jsonl(server, unique_table, tmp_path):
    make_table(server, unique_table)
    fqn = f"cli.ml.{unique_table}"
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("user,score,n,at,note\nalice,1.5,1,2025-01-01T00:00:00Z,hi\nbob,nan,2,2025-01-02 10:00:00,\n"
                        'dan,-inf,4,2025-01-04T00:00:00Z,NULL\nerin,0,5,2025-01-05T00:00:00Z,""\n')
    run(server, "load", fqn, str(csv_path), "--no-progress")
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text('{"user": "carol", "score": 3.0, "n": 3, "at": "2025-01-03T00:00:00+00:00", "note": "x\\u0000y"}\n')
    run(server, "load", fqn, str(jsonl))
    with DatasetClient(GrpcConfig(server.uri)) as client:
        rows = client.sql(f"SELECT user, score, n, note FROM {fqn} ORDER BY n").to_arrow().to_pylist()
    assert [r["user"] for r in rows] == ["alice", "bob", "carol", "dan", "erin"]
    assert rows[1]["score"] != rows[1]["score"]  # NaN kept
    assert rows[3]["score"] == float("-inf")
    assert rows[1]["note"] is None and rows[2]["note"] == "x\x00y"
    assert rows[3]["note"] == "NULL" and rows[4]["note"] == ""


def test_load_refuses_bad_input_clearly(server, unique_table, tmp_path):
    make_table(server, unique_table)
    fqn = f"cli.ml.{unique_table}"
    bad = tmp_path / "bad.csv"
    bad.write_text("user,score,n,at,extra\na,1,1,2025-01-01T00:00:00Z,zzz\n")
    proc = run(server, "load", fqn, str(bad), check=False)
    assert proc.returncode == 1 and "extra" in proc.stderr and "Traceback" not in proc.stderr
    missing = tmp_path / "missing.csv"
    missing.write_text("user,score,n\na,1,1\n")
    proc = run(server, "load", fqn, str(missing), check=False)
    assert proc.returncode == 1 and "at" in proc.stderr
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"user": pa.array([], pa.string())}), empty)
    proc = run(server, "load", fqn, str(empty), "--format", "parquet", check=False)
    assert proc.returncode == 1 and "required" in proc.stderr
    assert run(server, "load", fqn, str(tmp_path / "nope.csv"), check=False).returncode == 2
    unknown = tmp_path / "data.txt"
    unknown.write_text("x")
    assert run(server, "load", fqn, str(unknown), check=False).returncode == 2
    assert count(server, fqn) == 0


def test_maintain_and_history(server, unique_table):
    make_table(server, unique_table, rows=20)
    fqn = f"cli.ml.{unique_table}"
    proc = run(server, "maintain", fqn, "flush", "checkpoint", "verify")
    assert "rows_flushed" in proc.stdout and "files_verified" in proc.stdout
    info = json.loads(run(server, "describe", fqn, "--json").stdout)
    assert info["num_rows"] == 20 and info["tail_rows"] == 0 and info["num_files"] >= 1
    proc = run(server, "history", fqn, "--json", "--data-dir", str(server.data_dir))
    commits = [json.loads(line) for line in proc.stdout.splitlines()]
    assert commits and commits[0]["version"] == info["delta_version"]
    assert run(server, "history", fqn, "--data-dir", str(server.data_dir)).returncode == 0
    missing = run(server, "history", fqn, "--data-dir", str(server.data_dir / "nowhere"), check=False)
    assert missing.returncode == 1 and "--data-dir" in missing.stderr


def test_tail_prints_newest_then_follows(server, unique_table):
    config = make_table(server, unique_table)
    fqn = f"cli.ml.{unique_table}"
    with DatasetProducer(config, GrpcConfig(server.uri)) as producer:
        for i in range(3):  # one batch each: rows of one batch share their created_at time
            producer.insert(Score(user="old", score=0, n=i, at=datetime(2025, 1, 1, tzinfo=timezone.utc)))
            producer.flush()
    env = {**os.environ, "BIFROST_GRPC_URI": server.uri}
    proc = subprocess.Popen([str(BIN), "tail", fqn, "-n", "2", "--interval", "0.1", "--count", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = [json.loads(proc.stdout.readline()) for _ in range(2)]
    assert [r["n"] for r in first] == [1, 2]
    with DatasetProducer(config, GrpcConfig(server.uri)) as producer:
        for i in (100, 101):
            producer.insert(Score(user="new", score=0, n=i, at=datetime(2025, 1, 1, tzinfo=timezone.utc)))
        producer.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(json.loads(line)["n"] for line in out.splitlines()) == [100, 101]


def test_sql_empty_result_in_every_format(server, tmp_path):
    query = "SELECT 1::BIGINT AS a, 'x' AS b WHERE false"
    out = run(server, "sql", query)
    assert "0 rows" in out.stderr and "a" in out.stdout
    assert run(server, "sql", "-f", "json", query).stdout == ""
    assert run(server, "sql", "-f", "csv", query).stdout.strip() == '"a","b"'
    path = tmp_path / "empty.parquet"
    run(server, "sql", "-f", "parquet", "-o", str(path), query)
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.column_names == ["a", "b"]


def test_tables_on_a_server_without_tables(tmp_path):
    from conftest import ServerProcess

    srv = ServerProcess(tmp_path / "data")
    try:
        assert json.loads(run(srv, "tables", "--json").stdout) == []
        assert "0 tables" in run(srv, "tables").stdout
        assert json.loads(run(srv, "top", "--json").stdout)["tables"] == []
    finally:
        srv.stop()
