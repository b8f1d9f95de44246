"""Query benchmark: latency of count / group-by / window / join over an N-row table
through bifrost-server, next to DataFusion reading the same Delta table (deltalake +
datafusion packages, same run), and result transfer MB/s into pyarrow. Starts its own
server (build/bifrost-server) with a temporary data directory. Prints one
`name value unit` line per figure.

    .venv/bin/python bench/query_bench.py [--rows 10000000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

REPO = Path(__file__).resolve().parents[1]


class Event(BaseModel):
    id: int
    user: str
    model: str
    score: float


class User(BaseModel):
    user: str
    segment: str


QUERIES = {
    "count": "SELECT count(*) FROM {events}",
    "group_by": "SELECT model, count(*), avg(score) FROM {events} GROUP BY model",
    "window": "SELECT max(r) FROM (SELECT row_number() OVER (PARTITION BY model ORDER BY score DESC) AS r "
              "FROM {events})",
    "join": "SELECT u.segment, avg(e.score) FROM {events} e JOIN {users} u ON e.user = u.user GROUP BY u.segment",
}


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def load(uri: str, rows: int) -> None:
    grpc = GrpcConfig(server_uri=uri)
    events = TableConfig(Event, "bench", "query", "events")
    users = TableConfig(User, "bench", "query", "users")
    chunk = 500_000
    with DatasetProducer(events, grpc, WriteConfig(batch_size=chunk, scheduled_delay_secs=1)) as producer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = pa.array(range(start, start + n), pa.int64())
            table = pa.table({
                "id": ids,
                "user": pa.array([f"u{i % 10_000}" for i in range(start, start + n)]),
                "model": pa.array([f"m{i % 20}" for i in range(start, start + n)]),
                "score": pa.array([(i % 1000) / 1000 for i in range(start, start + n)], pa.float64()),
            })
            producer.insert_arrow(table)
        producer.flush()
    with DatasetProducer(users, grpc, WriteConfig(batch_size=10_000)) as producer:
        producer.insert_many([User(user=f"u{i}", segment=f"s{i % 5}") for i in range(10_000)])
        producer.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
        proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        uri = "localhost:" + re.search(r":(\d+) data_dir=", proc.stdout.readline().decode()).group(1)
        try:
            t = time.perf_counter()
            load(uri, args.rows)
            report("load_rows_per_s", args.rows / (time.perf_counter() - t), "rows/s")
            client = DatasetClient(GrpcConfig(server_uri=uri))
            names = {"events": "bench.query.events", "users": "bench.query.users"}
            for name, sql in QUERIES.items():
                q = sql.format(**names)
                report(f"bifrost_{name}_latency", timed(lambda: client.sql(q).to_arrow(), args.repeat) * 1000, "ms")

            from datafusion import SessionContext
            from deltalake import DeltaTable

            ctx = SessionContext()
            ctx.register_dataset("events", DeltaTable(os.path.join(data, "bench/query/events")).to_pyarrow_dataset())
            ctx.register_dataset("users", DeltaTable(os.path.join(data, "bench/query/users")).to_pyarrow_dataset())
            for name, sql in QUERIES.items():
                q = sql.format(events="events", users="users")
                report(f"datafusion_{name}_latency", timed(lambda: ctx.sql(q).to_arrow_table(), args.repeat) * 1000,
                       "ms")

            t = time.perf_counter()
            result = client.sql("SELECT * FROM bench.query.events")
            table = result.to_arrow()
            elapsed = time.perf_counter() - t
            report("transfer_mb_per_s", len(result.to_bytes()) / elapsed / 1e6, "MB/s")
            report("transfer_rows", table.num_rows, "rows")
        finally:
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
