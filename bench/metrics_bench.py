"""Metrics overhead on the insert path: the same ingest (small batches, so the
per-call cost shows) against a server without and with --metrics-port being scraped
every 100 ms, alternated over several rounds in one run; also the cost of one scrape.
Prints one `name value unit` line per figure.

    .venv/bin/python bench/metrics_bench.py [--rows 300000] [--batch 500] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from pydantic import BaseModel

from bifrost import DatasetProducer, GrpcConfig, TableConfig, WriteConfig

REPO = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("BIFROST_SERVER_BIN", REPO / "build" / "bifrost-server"))


class Row(BaseModel):
    id: int
    name: str


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def start(data_dir: Path, *args: str):
    log = data_dir.parent / f"{data_dir.name}.log"
    proc = subprocess.Popen([str(BINARY), "--port", "0", "--data-dir", str(data_dir), *args],
                            stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    port = int(re.search(r":(\d+) ", proc.stdout.readline()).group(1))
    match = re.search(r"metrics on (\S+)", log.read_text())
    return proc, f"localhost:{port}", match.group(1) if match else None


def ingest(uri: str, table: str, rows: int, batch: int) -> float:
    records = [Row(id=i, name=f"n{i}") for i in range(rows)]
    cfg = TableConfig(Row, "bench", "metrics", table)
    with DatasetProducer(cfg, GrpcConfig(uri), WriteConfig(batch_size=batch, scheduled_delay_secs=0.01)) as p:
        started = time.perf_counter()
        p.insert_many(records)
        p.flush()
        return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {"off": [], "on": []}
    scrape_times = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in ("off", "on"):
                extra = ["--metrics-port", "0"] if mode == "on" else []
                proc, uri, url = start(Path(tmp) / f"{mode}{r}", *extra)
                stop = threading.Event()

                def scraper() -> None:
                    while not stop.is_set():
                        t0 = time.perf_counter()
                        urllib.request.urlopen(url, timeout=10).read()
                        scrape_times.append(time.perf_counter() - t0)
                        stop.wait(0.1)

                thread = threading.Thread(target=scraper) if url else None
                if thread:
                    thread.start()
                try:
                    results[mode].append(ingest(uri, f"t{r}", args.rows, args.batch))
                finally:
                    stop.set()
                    if thread:
                        thread.join()
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=60)
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    report("ingest_rows_per_s_metrics_off", off, "rows/s")
    report("ingest_rows_per_s_metrics_on_scraped", on, "rows/s")
    report("metrics_overhead", (off - on) / off * 100, "%")
    if scrape_times:
        report("scrape_median", statistics.median(scrape_times) * 1000, "ms")


if __name__ == "__main__":
    main()
