"""S3 failures injected with the proxy in front of moto: the endpoint goes away in
the middle of a flush (connections cut, new ones refused) and comes back. The
server keeps acknowledging inserts into its WAL meanwhile, keeps answering
queries, and once S3 is back it finishes the flush on its own: nothing lost,
nothing duplicated, readable by delta-rs. Throttling (503 SlowDown) and 500s are
retried. (S3 unreachable at startup: test_s3_errors.py.)"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import List

import pytest

from bifrost import DatasetProducer, WriteConfig

from s3_support import SECRET_KEY, error_response
from s3_tables import (assert_exactly_once, big_batch, config, delta_rs_ids, describe, grpc, ids_in, insert,
                       maintain, readings, start_server, table_key, table_uri)


def wait_until_parquet_upload(s3, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m in ("PUT", "POST") and ".parquet" in path for m, path in s3.proxy.requests()):
            return
        time.sleep(0.005)
    raise AssertionError(f"no Parquet upload within {timeout} s; requests: {s3.proxy.requests()[:20]}")


def test_endpoint_down_mid_flush_then_back(s3, s3_bucket, tmp_path):
    args = ["--flush-interval", "1", "--maintenance-interval", "0"]
    server = start_server(s3, s3_bucket, tmp_path, args=args)
    cfg = config("faults")
    n = 300_000
    try:
        with DatasetProducer(cfg, grpc(server), WriteConfig(batch_size=100_000)) as p:
            for start in range(0, n, 100_000):
                p.insert_arrow(big_batch(start, 100_000))
            assert p.flush(timeout=300) == n

        s3.proxy.reset_counts()
        outcome: dict = {}

        def flush() -> None:
            try:
                outcome["done"] = maintain(server, cfg, "flush")
            except Exception as exc:  # noqa: BLE001 - S3 is down: an error is an answer too
                outcome["error"] = exc

        flusher = threading.Thread(target=flush, daemon=True)
        flusher.start()
        wait_until_parquet_upload(s3)
        s3.proxy.down()
        down_at = time.monotonic()

        # With S3 gone, inserts are still acknowledged (WAL) and visible at once.
        insert(server, cfg, readings(n, 2000), batch_size=500)
        assert server.proc.poll() is None, server.log()
        assert_exactly_once(ids_in(server, cfg), list(range(n + 2000)), "server SQL while S3 is down")
        time.sleep(max(0.0, 3 - (time.monotonic() - down_at)))
        s3.proxy.up()

        flusher.join(300)
        assert not flusher.is_alive(), "the MaintainTable flush never returned"
        # The server finishes the job on its own (background flush every second).
        deadline = time.monotonic() + 120
        while describe(server, cfg)["tail_rows"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert describe(server, cfg)["tail_rows"] == 0, f"not flushed after S3 came back; log:\n{server.log()}"
        expected = list(range(n + 2000))
        assert_exactly_once(ids_in(server, cfg), expected, "server SQL after recovery")
        assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), expected, "delta-rs after recovery")
        assert server.proc.poll() is None
        leases = s3.keys(s3_bucket, table_key(cfg) + "/_bifrost/leases/")
        assert leases == [], f"write leases left behind after S3 came back: {leases}"
    finally:
        s3.proxy.up()
        server.stop()
    assert server.proc.returncode == 0, server.log()
    assert SECRET_KEY not in server.full_log()


def test_throttling_and_server_errors_are_retried(s3, s3_bucket, tmp_path):
    """Every distinct request of a flush is first answered 503 SlowDown, then 500
    InternalError (neither reaches S3), then let through: the flush succeeds by
    retrying, with one commit, and every row is there once."""
    args = ["--flush-interval", "3600", "--maintenance-interval", "0"]
    server = start_server(s3, s3_bucket, tmp_path, args=args)
    cfg = config("throttled")
    try:
        insert(server, cfg, readings(0, 300))
        assert maintain(server, cfg, "flush")["delta_version"] == 1
        insert(server, cfg, readings(300, 300))
        refused: Counter = Counter()

        def flaky(method: str, target: str):
            key = (method, target.split("?")[0])
            if refused[key] < 2:
                refused[key] += 1
                return error_response(503, "SlowDown") if refused[key] == 1 else error_response(500, "InternalError")
            return None

        s3.proxy.on_request = flaky
        try:
            done = maintain(server, cfg, "flush")
        finally:
            s3.proxy.on_request = None
        assert not s3.proxy.hook_errors, s3.proxy.hook_errors
        kinds = {method for method, _ in refused}
        assert "PUT" in kinds and len(refused) >= 5, refused  # Parquet files and the commit were refused
        assert done["rows_flushed"] == 300 and done["delta_version"] == 2, done
        assert_exactly_once(ids_in(server, cfg), list(range(600)), "server SQL")
    finally:
        s3.proxy.on_request = None
        server.stop()
    assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), list(range(600)), "delta-rs")
    assert SECRET_KEY not in server.full_log()


def test_endpoint_down_mid_compaction_leaves_a_valid_table(s3, s3_bucket, tmp_path):
    """S3 goes away as OPTIMIZE uploads its first compacted file: the optimize
    fails, the table stays valid and complete; once S3 is back a new optimize
    compacts it, and no write lease of the failed one is left to block vacuum."""
    args = ["--flush-interval", "3600", "--maintenance-interval", "0", "--compact-min-files", "0"]
    server = start_server(s3, s3_bucket, tmp_path, args=args)
    cfg = config("compact_down")
    uri = table_uri(s3_bucket, cfg)
    expected = list(range(240))
    try:
        for k in range(4):
            insert(server, cfg, readings(k * 60, 60))
            maintain(server, cfg, "flush")
        cut: List[str] = []

        def cut_at_first_upload(method: str, target: str) -> None:
            if method in ("PUT", "POST") and ".parquet" in target and not cut:
                cut.append(target)
                s3.proxy.down()  # this request goes nowhere; new ones are refused

        s3.proxy.on_request = cut_at_first_upload
        with pytest.raises(Exception):
            maintain(server, cfg, "optimize")
        s3.proxy.on_request = None
        assert cut, "OPTIMIZE uploaded nothing"
        assert not s3.proxy.hook_errors, s3.proxy.hook_errors
        s3.proxy.up()
        assert server.proc.poll() is None
        assert_exactly_once(delta_rs_ids(s3, uri), expected, "delta-rs after the failed optimize")
        assert_exactly_once(ids_in(server, cfg), expected, "server SQL after the failed optimize")

        done = maintain(server, cfg, "optimize")
        assert done["files_removed"] == 12 and done["files_added"] == 3, done
        assert_exactly_once(delta_rs_ids(s3, uri), expected, "delta-rs after the second optimize")
        # The failed optimize's write lease must not outlive it: while it exists,
        # vacuum keeps every file written after it (README: an hour until abandoned).
        leases = s3.keys(s3_bucket, table_key(cfg) + "/_bifrost/leases/")
        assert leases == [], f"write leases left behind after S3 came back: {leases}"
        assert_exactly_once(ids_in(server, cfg), expected, "server SQL after the second optimize")
    finally:
        s3.proxy.on_request = None
        s3.proxy.up()
        server.stop()
    assert_exactly_once(delta_rs_ids(s3, uri), expected, "delta-rs at the end")
