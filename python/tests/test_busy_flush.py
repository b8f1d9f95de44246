"""A table flushed for its size (a busy one) gets its next generation made in the
flush, off the acknowledgement path of the next insert; rows go on being durable,
counted and read at once; inserts that outrun the writer wait for it."""
from __future__ import annotations

import os
import shutil
import time

import pytest

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, WriteConfig

from conftest import ServerProcess
from test_count_from_log import Row, config, count, counts_agree, maintain, table_dir


def test_a_busy_table_keeps_every_row_across_flushes_and_a_crash(tmp_path):
    """A table flushed for its size gets its next generation (WAL segment, tail) in
    the flush, before the next insert needs it: rows acknowledged into it are
    counted and read at once, and a kill -9 right after such flushes (an empty
    segment among them) replays every acknowledged row exactly once."""
    data = tmp_path / "data"
    server = ServerProcess(data, args=["--flush-rows", "200", "--flush-interval", "30"])
    cfg = config("busy")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=100)) as producer:
            for k in range(30):
                producer.insert_many([Row(id=k * 100 + i, value=1.0) for i in range(100)])
                producer.flush(timeout=60)
                assert count(client, cfg) == (k + 1) * 100  # read-your-writes
        wal = table_dir(data, cfg) / "_bifrost" / "wal"
        assert list(wal.glob("*.wal"))  # the generation made ahead (or one not yet flushed)
    finally:
        server.kill()
    server = ServerProcess(data)
    try:
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        ids = client.sql(f"SELECT id FROM {cfg.fqn}").to_arrow()["id"].to_pylist()
        assert sorted(ids) == list(range(3000))
        counts_agree(client, cfg, 3000)
        maintain(client, cfg, "flush")
    finally:
        server.stop()
    from deltalake import DeltaTable
    assert sorted(DeltaTable(str(table_dir(data, cfg))).to_pyarrow_table()["id"].to_pylist()) == list(range(3000))


def test_inserts_wait_for_a_writer_that_is_behind(tmp_path):
    """Ingest faster than Parquet can be written: once a flush is running and the
    generation taking inserts is due for the next one, inserts wait for the flush
    instead of piling up unflushed rows (the server counts the waits), so the rows
    held in memory stay within a few generations (without the wait: 480k-900k rows
    here); every row arrives exactly once."""
    import re
    import threading
    import urllib.request

    import pyarrow as pa
    from prometheus_client.parser import text_string_to_metric_families

    data = tmp_path / "data"
    flush_rows, batch, batches = 20_000, 10_000, 120
    server = ServerProcess(data, args=["--flush-rows", flush_rows, "--flush-interval", "60",
                                       "--metrics-port", "0"])
    url = re.search(r"metrics on (http://\S+/metrics)", server.log()).group(1)
    cfg = config("behind")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        most, done = [0], threading.Event()

        def sample() -> None:
            watcher = DatasetClient(grpc)
            while not done.is_set():
                held = watcher.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)["tail_rows"]
                most[0] = max(most[0], held)

        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=batch, max_in_flight=4)) as producer:
            producer.register()
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                for k in range(batches):
                    ids = pa.array(range(k * batch, (k + 1) * batch), pa.int64())
                    producer.insert_arrow(pa.table({"id": ids, "value": pa.array([1.0] * batch)}))
                producer.flush(timeout=120)
            finally:
                done.set()
                sampler.join(30)
        with urllib.request.urlopen(url, timeout=10) as resp:
            metrics = resp.read().decode()
        waited = [s.value for family in text_string_to_metric_families(metrics) for s in family.samples
                  if s.name == "bifrost_table_writer_waits_total" and s.labels.get("table") == cfg.fqn]
        assert waited and waited[0] > 0, waited
        # the generations a running flush has sealed and the one taking inserts
        # (inserts wait once it holds 3x --flush-rows): measured 170k-250k rows on
        # a 2-core machine (an insert waits at most 0.5 s for a slow flush, then
        # goes on)
        assert 0 < most[0] <= 20 * flush_rows, most[0]
        counts_agree(client, cfg, batches * batch)
        maintain(client, cfg, "flush")
        ids = client.sql(f"SELECT id FROM {cfg.fqn}").to_arrow()["id"].to_pylist()
        assert sorted(ids) == list(range(batches * batch))
    finally:
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="needs root to mount a read-only file system")
def test_inserts_waiting_for_a_stuck_writer_never_hold_every_worker(tmp_path):
    """A writer that cannot flush (its table directory turned read-only) stays
    behind: inserts wait for it, but at most half of --workers of them at once;
    the others go on without waiting (counted apart in /metrics), every row is
    acknowledged, and all of them reach Delta once the directory is writable."""
    import re
    import subprocess
    import threading
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    data, wal = tmp_path / "data", tmp_path / "wal"
    server = ServerProcess(data, args=["--workers", "2", "--flush-rows", "1000", "--flush-interval", "60",
                                       "--wal-dir", wal, "--metrics-port", "0"])
    url = re.search(r"metrics on (http://\S+/metrics)", server.log()).group(1)
    cfg = config("stuck")
    grpc = GrpcConfig(server_uri=server.uri)
    mounted = None

    def waits() -> tuple[float, float]:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        found = {"bifrost_table_writer_waits_total": 0.0, "bifrost_table_writer_waits_skipped_total": 0.0}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in found and s.labels.get("table") == cfg.fqn:
                    found[s.name] = s.value
        return found["bifrost_table_writer_waits_total"], found["bifrost_table_writer_waits_skipped_total"]

    try:
        client = DatasetClient(grpc)
        with DatasetProducer(cfg, grpc) as producer:
            producer.register()
            producer.insert_many([Row(id=i, value=1.0) for i in range(10)])
            producer.flush(timeout=60)
        maintain(client, cfg, "flush")
        mounted = table_dir(data, cfg)
        subprocess.run(["mount", "--bind", str(mounted), str(mounted)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True)
        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=1500)) as producer:
            # a generation due for a flush that fails, then the next one grown to 3x
            # --flush-rows, where inserts start waiting for the writer
            for k, (first, n) in enumerate(((10, 1500), (1510, 3500))):
                producer.insert_many([Row(id=first + i, value=1.0) for i in range(n)])
                producer.flush(timeout=60)
                deadline = time.monotonic() + 30
                while k == 0 and "retrying in 5 s" not in server.log():
                    assert time.monotonic() < deadline, server.log()
                    time.sleep(0.05)

        def produce(k: int) -> None:
            with DatasetProducer(cfg, grpc, WriteConfig(batch_size=10, max_in_flight=1)) as p:
                for b in range(4):
                    base = 10_000 + k * 1000 + b * 10
                    p.insert_many([Row(id=base + i, value=1.0) for i in range(10)])
                    p.flush(timeout=60)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        waited, skipped = waits()
        assert waited >= 1 and skipped >= 1, (waited, skipped)
        assert count(client, cfg) == 10 + 5000 + 4 * 40
    finally:
        if mounted is not None:
            subprocess.run(["umount", str(mounted)], capture_output=True)
    try:
        maintain(client, cfg, "flush")
        from deltalake import DeltaTable
        assert len(DeltaTable(str(table_dir(data, cfg))).to_pyarrow_table()) == 10 + 5000 + 4 * 40
    finally:
        server.stop()
