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

from bifrost import DatasetProducer, WriteConfig

from s3_support import SECRET_KEY, error_response
from s3_tables import (assert_exactly_once, config, delta_rs_ids, describe, grpc, ids_in, insert, maintain,
                       readings, start_server, table_uri)
from test_s3_crash import big_batch


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
