"""Startup benchmark: how long bifrost-server takes to open a table with many
commits, replaying the JSON log from version 0 versus starting from a checkpoint,
and how long the first query over all its files takes after that, next to delta-rs
opening the same table from the same checkpoint.

Builds the table through a real server (one real Parquet file), then appends
synthetic commits that each add a hard link of that file, as a long-lived table
with many small flushes would have (no compaction: the goal is measured without it).
Prints one `name value unit` line per figure, then one `GOAL <name> MET|NOT MET
<ratio> (<rule>)` line per goal (ratio = measured / goal; `make bench` collects them).

Figures:
  server_start_*        process start until the server listens (engine, tables, gRPC)
  table_open_*          the table's own open as the server logs it (snapshot from the
                        log, view over the files, WAL replay): what delta-rs's
                        DeltaTable(path) does, so the figure compared with it
  first_count_*         SELECT count(*) right after the start: answered from the Delta
                        log's numRecords and the unflushed rows, no file opened
  second_count_*        the same again
  filtered_count_*      SELECT count(*) ... WHERE value >= 0 after that, which DuckDB
                        answers by opening every file: the cost of any other query
                        over N files

    .venv/bin/python bench/open_bench.py [--commits 5000] [--runs 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow  # noqa: F401  imported up front: a client's first import is not the server's time
import pyarrow.ipc  # noqa: F401
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

REPO = Path(__file__).resolve().parents[1]
GOAL_OPEN_MS = 100.0
GOAL_FIRST_QUERY_MS = 200.0
COUNT = "SELECT count(*) AS n FROM bench.open.readings"
FILTERED_COUNT = "SELECT count(*) AS n FROM bench.open.readings WHERE value >= 0"


class Reading(BaseModel):
    id: int
    value: float
    at: dt.datetime


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def start(data: str, log_path: str):
    binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
    log = open(log_path, "w")
    begin = time.perf_counter()
    proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data, "--maintenance-interval", "0",
                             "--checkpoint-interval", "0", "--log-level", "debug"], stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline().decode()
    elapsed = time.perf_counter() - begin
    log.close()
    port = re.search(r":(\d+) ", line).group(1)
    return proc, f"localhost:{port}", elapsed


def stop(proc) -> None:
    proc.terminate()
    proc.wait(60)


def table_open_ms(log_path: str):
    """The open time the server logs for the table ("loaded at version ... in X ms");
    None from a server that does not log it."""
    match = re.search(r"table bench\.open\.readings loaded at version \d+ .* in ([0-9.]+) ms",
                      Path(log_path).read_text())
    return float(match.group(1)) if match else None


def open_stages(log_path: str):
    """(snapshot ms, view ms) from the server's debug line, or None."""
    match = re.search(r"open: snapshot ([0-9.]+) ms, view ([0-9.]+) ms", Path(log_path).read_text())
    return (float(match.group(1)), float(match.group(2))) if match else None


def count(uri: str, expect: int, sql: str = COUNT) -> float:
    client = DatasetClient(GrpcConfig(server_uri=uri))
    begin = time.perf_counter()
    n = client.sql(sql).to_arrow().column("n")[0].as_py()
    elapsed = time.perf_counter() - begin
    assert n == expect, n
    return elapsed * 1000


def build(data: str, commits: int) -> Path:
    cfg = TableConfig(Reading, "bench", "open", "readings")
    proc, uri, _ = start(data, os.path.join(os.path.dirname(data), "build.log"))
    with DatasetProducer(cfg, GrpcConfig(server_uri=uri)) as p:
        p.insert(Reading(id=0, value=1.0, at=dt.datetime.now(dt.timezone.utc)))
        p.flush()
    DatasetClient(GrpcConfig(server_uri=uri)).maintain_dataset("bench", "open", "readings", ["flush"])
    stop(proc)
    table = Path(data) / "bench" / "open" / "readings"
    log = table / "_delta_log"
    first = [json.loads(x) for x in (log / f"{1:020d}.json").read_text().splitlines()]
    add = next(a["add"] for a in first if "add" in a)
    source = table / add["path"]
    for v in range(2, commits + 1):
        name = f"part-synthetic-{v}.parquet"
        os.link(source, source.parent / name)
        action = dict(add, path=str(Path(add["path"]).parent / name), modificationTime=int(time.time() * 1000))
        commit = [{"commitInfo": {"timestamp": action["modificationTime"], "operation": "WRITE"}},
                  {"add": action}]
        (log / f"{v:020d}.json").write_text("\n".join(json.dumps(a) for a in commit) + "\n")
    return table


