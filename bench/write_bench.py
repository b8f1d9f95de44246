"""Write-path benchmark: every write figure of the performance goals, each next to
its reference measured in the same run on the same machine, and a verdict line
per goal (`GOAL <name> MET|NOT MET <ratio>`; `make bench` collects them).

Figures:
- ingest to Delta: --rows rows through insert_arrow in 100k-row batches, rows/s
  until every row is in a committed Parquet file (ack + server flush); server CPU
  per row and peak RSS of a fresh server; references: delta-rs write_deltalake
  with 100k-row appends, DuckDB writing the same Arrow data to zstd Parquet + fsync
  (rows/s and CPU per row), raw write + fsync of the IPC bytes. Ours, delta-rs and
  DuckDB run in turn for --rounds rounds (3); each figure is its median;
- insert(): acknowledged rows/s of one producer of the flat model with the
  default batch_size (1000), the same with batch_size 10k, 4 producer processes
  against 1, server CPU per row;
- acknowledgement latency of flush() for 1 row and 10k rows (p50/p99) next to the
  floor: a 4 KiB write + fdatasync in the data directory and a no-op RPC;
- insert() cost per record (p50) for a nested model (struct + list + enum +
  Optional), the flat model and pydantic's model_dump_json.

Starts its own bifrost-server (build/bifrost-server, or $BIFROST_SERVER_BIN) on a
free port with a temporary data directory.

    .venv/bin/python bench/write_bench.py [--rows 10000000] [--insert-rows 1000000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import enum
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

REPO = Path(__file__).resolve().parents[1]


class PredictionRecord(BaseModel):
    user_id: str
    model_name: str
    prediction: float
    confidence: float
    feature_1: float
    feature_2: float
    label: Optional[str] = None
    predicted_at: dt.datetime


class Kind(str, enum.Enum):
    CREDIT = "credit"
    FRAUD = "fraud"


class Features(BaseModel):
    amount: float
    country: str


class NestedRecord(BaseModel):
    user_id: str
    kind: Kind
    features: Features
    scores: List[float]
    label: Optional[str] = None
    predicted_at: dt.datetime


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def goal(name: str, met: bool, ratio: float, rule: str) -> None:
    print(f"GOAL {name} {'MET' if met else 'NOT MET'} {ratio:.2f} ({rule})", flush=True)


def pct(values: List[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Server:
    def __init__(self, data_dir: str, *args: str) -> None:
        binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
        self.proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data_dir, *args],
                                     stdout=subprocess.PIPE, stderr=open(os.environ.get("SERVER_LOG", os.devnull), "w"))
        line = self.proc.stdout.readline().decode()
        match = re.search(r":(\d+) ", line)
        if not match:
            self.proc.kill()
            raise SystemExit(f"server did not start: {line!r}")
        self.uri = f"localhost:{match.group(1)}"

    def cpu_secs(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(120)


def arrow_chunk(n: int) -> pa.Table:
    now = dt.datetime.now(dt.timezone.utc)
    return pa.table({
        "user_id": pa.array([f"user_{i}" for i in range(n)], type=pa.string()),
        "model_name": pa.array([f"model_{i % 4}" for i in range(n)], type=pa.string()),
        "prediction": pa.array([i % 100 / 100 for i in range(n)], type=pa.float64()),
        "confidence": pa.array([0.9] * n, type=pa.float64()),
        "feature_1": pa.array([float(i) for i in range(n)], type=pa.float64()),
        "feature_2": pa.array([2.0] * n, type=pa.float64()),
        "label": pa.array([None if i % 3 else "yes" for i in range(n)], type=pa.string()),
        "predicted_at": pa.array([now] * n, type=pa.timestamp("us", tz="UTC")),
    })


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---- ingest to Delta ---------------------------------------------------------------------------

def _ingest_ours(tmp: str, chunk: pa.Table, n_chunks: int) -> dict:
    """One run through a fresh server: rows/s until in Delta and until acknowledged,
    server CPU seconds, server peak RSS bytes."""
    rows = n_chunks * chunk.num_rows
    server = Server(tmp)
    try:
        cfg = TableConfig(PredictionRecord, "bench", "write", "ingest")
        grpc = GrpcConfig(server_uri=server.uri)
        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=chunk.num_rows,
                                                    max_queue_rows=4 * chunk.num_rows)) as p:
            p.register()
            cpu0, start = server.cpu_secs(), time.perf_counter()
            for _ in range(n_chunks):
                p.insert_arrow(chunk)
            p.flush(timeout=3600)
            acked = time.perf_counter()
            DatasetClient(grpc).maintain_dataset("bench", "write", "ingest", ["flush"])
            done = time.perf_counter()
            cpu = server.cpu_secs() - cpu0
        return {"to_delta": rows / (done - start), "acked": rows / (acked - start), "cpu": cpu,
                "rss": server.peak_rss_bytes()}
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _ingest_delta_rs(path: str, chunk: pa.Table, n_chunks: int) -> float:
    from deltalake import write_deltalake
    start = time.perf_counter()
    for _ in range(n_chunks):
        write_deltalake(path, chunk, mode="append")
    elapsed = time.perf_counter() - start
    shutil.rmtree(path, ignore_errors=True)
    return n_chunks * chunk.num_rows / elapsed


def _ingest_duckdb(out: str, table: pa.Table) -> tuple:
    """DuckDB writing the Arrow data to one zstd Parquet file + fsync: rows/s, CPU s."""
    import duckdb
    con = duckdb.connect()
    con.register("data", table)
    cpu0, start = cpu_self(), time.perf_counter()
    con.execute(f"COPY (SELECT * FROM data) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    elapsed, cpu = time.perf_counter() - start, cpu_self() - cpu0
    con.close()
    os.unlink(out)
    return table.num_rows / elapsed, cpu


def ingest_to_delta(tmp: str, rows: int, rounds: int) -> None:
    """Ours, delta-rs and DuckDB in turn, `rounds` times; each figure is the median
    of its rounds, so load from elsewhere on the machine falls on all of them."""
    chunk_rows = 100_000
    chunk = arrow_chunk(chunk_rows)
    n_chunks = max(1, rows // chunk_rows)
    rows = n_chunks * chunk_rows
    arrow_bytes = chunk.nbytes * n_chunks
    report("ingest_arrow_data", arrow_bytes / 2**20, "MiB")
    table = pa.concat_tables([chunk] * n_chunks)
    runs: dict = {"ours": [], "delta_rs": [], "duckdb": []}
    for k in range(rounds):
        runs["ours"].append(_ingest_ours(os.path.join(tmp, f"ingest{k}"), chunk, n_chunks))
        runs["delta_rs"].append(_ingest_delta_rs(os.path.join(tmp, f"delta_rs{k}"), chunk, n_chunks))
        runs["duckdb"].append(_ingest_duckdb(os.path.join(tmp, f"duckdb{k}.parquet"), table))
    ours = statistics.median(r["to_delta"] for r in runs["ours"])
    report("ingest_rounds", rounds, "rounds")
    report("ingest_to_delta_rows_per_s", ours, "rows/s")
    report("ingest_acknowledged_rows_per_s", statistics.median(r["acked"] for r in runs["ours"]), "rows/s")
    ours_cpu = statistics.median(r["cpu"] for r in runs["ours"]) / rows * 1e6
    report("server_cpu_per_row_arrow", ours_cpu, "us")
    rss = max(r["rss"] for r in runs["ours"])
    report("server_peak_rss", rss / 2**20, "MiB")
    delta_rs = statistics.median(runs["delta_rs"])
    report("reference_delta_rs_100k_appends_rows_per_s", delta_rs, "rows/s")
    duck = statistics.median(r[0] for r in runs["duckdb"])
    report("reference_duckdb_zstd_parquet_fsync_rows_per_s", duck, "rows/s")
    report("reference_duckdb_cpu_per_row", statistics.median(r[1] for r in runs["duckdb"]) / rows * 1e6, "us")
    for k in range(rounds):
        report(f"ingest_round_{k}_ours_vs_delta_rs", runs["ours"][k]["to_delta"] / runs["delta_rs"][k], "x")

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    ipc = sink.getvalue()
    raw = os.path.join(tmp, "raw.ipc")
    start = time.perf_counter()
    with open(raw, "wb") as f:
        f.write(ipc)
        f.flush()
        os.fsync(f.fileno())
    report("reference_raw_ipc_write_fsync_rows_per_s", rows / (time.perf_counter() - start), "rows/s")
    os.unlink(raw)
    del table, ipc

    goal("ingest_vs_delta_rs", ours >= 2 * delta_rs, ours / delta_rs, ">= 2x delta-rs 100k appends")
    goal("ingest_vs_duckdb_parquet", ours >= 0.5 * duck, ours / duck, ">= 0.5x DuckDB zstd Parquet + fsync")
    goal("server_cpu_per_row_arrow", ours_cpu <= 1.2, 1.2 / ours_cpu if ours_cpu else 0, "<= 1.2 us/row")
    goal("server_peak_rss", rss <= 1.5 * arrow_bytes, rss / arrow_bytes, "<= 1.5x the Arrow data")


# ---- insert() producers -----------------------------------------------------------------------

def _producer_process(uri: str, table: str, k: int, per: int, batch_size: int, ready, go, out) -> None:
    cfg = TableConfig(PredictionRecord, "bench", "write", table)
    now = dt.datetime.now(dt.timezone.utc)
    records = [PredictionRecord(user_id=f"u{k}_{i}", model_name=f"model_{i % 4}", prediction=i % 100 / 100,
                                confidence=0.9, feature_1=1.0, feature_2=2.0, predicted_at=now)
               for i in range(per)]
    producer = DatasetProducer(cfg, GrpcConfig(server_uri=uri),
                               WriteConfig(batch_size=batch_size, max_queue_rows=max(per, 4 * batch_size)))
    producer.register()
    ready.release()
    go.wait()
    start = time.perf_counter()
    for r in records:
        producer.insert(r)
    producer.flush(timeout=3600)
    out.put((start, time.perf_counter()))
    producer.shutdown()


def producers(uri: str, table: str, rows: int, n: int, batch_size: int) -> float:
    """Acknowledged rows/s of n producer processes (own GIL each), records built beforehand."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    per = rows // n
    procs = [ctx.Process(target=_producer_process, args=(uri, table, k, per, batch_size, ready, go, out))
             for k in range(n)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    go.set()
    spans = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join(60)
    return per * n / (max(e for _, e in spans) - min(s for s, _ in spans))


def insert_path(tmp: str, rows: int) -> None:
    server = Server(os.path.join(tmp, "insert"))
    try:
        cpu0 = server.cpu_secs()
        one = producers(server.uri, "one", rows, 1, 1000)
        cpu = server.cpu_secs() - cpu0
        report("insert_1_producer_batch_1000_rows_per_s", one, "rows/s")
        report("server_cpu_per_row_insert", cpu / rows * 1e6, "us")
        big = producers(server.uri, "big", rows, 1, 10_000)
        report("reference_insert_1_producer_batch_10k_rows_per_s", big, "rows/s")
        four = producers(server.uri, "four", rows, 4, 1000)
        report("insert_4_producers_batch_1000_rows_per_s", four, "rows/s")
    finally:
        server.stop()
    goal("insert_one_producer", one >= 1_000_000, one / 1_000_000, ">= 1M rows/s, batch_size 1000")
    goal("insert_four_vs_one", four >= 3 * one, four / one, ">= 3x one producer")
    cpu_us = cpu / rows * 1e6
    goal("server_cpu_per_row_insert", cpu_us <= 1.2, 1.2 / cpu_us if cpu_us else 0, "<= 1.2 us/row")


# ---- acknowledgement latency --------------------------------------------------------------------

def latency(tmp: str) -> None:
    data_dir = os.path.join(tmp, "latency")
    server = Server(data_dir)
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        now = dt.datetime.now(dt.timezone.utc)
        figures = {}
        for size, samples in ((1, 500), (10_000, 100)):
            rows = [PredictionRecord(user_id=f"u{i}", model_name="m", prediction=0.5, confidence=0.9,
                                     feature_1=1.0, feature_2=2.0, predicted_at=now) for i in range(size)]
            cfg = TableConfig(PredictionRecord, "bench", "write", f"latency_{size}")
            lat = []
            with DatasetProducer(cfg, grpc, WriteConfig(batch_size=size, scheduled_delay_secs=3600)) as p:
                p.register()
                for _ in range(samples):
                    for r in rows:
                        p.insert(r)
                    start = time.perf_counter()
                    p.flush(timeout=60)  # sends the batch, waits for its acknowledgement
                    lat.append(time.perf_counter() - start)
            figures[size] = (pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3)
            report(f"ack_latency_p50_{size}_rows", figures[size][0], "ms")
            report(f"ack_latency_p99_{size}_rows", figures[size][1], "ms")
        client = DatasetClient(grpc)
        rpc = []
        for _ in range(500):
            start = time.perf_counter()
            client.list_datasets()
            rpc.append(time.perf_counter() - start)
        rpc_ms = pct(rpc, 0.5) * 1e3
        report("reference_noop_rpc_p50", rpc_ms, "ms")
    finally:
        server.stop()
    probe = os.path.join(data_dir, "fsync-probe")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o644)
    sync = []
    block = b"x" * 4096
    for _ in range(300):
        start = time.perf_counter()
        os.write(fd, block)
        os.fdatasync(fd)
        sync.append(time.perf_counter() - start)
    os.close(fd)
    sync_ms = pct(sync, 0.5) * 1e3
    report("reference_4k_write_fdatasync_p50", sync_ms, "ms")
    floor = sync_ms + rpc_ms
    p50 = figures[1][0]
    # ratio: p50 over the tighter of the two bounds (<= 1 when both hold)
    goal("ack_latency_p50_1_row", p50 <= 1.0 and p50 <= 3 * floor, p50 / min(1.0, 3 * floor),
         f"<= 1 ms and <= 3x the floor ({floor:.2f} ms): p50 {p50:.2f} ms")
    p99 = figures[10_000][1]
    goal("ack_latency_p99_10k_rows", p99 <= 10.0, p99 / 10.0, "<= 10 ms")


