"""A flushed tail's memory is given back as soon as no query can still read it (it
used to be kept for a fixed 2 s), and never before: queries that run while the
server flushes many times a second all succeed and never see rows go missing."""
from __future__ import annotations

import threading
import time

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig
from conftest import ServerProcess


class Reading(BaseModel):
    sensor: str
    value: float


def test_queries_during_rapid_flushes_never_fail_or_lose_rows(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--flush-rows", "2000", "--flush-interval", "0.2"])
    try:
        grpc = GrpcConfig(server_uri=srv.uri)
        cfg = TableConfig(Reading, catalog="t", schema_name="retire", table="rapid")
        client = DatasetClient(grpc)
        stop = threading.Event()
        failures = []
        counts = [[] for _ in range(3)]

        def reader(seen):
            while not stop.is_set():
                try:
                    n = client.sql("SELECT count(*) AS n FROM t.retire.rapid").to_arrow()["n"][0].as_py()
                    seen.append(n)
                except Exception as exc:  # every failure is reported, none is expected
                    failures.append(repr(exc))

        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=500)) as producer:
            producer.register()
            threads = [threading.Thread(target=reader, args=(seen,)) for seen in counts]
            for t in threads:
                t.start()
            sent = 0
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                producer.insert_arrow(pa.table({"sensor": ["s"] * 500, "value": [1.0] * 500}))
                sent += 500
                producer.flush(timeout=30)
                acked = sent
                # every acknowledged row is visible to a query that starts now
                n = client.sql("SELECT count(*) AS n FROM t.retire.rapid").to_arrow()["n"][0].as_py()
                assert n == acked
            stop.set()
            for t in threads:
                t.join(30)
        assert failures == []
        for seen in counts:  # what one reader sees never goes back
            assert seen == sorted(seen)
            assert len(seen) > 5
        log = srv.log()
        assert log.count("flushed rows=") >= 10, "the server did not flush often enough to test anything"
    finally:
        srv.stop()


def test_flushed_rows_leave_memory_without_waiting(tmp_path):
    srv = ServerProcess(tmp_path / "data", args=["--flush-interval", "3600", "--flush-rows", "100000000"])
    try:
        grpc = GrpcConfig(server_uri=srv.uri)
        cfg = TableConfig(Reading, catalog="t", schema_name="retire", table="memory")
        client = DatasetClient(grpc)

        def rss_mib() -> float:
            for line in open(f"/proc/{srv.proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
            return 0.0

        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=100_000)) as producer:
            producer.register()
            base = rss_mib()
            chunk = pa.table({"sensor": ["x" * 40] * 100_000, "value": [2.0] * 100_000})
            for _ in range(20):  # 2M rows, about 100 MB as received
                producer.insert_arrow(chunk)
            producer.flush(timeout=120)
        held = rss_mib() - base
        assert held > 80, f"the tail held only {held:.0f} MiB"
        client.maintain_dataset("t", "retire", "memory", ["flush"])
        # the flushed tail is freed at once (it was kept 2 s): within a second, well
        # over half of what it held is gone
        deadline = time.monotonic() + 1.0
        while rss_mib() - base >= held / 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = rss_mib() - base
        assert after < held / 2, f"held {held:.0f} MiB, still {after:.0f} MiB a second after the flush"
        assert client.sql("SELECT count(*) AS n FROM t.retire.memory").to_arrow()["n"][0].as_py() == 2_000_000
    finally:
        srv.stop()
