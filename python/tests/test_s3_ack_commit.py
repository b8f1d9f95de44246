"""--ack-mode commit: a batch is acknowledged only after the Delta commit that
contains it. Once flush() returns, delta-rs reading the bucket (no server
involved) has every row, even after the server is killed with an empty WAL dir
left behind; with S3 unreachable nothing is acknowledged until it is back, and
then every row lands exactly once. Several producers share commits (group
commit): far fewer commits than batches."""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from bifrost import BifrostTimeoutError, DatasetProducer, WriteConfig

from s3_tables import (assert_exactly_once, config, delta_rs_ids, grpc, ids_in, readings, start_server, table_key,
                       table_uri)

ARGS = ["--ack-mode", "commit", "--maintenance-interval", "0"]


def commits(s3, bucket: str, cfg) -> int:
    keys = s3.keys(bucket, table_key(cfg) + "/_delta_log/")
    return sum(1 for k in keys if k.endswith(".json") and "checkpoint" not in k)


def test_flushed_rows_are_in_the_delta_log(s3, s3_bucket, tmp_path):
    cfg = config("ack_commit")
    uri = table_uri(s3_bucket, cfg)
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        with DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=100)) as p:
            p.insert_many(readings(0, 250))
            assert p.flush(timeout=120) == 250
            assert_exactly_once(delta_rs_ids(s3, uri), list(range(250)), "delta-rs right after flush()")
            p.insert_many(readings(250, 1))
            assert p.flush(timeout=120) == 1
            assert_exactly_once(delta_rs_ids(s3, uri), list(range(251)), "delta-rs after a one-row flush")
    finally:
        server.kill()
    # Nothing needed the WAL: even with it gone, a new server has every row.
    shutil.rmtree(tmp_path / "wal-a", ignore_errors=True)
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        assert_exactly_once(ids_in(server, cfg), list(range(251)), "new server, WAL dir removed")
    finally:
        server.stop()


def test_nothing_acknowledged_while_s3_is_down(s3, s3_bucket, tmp_path):
    cfg = config("ack_commit_down")
    uri = table_uri(s3_bucket, cfg)
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        p = DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=50, max_retries=-1))
        p.register()
        s3.proxy.down()
        p.insert_many(readings(0, 200))
        with pytest.raises(BifrostTimeoutError):
            p.flush(timeout=5)
        assert p.stats()["acknowledged"] == 0
        s3.proxy.up()
        p.flush(timeout=180)
        stats = p.stats()
        assert stats["acknowledged"] == 200 and stats["failed"] == 0, stats
        p.shutdown()
        assert_exactly_once(delta_rs_ids(s3, uri), list(range(200)), "delta-rs after S3 came back")
        assert_exactly_once(ids_in(server, cfg), list(range(200)), "server SQL after S3 came back")
    finally:
        s3.proxy.up()
        server.stop()


def test_group_commit_across_producers(s3, s3_bucket, tmp_path):
    """8 producers x 20 batches each at once: every row once, in fewer commits than batches."""
    cfg = config("group_commit")
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    n_producers, batches, size = 8, 20, 25
    errors = []

    def produce(k: int) -> None:
        try:
            with DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=size, scheduled_delay_secs=0.01)) as p:
                for b in range(batches):
                    p.insert_many(readings(k * 100_000 + b * size, size))
                    p.flush(timeout=120)  # one batch at a time: each waits for its commit
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        with DatasetProducer(cfg, grpc(server)) as p:
            p.register()
        before = commits(s3, s3_bucket, cfg)
        started = time.monotonic()
        threads = [threading.Thread(target=produce, args=(k,)) for k in range(n_producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        elapsed = time.monotonic() - started
        assert not errors, errors
        made = commits(s3, s3_bucket, cfg) - before
        print(f"group commit: {n_producers * batches} batches in {made} commits, {elapsed:.1f} s")
        assert made < n_producers * batches
        expected = [k * 100_000 + i for k in range(n_producers) for i in range(batches * size)]
        assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), expected, "delta-rs")
    finally:
        server.stop()


def test_kill9_and_lost_wal_dir_lose_nothing_acknowledged(s3, s3_bucket, tmp_path):
    """The point of --ack-mode commit: the server's disk may go with it. Producers
    run while the server is SIGKILLed and restarted with an empty WAL dir, several
    times; every row is there exactly once at the end (acknowledged ones were in
    the Delta log, the rest are retried by the producers and recognised by their
    sequence when a lost answer hid a commit)."""
    cfg = config("ack_commit_crash")
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    port = server.port
    stop = threading.Event()
    n_producers = 3
    counts = [0] * n_producers
    producers = [DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=100, scheduled_delay_secs=0.02,
                                                                max_retries=-1))
                 for _ in range(n_producers)]

    def run(k: int) -> None:
        # ~800 rows/s each: within what commit mode acknowledges (a batch waits for
        # its commit, ~0.15 s on moto; 4 batches in flight), so no backlog builds up.
        i = 0
        while not stop.is_set():
            producers[k].insert(readings(k * 10_000_000 + i, 1)[0])
            i += 1
            if i % 40 == 0:
                time.sleep(0.05)
        counts[k] = i

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_producers)]
    for t in threads:
        t.start()
    acknowledged_before_kill = []
    try:
        for cycle in range(4):
            time.sleep(0.5 + 0.3 * cycle)
            acknowledged_before_kill.append(sum(p.stats()["acknowledged"] for p in producers))
            server.kill()
            shutil.rmtree(tmp_path / "wal-a")
            server = start_server(s3, s3_bucket, tmp_path, args=ARGS, port=port)
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
        assert acknowledged_before_kill[-1] > 0
        expected = [k * 10_000_000 + i for k in range(n_producers) for i in range(counts[k])]
        assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), expected, "delta-rs")
        assert_exactly_once(ids_in(server, cfg), expected, "server SQL")
    finally:
        server.stop()
