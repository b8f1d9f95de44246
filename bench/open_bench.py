"""Startup benchmark: how long bifrost-server takes to open a table with many
commits, replaying the JSON log from version 0 versus starting from a checkpoint.
Builds the table through a real server (one real Parquet file), then appends
synthetic commits that each add a hard link of that file, as a long-lived table
with many small flushes would have. Prints one `name value unit` line per figure.

    .venv/bin/python bench/open_bench.py [--commits 10000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

REPO = Path(__file__).resolve().parents[1]


class Reading(BaseModel):
    id: int
    value: float
    at: dt.datetime


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def start(data: str):
    binary = os.environ.get("BIFROST_SERVER_BIN", str(REPO / "build" / "bifrost-server"))
    begin = time.perf_counter()
    proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data, "--maintenance-interval", "0",
                             "--checkpoint-interval", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    elapsed = time.perf_counter() - begin
    port = re.search(r":(\d+) ", line).group(1)
    return proc, f"localhost:{port}", elapsed


def stop(proc) -> None:
    proc.terminate()
    proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=10_000)
    args = parser.parse_args()
    cfg = TableConfig(Reading, "bench", "open", "readings")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        proc, uri, _ = start(data)
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
        for v in range(2, args.commits + 1):
            name = f"part-synthetic-{v}.parquet"
            os.link(source, source.parent / name)
            action = dict(add, path=str(Path(add["path"]).parent / name), modificationTime=int(time.time() * 1000))
            commit = [{"commitInfo": {"timestamp": action["modificationTime"], "operation": "WRITE"}},
                      {"add": action}]
            (log / f"{v:020d}.json").write_text("\n".join(json.dumps(a) for a in commit) + "\n")
        proc, uri, elapsed = start(data)
        report(f"open_{args.commits}_commits_json_replay", elapsed * 1000, "ms")
        client = DatasetClient(GrpcConfig(server_uri=uri))
        n = client.sql("SELECT count(*) AS n FROM bench.open.readings").to_arrow().column("n")[0].as_py()
        assert n == args.commits, n
        client.maintain_dataset("bench", "open", "readings", ["checkpoint"])
        stop(proc)
        proc, uri, elapsed = start(data)
        report(f"open_{args.commits}_commits_from_checkpoint", elapsed * 1000, "ms")
        client = DatasetClient(GrpcConfig(server_uri=uri))
        start_q = time.perf_counter()
        n = client.sql("SELECT count(*) AS n FROM bench.open.readings").to_arrow().column("n")[0].as_py()
        report("first_count_query_over_all_files", (time.perf_counter() - start_q) * 1000, "ms")
        assert n == args.commits, n
        stop(proc)


if __name__ == "__main__":
    main()
