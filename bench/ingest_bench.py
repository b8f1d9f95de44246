"""Server ingest benchmark (storage engine): acknowledged rows/s with 1 and 4
producer processes, acknowledgement latency (p50/p99 of one batch: send -> durable in the
WAL and visible), and the Parquet files and Delta commits the server produces for
10M rows with its default flush settings (10M rows streamed through insert_arrow,
partitioned by 4 model names, flushed by the server on its own). Starts its own bifrost-server
(build/bifrost-server) on a free port with a temporary data directory. Prints one
`name value unit` line per figure.

    .venv/bin/python bench/ingest_bench.py [--rows 1000000] [--batch-size 10000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

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


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def start_server(data_dir: str, *args: str, port: int = 0):
    """A bifrost-server on port (0: a free one) and its "localhost:<port>" (also
    used by restart_bench.py)."""
    binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
    proc = subprocess.Popen([binary, "--port", str(port), "--data-dir", data_dir, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    match = re.search(r":(\d+) ", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, f"localhost:{match.group(1)}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _producer_process(uri: str, table: str, k: int, per: int, batch_size: int, ready, go, out) -> None:
    """One producer in its own process (its own GIL, as in a fleet of services)."""
    cfg = TableConfig(PredictionRecord, "bench", "ingest", table, partition_columns=["model_name"])
    now = dt.datetime.now(dt.timezone.utc)
    # Records are built before the clock starts: this measures the pipeline, not pydantic.
    rows = [PredictionRecord(user_id=f"u{k}_{i}", model_name=f"model_{i % 4}", prediction=i % 100 / 100,
                             confidence=0.9, feature_1=1.0, feature_2=2.0, predicted_at=now)
            for i in range(per)]
    producer = DatasetProducer(cfg, GrpcConfig(server_uri=uri),
                               WriteConfig(batch_size=batch_size, scheduled_delay_secs=0.05,
                                           max_queue_rows=4 * batch_size))
    producer.register()
    ready.release()
    go.wait()
    producer.insert_many(rows)
    producer.flush(timeout=600)
    out.put(time.perf_counter())
    producer.shutdown()


def load(uri: str, table: str, rows: int, producers: int, batch_size: int) -> float:
    """Inserts rows split over producer processes; returns acknowledged rows/s
    (from the common start to the last producer's flush)."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    per = rows // producers
    procs = [ctx.Process(target=_producer_process, args=(uri, table, k, per, batch_size, ready, go, out))
             for k in range(producers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    ends = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(60)
    return per * producers / (max(ends) - start)


def ack_latency(uri: str, batch_size: int, n: int = 200) -> list[float]:
    cfg = TableConfig(PredictionRecord, "bench", "ingest", "latency")
    now = dt.datetime.now(dt.timezone.utc)
    rows = [PredictionRecord(user_id=f"u{i}", model_name="m", prediction=0.5, confidence=0.9,
                             feature_1=1.0, feature_2=2.0, predicted_at=now) for i in range(batch_size)]
    samples = []
    with DatasetProducer(cfg, GrpcConfig(server_uri=uri), WriteConfig(batch_size=batch_size,
                                                                       scheduled_delay_secs=3600)) as p:
        for _ in range(n):
            p.insert_many(rows)
            start = time.perf_counter()
            p.flush(timeout=60)  # sends the batch and waits for its acknowledgement
            samples.append(time.perf_counter() - start)
    return sorted(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        proc, uri = start_server(data)
        try:
            report("ingest_rows_per_sec_1_producer", load(uri, "one", args.rows, 1, args.batch_size), "rows/s")
            report("ingest_rows_per_sec_4_producers", load(uri, "four", args.rows, 4, args.batch_size), "rows/s")
            for size in (100, args.batch_size):
                lat = ack_latency(uri, size, 300 if size <= 1000 else 50)
                report(f"ack_latency_p50_batch_{size}", lat[len(lat) // 2] * 1e3, "ms")
                report(f"ack_latency_p99_batch_{size}", lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3, "ms")
            # Files and commits for 10M rows, flushed by the server on its own thresholds
            # (1M rows by default) and compacted by its automatic maintenance.
            import pyarrow as pa

            n = 1_000_000
            now = dt.datetime.now(dt.timezone.utc)
            chunk = pa.table({
                "user_id": pa.array([f"u{i}" for i in range(n)], type=pa.string_view()),
                "model_name": pa.array([f"model_{i % 4}" for i in range(n)], type=pa.string_view()),
                "prediction": pa.array([i % 100 / 100 for i in range(n)]),
                "confidence": pa.array([0.9] * n),
                "feature_1": pa.array([1.0] * n),
                "feature_2": pa.array([2.0] * n),
                "label": pa.nulls(n, pa.string_view()),
                "predicted_at": pa.array([now] * n, type=pa.timestamp("us", tz="UTC")),
            })
            cfg = TableConfig(PredictionRecord, "bench", "ingest", "ten_million", partition_columns=["model_name"])
            client = DatasetClient(GrpcConfig(server_uri=uri))
            start = time.perf_counter()
            with DatasetProducer(cfg, GrpcConfig(server_uri=uri), WriteConfig(batch_size=100_000)) as p:
                for _ in range(10):
                    p.insert_arrow(chunk)
                p.flush(timeout=1200)
            report("insert_arrow_10M_rows_acknowledged_per_sec", 10 * n / (time.perf_counter() - start), "rows/s")
            deadline = time.monotonic() + 300
            while client.describe_dataset("bench", "ingest", "ten_million")["tail_rows"] and time.monotonic() < deadline:
                time.sleep(0.5)
            path = Path(data) / "bench" / "ingest" / "ten_million"
            operations, live, written = [], {}, 0
            for commit in sorted((path / "_delta_log").glob("*.json"))[1:]:
                for action in map(json.loads, commit.read_text().splitlines()):
                    if "commitInfo" in action:
                        operations.append(action["commitInfo"]["operation"])
                    elif "add" in action:
                        live[action["add"]["path"]] = action["add"]["size"]
                        written += action["add"]["dataChange"]
                    elif "remove" in action:
                        live.pop(action["remove"]["path"], None)
            report("commits_per_10M_rows", operations.count("WRITE"), "commits")
            report("files_written_per_10M_rows", written, "files")
            report("optimize_commits_per_10M_rows", operations.count("OPTIMIZE"), "commits")
            report("live_files_per_10M_rows", len(live), "files")
            report("mean_live_file_size", sum(live.values()) / max(1, len(live)) / 2**20, "MiB")
            report("server_peak_rss", rss_mib(proc.pid), "MiB")
        finally:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
