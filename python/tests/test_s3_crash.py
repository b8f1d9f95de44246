"""kill -9 on a server whose tables live on S3: acknowledged rows are in its local
WAL (--wal-dir) and come back exactly once after a restart with the same WAL dir,
whether the kill hit during ingest (producers running, background flushes to the
bucket) or in the middle of a large flush (Parquet being uploaded, commit not yet
written). Checked through the server and with delta-rs reading the bucket."""
from __future__ import annotations

import os
import random
import threading
import time

from bifrost import DatasetProducer, WriteConfig

from s3_tables import (SENSORS, Reading, assert_exactly_once, big_batch, config, delta_rs_ids, describe, grpc,
                       ids_in, maintain, start_server, table_uri)


def test_kill9_during_ingest_every_acknowledged_row_once(s3, s3_bucket, tmp_path):
    """Producers insert without pause while the server (flushing to S3 every few
    hundred rows) is SIGKILLed at random moments and restarted on the same port
    and WAL dir; every acknowledged row is there exactly once afterwards."""
    rng = random.Random(7)
    args = ["--flush-rows", "400", "--flush-interval", "0.3", "--checkpoint-interval", "5"]
    server = start_server(s3, s3_bucket, tmp_path, args=args)
    port = server.port
    cfg = config("crash_ingest")
    stop = threading.Event()
    n_producers = 3
    counts = [0] * n_producers
    producers = [DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=40, scheduled_delay_secs=0.02,
                                                                max_retries=-1))
                 for _ in range(n_producers)]

    def run(k: int) -> None:
        i = 0
        while not stop.is_set():
            producers[k].insert(Reading(id=k * 10_000_000 + i, sensor=SENSORS[i % 3], value=float(i)))
            i += 1
            if i % 40 == 0:
                time.sleep(0.005)
        counts[k] = i

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_producers)]
    for t in threads:
        t.start()
    cycles = 40 if os.environ.get("BIFROST_LONG_TESTS") == "1" else 6
    try:
        for _ in range(cycles):
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            server = start_server(s3, s3_bucket, tmp_path, args=args, port=port)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        for p in producers:
            p.flush(timeout=180)
            stats = p.stats()
            assert stats["failed"] == 0 and stats["dropped"] == 0, stats
            p.shutdown()
        expected = [k * 10_000_000 + i for k in range(n_producers) for i in range(counts[k])]
        assert sum(counts) > cycles * 40  # the load really ran through the crashes
        assert_exactly_once(ids_in(server, cfg), expected, "server SQL after the crashes")
        maintain(server, cfg, "flush")
        assert describe(server, cfg)["tail_rows"] == 0
        assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), expected, "delta-rs on the bucket")
    finally:
        server.stop()


def test_kill9_during_a_large_flush_applies_once(s3, s3_bucket, tmp_path):
    """600k acknowledged rows, a flush that uploads them, SIGKILL once the first
    Parquet upload request reached S3 (before the commit): after a restart with the
    same WAL dir every row is there exactly once, and a flush commits them once."""
    args = ["--flush-interval", "3600", "--maintenance-interval", "0"]
    server = start_server(s3, s3_bucket, tmp_path, args=args)
    cfg = config("crash_flush")
    n = 600_000
    with DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=100_000)) as p:
        for start in range(0, n, 100_000):
            p.insert_arrow(big_batch(start, 100_000))
        assert p.flush(timeout=300) == n
    assert describe(server, cfg)["tail_rows"] == n
    commit_1 = f"{table_uri(s3_bucket, cfg).split('/', 3)[3]}/_delta_log/{1:020d}.json"

    s3.proxy.reset_counts()
    flusher = threading.Thread(target=lambda: _swallow(maintain, server, cfg, "flush"), daemon=True)
    flusher.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(m in ("PUT", "POST") and ".parquet" in path for m, path in s3.proxy.requests()):
            break
        time.sleep(0.005)
    else:
        raise AssertionError(f"no Parquet upload seen within 120 s; requests: {s3.proxy.requests()[:20]}")
    server.kill()
    sent = s3.proxy.requests()
    assert not any(m == "PUT" and commit_1 in path for m, path in sent), \
        "the flush committed before the kill: this test did not kill it mid-flush"
    flusher.join(30)

    server = start_server(s3, s3_bucket, tmp_path, args=args)
    try:
        assert_exactly_once(ids_in(server, cfg), list(range(n)), "server SQL after the kill")
        maintain(server, cfg, "flush")
        assert describe(server, cfg)["tail_rows"] == 0
        assert_exactly_once(ids_in(server, cfg), list(range(n)), "server SQL after the flush")
    finally:
        server.stop()
    assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), list(range(n)), "delta-rs on the bucket")


def _swallow(fn, *args) -> None:
    """Runs a call whose server is about to be killed: its error is expected."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - the kill breaks the call
        pass
