"""Producer benchmark: cost of one insert() call (median, p99) for each serialization
path (binary row read from the instance in C = the default for flat models;
pydantic-core JSON = the fallback; model_dump_json for comparison), end-to-end
rows/s from one producer to acknowledged storage next to a reference run of
deltalake.write_deltalake appending the same rows in batches of the same size, and
the rows/s insert_arrow accepts for an 8-column Arrow table.
Starts its own bifrost-server (build/bifrost-server) on a free port with a temporary
data directory. Prints one `name value unit` line per figure.

    .venv/bin/python bench/producer_bench.py [--rows 200000] [--batch-size 10000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetProducer, GrpcConfig, TableConfig, WriteConfig

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


def records(n: int) -> list[PredictionRecord]:
    now = dt.datetime.now(dt.timezone.utc)
    return [PredictionRecord(user_id=f"user_{i}", model_name="credit_v2", prediction=i % 100 / 100,
                             confidence=0.9, feature_1=1.23, feature_2=4.56, predicted_at=now)
            for i in range(n)]


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def start_server(data_dir: str):
    binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
    proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data_dir], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    port = re.search(r":(\d+) data_dir=", line).group(1)
    return proc, f"localhost:{port}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    rows = records(args.rows)

    # Serialization alternatives, per record, without the queue.
    sample = rows[:20_000]
    t0 = time.perf_counter_ns()
    for r in sample:
        r.model_dump_json()
    report("serialize_model_dump_json_mean", (time.perf_counter_ns() - t0) / len(sample) / 1000, "us")
    t0 = time.perf_counter_ns()
    for r in sample:
        r.__pydantic_serializer__.to_json(r)
    report("serialize_pydantic_core_to_json_mean", (time.perf_counter_ns() - t0) / len(sample) / 1000, "us")

    with tempfile.TemporaryDirectory() as tmp:
        proc, uri = start_server(os.path.join(tmp, "data"))
        try:
            config = TableConfig(PredictionRecord, catalog="bench", schema_name="producer", table="predictions")

            def insert_costs(producer, insert, label):
                costs = []
                for r in rows[:100_000]:
                    t = time.perf_counter_ns()
                    insert(r)
                    costs.append(time.perf_counter_ns() - t)
                costs.sort()
                report(f"insert_cost_median_{label}", percentile(costs, 0.5) / 1000, "us")
                report(f"insert_cost_p99_{label}", percentile(costs, 0.99) / 1000, "us")
                producer.flush()

            # The JSON path (pydantic JSON + the C JSON insert), measured on its own producer.
            json_producer = DatasetProducer(config, GrpcConfig(server_uri=uri),
                                            WriteConfig(batch_size=args.batch_size, scheduled_delay_secs=1))
            to_json = PredictionRecord.__pydantic_serializer__.to_json
            insert_costs(json_producer, lambda r: json_producer._core.insert(to_json(r)), "pydantic_json_path")
            json_producer.shutdown()

            producer = DatasetProducer(config, GrpcConfig(server_uri=uri),
                                       WriteConfig(batch_size=args.batch_size, scheduled_delay_secs=1))
            costs = []
            start = time.perf_counter()
            for r in rows:
                t = time.perf_counter_ns()
                producer.insert(r)
                costs.append(time.perf_counter_ns() - t)
            inserted = time.perf_counter()
            producer.flush()
            done = time.perf_counter()
            costs.sort()
            report("insert_cost_median", percentile(costs, 0.5) / 1000, "us")
            report("insert_cost_p99", percentile(costs, 0.99) / 1000, "us")
            report("insert_loop_rows_per_s", len(rows) / (inserted - start), "rows/s")
            report("end_to_end_rows_per_s", len(rows) / (done - start), "rows/s")
            report("flush_to_acknowledged", (done - inserted) * 1000, "ms")

            # Bulk path: an 8-column Arrow table, accepted without touching rows in Python.
            n_arrow = 2_000_000
            now = dt.datetime.now(dt.timezone.utc)
            table = pa.table({
                "user_id": pa.array([f"user_{i % 1000}" for i in range(n_arrow)], type=pa.string_view()),
                "model_name": pa.array(["credit_v2"] * n_arrow, type=pa.string_view()),
                "prediction": pa.array([i % 100 / 100 for i in range(n_arrow)], type=pa.float64()),
                "confidence": pa.array([0.9] * n_arrow, type=pa.float64()),
                "feature_1": pa.array([1.23] * n_arrow, type=pa.float64()),
                "feature_2": pa.array([4.56] * n_arrow, type=pa.float64()),
                "label": pa.nulls(n_arrow, pa.string_view()),
                "predicted_at": pa.array([now] * n_arrow, type=pa.timestamp("us", tz="UTC")),
            })

            def timed_insert_arrow(data: pa.Table) -> tuple[int, float, float]:
                """Rows accepted, seconds to accept them, seconds until acknowledged."""
                bulk = DatasetProducer(config, GrpcConfig(server_uri=uri),
                                       WriteConfig(batch_size=args.batch_size, max_queue_rows=4 * n_arrow))
                start = time.perf_counter()
                accepted = bulk.insert_arrow(data)
                accepted_at = time.perf_counter()
                bulk.flush(timeout=600)
                acked_at = time.perf_counter()
                bulk.shutdown()
                return accepted, accepted_at - start, acked_at - start

            accepted, accept_s, ack_s = timed_insert_arrow(table)
            report("insert_arrow_accepted_rows_per_s", accepted / accept_s, "rows/s")
            report("insert_arrow_end_to_end_rows_per_s", accepted / ack_s, "rows/s")
            # The same table with plain utf8 strings (pyarrow's default): they go to the
            # Utf8View columns as they are, without a cast.
            utf8 = table.cast(pa.schema([pa.field(f.name, pa.string() if f.type == pa.string_view() else f.type)
                                         for f in table.schema]))
            accepted, accept_s, _ = timed_insert_arrow(utf8)
            report("insert_arrow_accepted_rows_per_s_utf8_input", accepted / accept_s, "rows/s")
            producer.shutdown()
        finally:
            proc.terminate()
            proc.wait()

        # Reference: delta-rs appending the same rows in batches of the same size.
        from deltalake import write_deltalake

        path = os.path.join(tmp, "reference")
        dicts = [r.model_dump() for r in rows]
        start = time.perf_counter()
        for i in range(0, len(dicts), args.batch_size):
            write_deltalake(path, pa.Table.from_pylist(dicts[i:i + args.batch_size]), mode="append",
                            partition_by=None)
        elapsed = time.perf_counter() - start
        report("reference_write_deltalake_rows_per_s", len(rows) / elapsed, "rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