def measure(data: str, tmp: str, label: str, commits: int, runs: int, empty_ms: float) -> dict:
    """Median over runs of a fresh server start: start, table open, first and second count.
    A server that does not log its table open time gets start minus empty start."""
    figures = {"start": [], "open": [], "first": [], "second": [], "filtered": [], "snapshot": [],
               "view": []}
    for run in range(runs):
        log_path = os.path.join(tmp, f"{label}-{run}.log")
        proc, uri, elapsed = start(data, log_path)
        try:
            figures["start"].append(elapsed * 1000)
            figures["first"].append(count(uri, commits))
            figures["second"].append(count(uri, commits))
            figures["filtered"].append(count(uri, commits, FILTERED_COUNT))
        finally:
            stop(proc)
        logged = table_open_ms(log_path)
        figures["open"].append(logged if logged is not None else elapsed * 1000 - empty_ms)
        stages = open_stages(log_path)
        if stages:
            figures["snapshot"].append(stages[0])
            figures["view"].append(stages[1])
    out = {k: statistics.median(v) for k, v in figures.items() if v}
    report(f"server_start_{commits}_commits_{label}", out["start"], "ms")
    report(f"table_open_{commits}_commits_{label}", out["open"], "ms")
    if "snapshot" in out:
        report(f"table_open_{commits}_commits_{label}_snapshot", out["snapshot"], "ms")
        report(f"table_open_{commits}_commits_{label}_view", out["view"], "ms")
    report(f"first_count_{commits}_commits_{label}", out["first"], "ms")
    report(f"second_count_{commits}_commits_{label}", out["second"], "ms")
    report(f"filtered_count_{commits}_commits_{label}", out["filtered"], "ms")
    return out


def empty_start(tmp: str, runs: int) -> float:
    times = []
    for run in range(runs):
        data = os.path.join(tmp, f"empty-{run}")
        proc, _, elapsed = start(data, os.path.join(tmp, f"empty-{run}.log"))
        stop(proc)
        times.append(elapsed * 1000)
    return statistics.median(times)


def delta_rs(table: Path, commits: int, runs: int) -> dict:
    import deltalake
    opens, counts = [], []
    for _ in range(runs):
        begin = time.perf_counter()
        dt_ = deltalake.DeltaTable(str(table))
        opens.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        n = dt_.to_pyarrow_dataset().count_rows()
        counts.append((time.perf_counter() - begin) * 1000)
        assert n == commits, n
    return {"open": statistics.median(opens), "count": statistics.median(counts)}


def duckdb_direct(table: Path, commits: int, runs: int) -> float:
    """DuckDB itself over the same files, no server: the floor of a query over N files."""
    import duckdb
    files = sorted(str(p) for p in table.glob("scouter_partition_date=*/*.parquet"))
    con = duckdb.connect()
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet({listed})")
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        n = con.execute("SELECT count(*) FROM v").fetchone()[0]
        times.append((time.perf_counter() - begin) * 1000)
        assert n == commits, n
    return statistics.median(times)


def goal(name: str, measured: float, target: float, detail: str = "") -> None:
    """One `GOAL <name> MET|NOT MET <ratio> (<rule>)` line (ratio = measured / goal)."""
    verdict = "MET" if measured <= target else "NOT MET"
    print(f"GOAL {name} {verdict} {measured / target:.2f} ({measured:.1f} ms <= {target:.0f} ms{detail})",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3, help="server starts per case (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        table = build(data, args.commits)
        empty_ms = empty_start(tmp, args.runs)
        report("server_start_empty_data_dir", empty_ms, "ms")
        replay = measure(data, tmp, "json_replay", args.commits, args.runs, empty_ms)
        proc, uri, _ = start(data, os.path.join(tmp, "checkpoint.log"))
        DatasetClient(GrpcConfig(server_uri=uri)).maintain_dataset("bench", "open", "readings", ["checkpoint"])
        stop(proc)
        ckpt = measure(data, tmp, "from_checkpoint", args.commits, args.runs, empty_ms)
        ref = delta_rs(table, args.commits, args.runs)
        report(f"delta_rs_open_{args.commits}_commits_from_checkpoint", ref["open"], "ms")
        report(f"delta_rs_pyarrow_count_{args.commits}_commits", ref["count"], "ms")
        direct = duckdb_direct(table, args.commits, args.runs)
        report(f"duckdb_direct_count_{args.commits}_files", direct, "ms")
        report("checkpoint_gain_table_open", replay["open"] / ckpt["open"], "x")
        goal(f"open_from_checkpoint_{args.commits}_commits", ckpt["open"], GOAL_OPEN_MS,
             f"; table open; delta-rs {ref['open']:.1f} ms, {ckpt['open'] / ref['open']:.2f}x of it")
        goal(f"first_query_after_open_{args.commits}_files", ckpt["first"], GOAL_FIRST_QUERY_MS,
             f"; count(*) from the log; a filtered count opening every file {ckpt['filtered']:.0f} ms;"
             f" DuckDB alone over the same files {direct:.0f} ms")


if __name__ == "__main__":
    main()
