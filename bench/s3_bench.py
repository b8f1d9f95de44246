"""S3 benchmark: the same ingest to a local data dir and to an S3 prefix (a local
moto server, python/tests/s3_support.py), and what the S3 side costs in requests.
Starts moto on a free loopback port behind a counting proxy, and bifrost-server
(build/bifrost-server, or BIFROST_SERVER_BIN) per run. Requests are counted at the
proxy (HTTP request lines, independent of the server) and cross-checked with the
server's own bifrost_s3_requests_total (metrics endpoint; Parquet I/O not in it).

Figures (one `name value unit` line each):
  ingest_rows_per_sec_{local,s3}     N rows via insert_arrow, acknowledged (WAL)
  ingest_rows_per_sec_s3_ack_commit  the same with --ack-mode commit (acked at the
                                     Delta commit)
  ingest_rows_per_sec_s3_ack_{wal,commit}_8_producers_batch_1000  8 producers,
                                     each flushing after every 1,000-row batch
  flush_secs_{local,s3}              one MaintainTable flush of the N rows
  s3_requests_per_flush[_<kind>]     requests during that flush, by kind
  s3_requests_per_flush_of_1000_rows[_<kind>]  the same, mean of 5 small flushes
  s3_requests_per_flush_by_duckdb    of those, sent by DuckDB (Parquet I/O; User-Agent)
  s3_requests_per_flush_by_server_at_proxy / _by_server_counted   the rest, as the
                                     proxy saw them / as the server's metrics count them
  s3_requests_per_commit             requests under _delta_log/ during one flush
                                     (the commit and the log reads around it)
  s3_requests_per_ingest_batch       requests while acknowledging (none are needed:
                                     this is background polling)
  s3_requests_per_sec_idle[_<kind>]  an idle server with one table (polling the
                                     log / announcing itself to other servers)
  open_secs_{local,s3}               server start until it answers the first count
  s3_requests_server_start           requests until the server listens
  s3_requests_per_table_open         requests from then to the first count's answer
                                     (the table's open if lazy, and the count itself:
                                     Parquet footers of every file)

    .venv/bin/python bench/s3_bench.py [--rows 1000000] [--batch-size 100000]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python" / "tests"))
from s3_support import S3Env  # noqa: E402  (the test suite's moto + proxy harness)

SENSORS = ["north", "south", "east", "west"]
IDLE_SECS = 10


class Reading(BaseModel):
    id: int
    sensor: str
    value: float


CFG = TableConfig(Reading, catalog="bench", schema_name="s3", table="readings", partition_columns=["sensor"])


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def start_server(data_dir: str, log_path: Path, env: Optional[Dict[str, str]], *args: str):
    binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
    log = open(log_path, "ab")
    # Flushes only when asked (MaintainTable), so that each is measured alone.
    proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data_dir, "--maintenance-interval", "0",
                             "--flush-interval", "3600", "--flush-rows", str(2**40), "--flush-bytes", str(2**50),
                             *args], stdout=subprocess.PIPE, stderr=log, env=env)
    log.close()
    line = proc.stdout.readline().decode()
    match = re.search(r":(\d+) ", line)
    if not match:
        proc.kill()
        proc.wait()
        raise SystemExit(f"server did not start: {line!r}; log:\n{log_path.read_text(errors='replace')[-3000:]}")
    return proc, f"localhost:{match.group(1)}"


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chunk(start: int, n: int) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": pa.array(ids, pa.int64()), "sensor": pa.array([SENSORS[i % 4] for i in ids]),
                     "value": pa.array([i * 0.5 for i in ids], pa.float64())})


def ingest(uri: str, rows: int, batch_size: int) -> float:
    """Acknowledged rows/s for rows sent through insert_arrow (chunks built first)."""
    chunks = [chunk(s, min(batch_size, rows - s)) for s in range(0, rows, batch_size)]
    with DatasetProducer(CFG, GrpcConfig(server_uri=uri), WriteConfig(batch_size=batch_size)) as p:
        p.register()
        start = time.perf_counter()
        for c in chunks:
            p.insert_arrow(c)
        p.flush(timeout=1800)
        return rows / (time.perf_counter() - start)


def flush(uri: str) -> Tuple[float, dict]:
    client = DatasetClient(GrpcConfig(server_uri=uri, timeout_secs=1800))
    start = time.perf_counter()
    done = client.maintain_dataset(CFG.catalog, CFG.schema_name, CFG.table, ["flush"])
    return time.perf_counter() - start, done


def open_and_count(data_dir: str, log_path: Path, env, rows: int, *args: str, on_listening=None) -> float:
    """Seconds from process start until SELECT count(*) answers with every row;
    on_listening() is called once the server listens."""
    start = time.perf_counter()
    proc, uri = start_server(data_dir, log_path, env, *args)
    if on_listening is not None:
        on_listening()
    try:
        client = DatasetClient(GrpcConfig(server_uri=uri))
        while True:
            try:
                n = client.sql(f"SELECT count(*) AS n FROM {CFG.fqn}").to_arrow().column("n")[0].as_py()
            except Exception:  # noqa: BLE001 - the table may not be open yet
                n = -1
            if n == rows:
                return time.perf_counter() - start
            if n > rows or time.perf_counter() - start > 300:
                raise SystemExit(f"the reopened server shows {n} of {rows} rows after 300 s")
            time.sleep(0.01)
    finally:
        stop(proc)


def kind(method: str, target: str) -> str:
    """What one S3 request was, from its method and target."""
    path, _, query = target.partition("?")
    if method == "GET" and "list-type=2" in query:
        return "list"
    if "uploadId" in query or "uploads" in query:
        return "multipart"
    if "/_delta_log/" in path:
        return {"PUT": "log_put", "GET": "log_get", "HEAD": "log_head", "DELETE": "log_delete"}.get(method, method)
    if path.endswith(".parquet"):
        return {"PUT": "parquet_put", "GET": "parquet_get", "HEAD": "parquet_head"}.get(method, method)
    return method.lower()


def report_requests(prefix: str, requests: List[Tuple[str, str]], per: int = 1) -> None:
    """The requests' count and count by kind, divided by `per` (occurrences measured)."""
    report(prefix, len(requests) / per, "requests")
    for name, n in sorted(Counter(kind(m, t) for m, t in requests).items()):
        report(f"{prefix}_{name}", n / per, "requests")


