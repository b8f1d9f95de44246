"""Authentication benchmark: what logging in costs, and what checking a bearer token
and the grants costs per call, next to the same calls on an open server in the same
run. Starts two servers (build/bifrost-server): one open, one with an auth file.
Prints one `name value unit` line per figure.

    .venv/bin/python bench/auth_bench.py [--calls 2000] [--rows 200000]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

REPO = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("BIFROST_SERVER_BIN", REPO / "build" / "bifrost-server"))


class Row(BaseModel):
    id: int
    name: str


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def start(data_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(BINARY), "--port", "0", "--data-dir", str(data_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    port = re.search(r":(\d+) ", line).group(1)
    return proc, f"localhost:{port}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        password_hash = subprocess.run([str(BINARY), "hash-password"], input="bench-pw", text=True,
                                       capture_output=True, check=True).stdout.strip()
        auth_file = tmp_path / "users.json"
        auth_file.write_text(json.dumps({"users": [{"name": "bench", "password_hash": password_hash,
                                                     "grants": [{"on": "*.*.*", "allow": ["read", "write", "admin"]}]}]}))
        auth_file.chmod(0o600)
        open_proc, open_uri = start(tmp_path / "open")
        auth_proc, auth_uri = start(tmp_path / "auth", "--auth-file", str(auth_file))
        try:
            configs = {"open": GrpcConfig(server_uri=open_uri),
                       "auth": GrpcConfig(server_uri=auth_uri, username="bench", password="bench-pw")}
            logins = []
            for _ in range(5):
                t = time.perf_counter()
                DatasetClient(configs["auth"]).list_datasets()  # a fresh client logs in first
                logins.append(time.perf_counter() - t)
            report("login_plus_first_call_median", statistics.median(logins) * 1000, "ms")
            table = TableConfig(Row, catalog="bench", schema_name="auth", table="rows")
            for mode, config in configs.items():
                client = DatasetClient(config)
                client.list_datasets()
                t = time.perf_counter()
                for _ in range(args.calls):
                    client.list_datasets()
                report(f"{mode}_list_call_mean", (time.perf_counter() - t) / args.calls * 1e6, "us")
                rows = [Row(id=i, name="n") for i in range(args.rows)]
                with DatasetProducer(table, config, WriteConfig(batch_size=1000)) as producer:
                    producer.register()
                    t = time.perf_counter()
                    producer.insert_many(rows)
                    producer.flush(timeout=300)
                    report(f"{mode}_insert_rows_per_s", args.rows / (time.perf_counter() - t), "rows/s")
        finally:
            for proc in (open_proc, auth_proc):
                proc.terminate()
                proc.wait(timeout=60)


if __name__ == "__main__":
    main()
