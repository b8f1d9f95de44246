"""Server restart benchmark: how soon clients find a restarted server again.

A bifrost-server (build/bifrost-server) is stopped with SIGTERM and started again on
the same port and data directory. Measured from the moment the new server reports
its port, median of the rounds:
  restart_fresh_client_first_call     a client created after the restart (the
                                      reference: nothing to reconnect)
  restart_known_client_first_call     a client that had called the old server, calling
                                      every 10 ms until a call succeeds
  restart_producer_next_ack           a producer that was sending through the restart:
                                      until its acknowledged count moves again
Prints one `name value unit` line per figure.

    .venv/bin/python bench/restart_bench.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Tuple

from pydantic import BaseModel

from bifrost import BifrostError, DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig
from ingest_bench import start_server


class Reading(BaseModel):
    sensor: str
    value: float


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def until_call_succeeds(client: DatasetClient, since: float) -> float:
    while True:
        try:
            client.list_datasets()
            return time.monotonic() - since
        except BifrostError:
            time.sleep(0.01)


def one_round(data_dir: str) -> Tuple[float, float, float]:
    proc, uri = start_server(data_dir)
    port = int(uri.rsplit(":", 1)[1])
    known = DatasetClient(GrpcConfig(server_uri=uri))
    known.list_datasets()
    cfg = TableConfig(Reading, "bench", "restart", "readings")
    producer = DatasetProducer(cfg, GrpcConfig(server_uri=uri),
                               WriteConfig(batch_size=100, scheduled_delay_secs=0.01,
                                           block_timeout_secs=None))
    producer.register()
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            producer.insert_many([Reading(sensor="s", value=1.0)] * 50)
            time.sleep(0.005)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while producer.stats()["acknowledged"] < 1000:
            time.sleep(0.01)
        stop_server(proc)
        acked = producer.stats()["acknowledged"]
        proc, _ = start_server(data_dir, port=port)
        back = time.monotonic()
        fresh = until_call_succeeds(DatasetClient(GrpcConfig(server_uri=uri)), back)
        known_s = until_call_succeeds(known, back)
        while producer.stats()["acknowledged"] <= acked:
            time.sleep(0.005)
        producer_s = time.monotonic() - back
    finally:
        stop.set()
        sender.join()
        producer.shutdown()
        stop_server(proc)
    return fresh, known_s, producer_s


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            runs.append(one_round(os.path.join(tmp, f"data{k}")))
    report("restart_rounds", args.rounds, "rounds")
    for i, name in enumerate(["restart_fresh_client_first_call", "restart_known_client_first_call",
                              "restart_producer_next_ack"]):
        report(name, statistics.median(r[i] for r in runs) * 1000, "ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