def small_flushes(uri: str, s3: S3Env, start: int, n: int = 5, rows: int = 1000) -> None:
    """The per-flush cost of the typical small flush: n flushes of `rows` rows."""
    sent: List[Tuple[str, str]] = []
    with DatasetProducer(CFG, GrpcConfig(server_uri=uri), WriteConfig(batch_size=rows)) as p:
        for k in range(n):
            p.insert_arrow(chunk(start + k * rows, rows))
            p.flush(timeout=120)
            s3.proxy.reset_counts()
            _, done = flush(uri)
            sent += s3.proxy.requests()
            if done["rows_flushed"] != rows:
                raise SystemExit(f"a small flush did not commit its rows: {done}")
    report_requests(f"s3_requests_per_flush_of_{rows}_rows", sent, per=n)


def metrics_url(log_path: Path) -> str:
    """The metrics endpoint of the server that logged last to log_path."""
    found = re.findall(r"metrics on (http://\S+/metrics)", log_path.read_text(errors="replace"))
    if not found:
        raise SystemExit(f"no metrics endpoint in {log_path}")
    return found[-1]


def server_s3_requests(url: str) -> int:
    """The server's own count of its S3 requests (bifrost_s3_requests_total, all
    kinds; DuckDB's Parquet I/O is not in it)."""
    import urllib.request

    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(int(n) for n in re.findall(r'^bifrost_s3_requests_total\{kind="\w+"\} (\d+)$', text, re.M))


def producers_rate(uri: str, table: str, producers: int, rows_each: int, batch_size: int) -> float:
    """Acknowledged rows/s of several producers (threads) flushing after every batch."""
    import threading

    cfg = TableConfig(Reading, catalog="bench", schema_name="s3", table=table, partition_columns=["sensor"])
    with DatasetProducer(cfg, GrpcConfig(server_uri=uri)) as p:
        p.register()
    go = threading.Barrier(producers + 1)

    def run(k: int) -> None:
        with DatasetProducer(cfg, GrpcConfig(server_uri=uri), WriteConfig(batch_size=batch_size)) as p:
            go.wait()
            for start in range(0, rows_each, batch_size):
                p.insert_arrow(chunk(k * rows_each + start, batch_size))
                p.flush(timeout=600)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return producers * rows_each / (time.perf_counter() - start)