# ---- insert() cost per record ------------------------------------------------------------------

def insert_costs(tmp: str) -> None:
    server = Server(os.path.join(tmp, "costs"))
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        now = dt.datetime.now(dt.timezone.utc)
        n = 100_000
        flat = [PredictionRecord(user_id=f"u{i}", model_name="m", prediction=0.5, confidence=0.9,
                                 feature_1=1.0, feature_2=2.0, predicted_at=now) for i in range(n)]
        nested = [NestedRecord(user_id=f"u{i}", kind=Kind.CREDIT if i % 2 else Kind.FRAUD,
                               features=Features(amount=i * 1.5, country="DE"), scores=[0.1, 0.2, 0.3],
                               label=None if i % 2 else "x", predicted_at=now) for i in range(n)]
        results = {}
        for label, model, records in (("flat", PredictionRecord, flat), ("nested", NestedRecord, nested)):
            cfg = TableConfig(model, "bench", "write", f"costs_{label}")
            with DatasetProducer(cfg, grpc, WriteConfig(batch_size=10_000, max_queue_rows=2 * n)) as p:
                p.register()
                costs = []
                for r in records:
                    t = time.perf_counter_ns()
                    p.insert(r)
                    costs.append(time.perf_counter_ns() - t)
                p.flush(timeout=600)
            results[label] = pct(costs, 0.5) / 1000
            report(f"insert_cost_p50_{label}", results[label], "us")
        t = time.perf_counter_ns()
        for r in nested[:20_000]:
            r.model_dump_json()
        report("reference_model_dump_json_nested", (time.perf_counter_ns() - t) / 20_000 / 1000, "us")
    finally:
        server.stop()
    goal("insert_cost_nested", results["nested"] <= 0.4, results["nested"] / 0.4,
         f"p50 <= 0.4 us (flat model: {results['flat']:.2f} us)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows for the ingest-to-Delta figure")
    parser.add_argument("--insert-rows", type=int, default=1_000_000, help="rows for the insert() figures")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)),
                        help="interleaved rounds of the ingest figure and its references (medians)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        insert_costs(tmp)
        latency(tmp)
        insert_path(tmp, args.insert_rows)
        ingest_to_delta(tmp, args.rows, args.rounds)


if __name__ == "__main__":
    main()
