"""Query benchmark: results into pyarrow and scans, each next to its reference in the
same run, on the same machine.

Loads an N-row x 8-column table through bifrost-server (started here with a
temporary data directory, build/bifrost-server or $BIFROST_SERVER_BIN), flushes it to
Parquet, then measures:

- results: ``SELECT <8 columns>`` into a ``pyarrow.Table`` through the client
  (``to_arrow()`` and ``to_reader()``), Arrow Flight ``do_get`` over loopback from a
  pyarrow.flight server (a child process of this run serving the same table from
  memory), and pyarrow reading the same Parquet files;
- scans: a filtered count and a group-by through bifrost, next to the python duckdb
  package over the same Parquet files (the table's live files in the Delta log);
- latency of a few analytic queries (count, group-by, window, join) next to DuckDB.

MB/s are the bytes of the result as a pyarrow Table (``Table.nbytes`` of the Parquet
read) over wall time, the same byte count for every transfer, so ratios are time
ratios. Each figure is the median of --repeat runs after one warm-up round, the
methods compared run in turn (other load on the machine falls on all of them);
CPU seconds per GB of the client and the serving process are printed too. Prints one
``name value unit`` line per figure, then each goal of issue 15 that this benchmark
owns as ``GOAL name MET|NOT MET ratio (target)``.

    .venv/bin/python bench/query_bench.py [--rows 10000000] [--repeat 3]
    BENCH_ROWS=1000000 .venv/bin/python bench/query_bench.py   # quick check, < 1 minute
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["id", "user", "model", "score", "latency", "tokens", "ok", "label"]
EVENTS = "bench.query.events"


class Event(BaseModel):
    id: int
    user: str
    model: str
    score: float
    latency: float
    tokens: int
    ok: bool
    label: str


class User(BaseModel):
    user: str
    segment: str


SCANS = {
    "filtered_count": "SELECT count(*) FROM {events} WHERE score > 0.5 AND model = 'm3'",
    "group_by": "SELECT model, count(*), avg(latency), sum(tokens) FROM {events} GROUP BY model",
}
LATENCY = {
    "count": "SELECT count(*) FROM {events}",
    "window": "SELECT max(r) FROM (SELECT row_number() OVER (PARTITION BY model ORDER BY score DESC) AS r "
              "FROM {events})",
    "join": "SELECT u.segment, avg(e.score) FROM {events} e JOIN {users} u ON e.user = u.user GROUP BY u.segment",
}


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def goal(name: str, ratio: float, target: float, higher_is_better: bool) -> None:
    met = ratio >= target if higher_is_better else ratio <= target
    sign = ">=" if higher_is_better else "<="
    print(f"GOAL {name} {'MET' if met else 'NOT MET'} ratio {ratio:.2f} (target {sign} {target})", flush=True)


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def interleaved(fns: Dict[str, Callable[[], object]], repeat: int) -> Dict[str, float]:
    """Median wall seconds of each function, run in turn (one warm-up round)."""
    runs: Dict[str, List[float]] = {name: [] for name in fns}
    for round_ in range(repeat + 1):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if round_:
                runs[name].append(time.perf_counter() - t)
    return {name: statistics.median(r) for name, r in runs.items()}


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(fn: Callable[[], object], server_pid: Optional[int]) -> Tuple[float, float]:
    """CPU seconds one run costs this process and the serving process."""
    before = (time.process_time(), process_cpu(server_pid) if server_pid else 0.0)
    fn()
    return (time.process_time() - before[0], (process_cpu(server_pid) - before[1]) if server_pid else 0.0)


def sql_list(items: List[str]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def make_table(start: int, n: int) -> pa.Table:
    i = np.arange(start, start + n, dtype=np.int64)
    rng = np.random.default_rng(start)
    users = pa.array([f"u{k}" for k in range(10_000)])
    models = pa.array([f"m{k}" for k in range(20)])
    labels = pa.array([f"label-{k:04d}-{'x' * (k % 17)}" for k in range(1_000)])
    return pa.table({
        "id": pa.array(i),
        "user": users.take(pa.array(i % 10_000)),
        "model": models.take(pa.array(i % 20)),
        "score": pa.array((i % 1000) / 1000.0),
        "latency": pa.array(rng.random(n) * 100.0),
        "tokens": pa.array(rng.integers(0, 4096, n, dtype=np.int64)),
        "ok": pa.array(i % 3 == 0),
        "label": labels.take(pa.array((i * 7) % 1_000)),
    })


def load(uri: str, rows: int) -> None:
    grpc = GrpcConfig(server_uri=uri)
    chunk = 500_000
    with DatasetProducer(TableConfig(Event, "bench", "query", "events"), grpc,
                         WriteConfig(batch_size=chunk, scheduled_delay_secs=1)) as producer:
        for start in range(0, rows, chunk):
            producer.insert_arrow(make_table(start, min(chunk, rows - start)))
        producer.flush()
    with DatasetProducer(TableConfig(User, "bench", "query", "users"), grpc,
                         WriteConfig(batch_size=10_000)) as producer:
        producer.insert_many([User(user=f"u{i}", segment=f"s{i % 5}") for i in range(10_000)])
        producer.flush()
    with DatasetClient(grpc) as client:
        client.maintain_dataset("bench", "query", "events", ["flush"])
        client.maintain_dataset("bench", "query", "users", ["flush"])


def flight_serve(files: List[str], port_queue: "multiprocessing.Queue[int]") -> None:
    """A pyarrow.flight server holding the same 8 columns in memory (child process)."""
    import pyarrow.flight as flight

    table = ds.dataset(files, format="parquet").to_table(columns=COLUMNS)

    class Server(flight.FlightServerBase):
        def do_get(self, context, ticket):  # noqa: ANN001 - pyarrow.flight's signature
            return flight.RecordBatchStream(table)

    server = Server("grpc://127.0.0.1:0")
    port_queue.put(server.port)
    server.serve()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_ROWS", 10_000_000)))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)))
    args = parser.parse_args()
    import duckdb
    import pyarrow.flight as flight

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
        proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data, "--maintenance-interval", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        uri = "localhost:" + re.search(r":(\d+) data_dir=", proc.stdout.readline().decode()).group(1)
        flight_proc = None
        try:
            t = time.perf_counter()
            load(uri, args.rows)
            report("load_rows_per_s", args.rows / (time.perf_counter() - t), "rows/s")
            from deltalake import DeltaTable

            files = DeltaTable(os.path.join(data, "bench/query/events")).file_uris()
            user_files = DeltaTable(os.path.join(data, "bench/query/users")).file_uris()
            reference = ds.dataset(files, format="parquet").to_table(columns=COLUMNS)
            nbytes = reference.nbytes
            report("result_rows", reference.num_rows, "rows")
            report("result_mb", nbytes / 1e6, "MB")
            del reference

            client = DatasetClient(GrpcConfig(server_uri=uri))
            select = f"SELECT {', '.join(COLUMNS)} FROM {EVENTS}"
            got = client.sql(select).to_arrow()
            assert got.num_rows == args.rows, got.num_rows
            report("bifrost_result_batches", got.to_batches().__len__(), "batches")
            del got

            def bifrost_reader() -> None:
                for _ in client.sql(select).to_reader():
                    pass

            ctx = multiprocessing.get_context("spawn")
            port_queue = ctx.Queue()
            flight_proc = ctx.Process(target=flight_serve, args=(files, port_queue), daemon=True)
            flight_proc.start()
            fclient = flight.connect(f"grpc://127.0.0.1:{port_queue.get(timeout=120)}")
            transfers = {
                "bifrost_to_arrow": (lambda: client.sql(select).to_arrow(), proc.pid),
                "bifrost_to_reader": (bifrost_reader, proc.pid),
                "flight_do_get": (lambda: fclient.do_get(flight.Ticket(b"events")).read_all(), flight_proc.pid),
                "pyarrow_parquet_read": (lambda: ds.dataset(files, format="parquet").to_table(columns=COLUMNS), None),
            }
            # Interleaved, so load from other processes on the machine falls on every
            # method alike; CPU seconds per GB (this process, and the serving one) are
            # the figures that such load moves least.
            wall = interleaved({name: fn for name, (fn, _) in transfers.items()}, args.repeat)
            for name, (fn, server_pid) in transfers.items():
                report(f"{name}_mb_per_s", nbytes / wall[name] / 1e6, "MB/s")
                client_cpu, server_cpu = cpu_seconds(fn, server_pid)
                report(f"{name}_client_cpu_s_per_gb", client_cpu / nbytes * 1e9, "s/GB")
                if server_pid is not None:
                    report(f"{name}_server_cpu_s_per_gb", server_cpu / nbytes * 1e9, "s/GB")
            bifrost_s, reader_s, flight_s = (wall["bifrost_to_arrow"], wall["bifrost_to_reader"],
                                             wall["flight_do_get"])
            fclient.close()
            flight_proc.terminate()
            flight_proc.join()
            flight_proc = None

            con = duckdb.connect()
            con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({sql_list(files)})")
            con.execute(f"CREATE VIEW users AS SELECT * FROM read_parquet({sql_list(user_files)})")
            scan_ratios = []
            for name, sql in {**SCANS, **LATENCY}.items():
                ours_sql = sql.format(events=EVENTS, users="bench.query.users")
                theirs_sql = sql.format(events="events", users="users")
                times = interleaved({"bifrost": lambda: client.sql(ours_sql).to_arrow(),
                                     "duckdb": lambda: con.execute(theirs_sql).fetch_arrow_table()},
                                    max(args.repeat, 5))
                report(f"bifrost_{name}_ms", times["bifrost"] * 1000, "ms")
                report(f"duckdb_{name}_ms", times["duckdb"] * 1000, "ms")
                if name in SCANS:
                    scan_ratios.append(times["bifrost"] / times["duckdb"])
            client.close()

            goal("results_vs_flight_do_get", flight_s / bifrost_s, 1.2, True)
            goal("results_to_reader_vs_flight_do_get", flight_s / reader_s, 1.2, True)
            goal("scans_vs_duckdb_same_files", max(scan_ratios), 1.1, False)
        finally:
            if flight_proc is not None:
                flight_proc.terminate()
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