def bench_local(tmp: Path, rows: int, batch_size: int) -> None:
    local = str(tmp / "data")
    proc, uri = start_server(local, tmp / "local.log", None)
    try:
        report("ingest_rows_per_sec_local", ingest(uri, rows, batch_size), "rows/s")
        report("flush_secs_local", flush(uri)[0], "s")
    finally:
        stop(proc)
    report("open_secs_local", open_and_count(local, tmp / "local.log", None, rows), "s")


def bench_s3(tmp: Path, s3: S3Env, rows: int, batch_size: int) -> None:
    env = s3.server_env()
    data = f"s3://{s3.new_bucket('bench')}/tables"
    args = ["--wal-dir", str(tmp / "wal"), "--metrics-port", "0"]
    proc, uri = start_server(data, tmp / "s3.log", env, *args)
    try:
        with DatasetProducer(CFG, GrpcConfig(server_uri=uri)) as p:
            p.register()
        s3.proxy.reset_counts()
        report("ingest_rows_per_sec_s3", ingest(uri, rows, batch_size), "rows/s")
        batches = -(-rows // batch_size)
        report("s3_requests_per_ingest_batch", len(s3.proxy.requests()) / batches, "requests")

        version = DatasetClient(GrpcConfig(server_uri=uri)).describe_dataset(
            CFG.catalog, CFG.schema_name, CFG.table)["delta_version"]
        metrics = metrics_url(tmp / "s3.log")
        counted = server_s3_requests(metrics)
        s3.proxy.reset_counts()
        secs, done = flush(uri)
        sent = s3.proxy.requests_with_agent()
        counted = server_s3_requests(metrics) - counted
        commits = done["delta_version"] - version
        if done["rows_flushed"] != rows or commits < 1:
            raise SystemExit(f"the flush did not commit the rows: {done}")
        report("flush_secs_s3", secs, "s")
        report_requests("s3_requests_per_flush", [(m, t) for m, t, _ in sent])
        # Who sent them (User-Agent): DuckDB's Parquet I/O vs the server's own client,
        # cross-checked with the server's counter (background polling may add one or
        # two to either side).
        by_duckdb = sum(agent.startswith("duckdb") for _, _, agent in sent)
        report("s3_requests_per_flush_by_duckdb", by_duckdb, "requests")
        report("s3_requests_per_flush_by_server_at_proxy", len(sent) - by_duckdb, "requests")
        report("s3_requests_per_flush_by_server_counted", counted, "requests")
        report("s3_commits_per_flush", commits, "commits")
        report("s3_requests_per_commit", sum("/_delta_log/" in t for _, t, _ in sent) / commits, "requests")
        small_flushes(uri, s3, rows)
        s3.proxy.reset_counts()
        time.sleep(IDLE_SECS)
        report_requests("s3_requests_per_sec_idle", s3.proxy.requests(), per=IDLE_SECS)
    finally:
        stop(proc)
    s3.proxy.reset_counts()
    at_start: List[Tuple[str, str]] = []
    secs = open_and_count(data, tmp / "s3.log", env, rows + 5 * 1000, *args,
                          on_listening=lambda: at_start.extend(s3.proxy.requests()))
    report("open_secs_s3", secs, "s")
    report_requests("s3_requests_server_start", at_start)
    report_requests("s3_requests_per_table_open", s3.proxy.requests()[len(at_start):])


def bench_ack_modes(tmp: Path, s3: S3Env, rows: int, batch_size: int) -> None:
    """--ack-mode commit (acknowledged once in a Delta commit) next to wal: one
    producer with large batches, then 8 producers flushing every 1,000-row batch
    (group commit shares commits among them)."""
    env = s3.server_env()
    for mode in ("wal", "commit"):
        data = f"s3://{s3.new_bucket('bench-' + mode)}/tables"
        proc, uri = start_server(data, tmp / f"s3-{mode}.log", env, "--wal-dir", str(tmp / f"wal-{mode}"),
                                 "--ack-mode", mode)
        try:
            if mode == "commit":
                report("ingest_rows_per_sec_s3_ack_commit", ingest(uri, rows, batch_size), "rows/s")
            report(f"ingest_rows_per_sec_s3_ack_{mode}_8_producers_batch_1000",
                   producers_rate(uri, "many", 8, 10_000, 1000), "rows/s")
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        bench_local(tmp, args.rows, args.batch_size)
        s3 = S3Env(tmp)
        try:
            bench_s3(tmp, s3, args.rows, args.batch_size)
            bench_ack_modes(tmp, s3, args.rows, args.batch_size)
        finally:
            s3.close()


if __name__ == "__main__":
    main()
