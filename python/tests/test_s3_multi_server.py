"""Several servers on one bucket prefix, each with its own WAL dir: concurrent
producers on both plus maintenance on one leave every row exactly once in a
contiguous Delta log (lost commit races retried); rows acknowledged on one server
become visible through the other within a few seconds (measured; target 2 s,
asserted with a generous bound); both registering one table at once make one table."""
from __future__ import annotations

import re
import threading
import time
from typing import List

import raw_grpc
from bifrost import DatasetClient, DatasetProducer, WriteConfig

from s3_tables import (assert_exactly_once, config, delta_rs_ids, grpc, ids_in, insert, maintain, readings,
                       start_server, table_key, table_uri, wait_for_ids)

VISIBILITY_BOUND_S = 10.0  # generous; the documented target is 2 s


def log_versions(s3, bucket: str, cfg) -> List[int]:
    keys = s3.keys(bucket, table_key(cfg) + "/_delta_log/")
    return sorted(int(k.rsplit("/", 1)[1][:20]) for k in keys if k.endswith(".json") and "checkpoint" not in k)


def test_two_servers_concurrent_producers_and_maintenance(s3, s3_bucket, tmp_path):
    args = ["--flush-rows", "150", "--flush-interval", "0.2", "--maintenance-interval", "0",
            "--compact-min-files", "0"]
    a = start_server(s3, s3_bucket, tmp_path, name="a", args=args)
    b = start_server(s3, s3_bucket, tmp_path, name="b", args=args)
    cfg = config("shared")
    errors: List[BaseException] = []
    done = threading.Event()

    def produce(srv, start: int) -> None:
        # 20 rounds of 150 rows over a few seconds: both servers flush (every
        # 150 rows / 0.2 s) and commit to the same log again and again meanwhile.
        try:
            with DatasetProducer(cfg, grpc(srv), WriteConfig(batch_size=50)) as p:
                for k in range(20):
                    p.insert_many(readings(start + k * 150, 150))
                    assert p.flush(timeout=120) == 150
                    time.sleep(0.15)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def upkeep() -> None:
        while not done.is_set():
            try:
                maintain(a, cfg, "optimize", "checkpoint")
            except Exception as exc:  # noqa: BLE001 - the table may not exist yet
                if "not found" not in str(exc).lower() and "NotFound" not in type(exc).__name__:
                    errors.append(exc)
            time.sleep(0.3)

    try:
        jobs = [threading.Thread(target=produce, args=(srv, start)) for srv, start in ((a, 0), (b, 100_000))]
        keeper = threading.Thread(target=upkeep)
        for j in jobs + [keeper]:
            j.start()
        for j in jobs:
            j.join(300)
        done.set()
        keeper.join(120)
        assert not errors, errors
        maintain(a, cfg, "flush")
        maintain(b, cfg, "flush")
        expected = sorted(list(range(3000)) + list(range(100_000, 103_000)))
        versions = log_versions(s3, s3_bucket, cfg)
        assert versions == list(range(len(versions))) and len(versions) > 10
        assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), expected, "delta-rs")
        for srv in (a, b):
            wait_for_ids(srv, cfg, expected, VISIBILITY_BOUND_S)
            assert_exactly_once(ids_in(srv, cfg), expected, srv.uri)
    finally:
        a.stop()
        b.stop()


def test_rows_acknowledged_on_one_server_visible_on_the_other(s3, s3_bucket, tmp_path):
    """Default settings (no explicit flush): acknowledged on A, seen through B."""
    a = start_server(s3, s3_bucket, tmp_path, name="a")
    b = start_server(s3, s3_bucket, tmp_path, name="b")
    cfg = config("visible")
    try:
        insert(a, cfg, readings(0, 10))
        wait_for_ids(b, cfg, list(range(10)), VISIBILITY_BOUND_S)  # the table reaches B too
        delays = []
        for k in range(1, 6):
            src, dst = (a, b) if k % 2 else (b, a)
            insert(src, cfg, readings(k * 100, 10))
            expected = sorted(list(range(10)) + [i for j in range(1, k + 1) for i in range(j * 100, j * 100 + 10)])
            delays.append(wait_for_ids(dst, cfg, expected, VISIBILITY_BOUND_S))
        print(f"cross-server visibility: max {max(delays):.2f} s, all {[round(d, 2) for d in delays]}")
        assert max(delays) < VISIBILITY_BOUND_S
    finally:
        a.stop()
        b.stop()


def test_concurrent_registration_makes_one_table(s3, s3_bucket, tmp_path):
    a = start_server(s3, s3_bucket, tmp_path, name="a")
    b = start_server(s3, s3_bucket, tmp_path, name="b")
    try:
        for k in range(5):
            cfg = config(f"race_{k}")
            barrier = threading.Barrier(2)
            request = raw_grpc.register_request(raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table),
                                                cfg._json_schema, cfg.partition_columns)
            results: List[str] = []
            errors: List[BaseException] = []

            def register(srv) -> None:
                # RegisterTable by hand: a DatasetProducer registers in its constructor,
                # and the call's status ("created" / "already_exists") is what is raced.
                barrier.wait(10)
                response, error = raw_grpc.call(srv.uri, "RegisterTable", request)
                if error is not None:
                    errors.append(error)
                else:
                    results.append(next(s for s in ("already_exists", "created") if s.encode() in response))

            threads = [threading.Thread(target=register, args=(srv,)) for srv in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            assert sorted(results) == ["already_exists", "created"], results
            assert log_versions(s3, s3_bucket, cfg) == [0]
            insert(a, cfg, readings(0, 20))
            insert(b, cfg, readings(20, 20))
            maintain(a, cfg, "flush")
            maintain(b, cfg, "flush")
            assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), list(range(40)), cfg.table)
        for srv in (a, b):
            names = [d["table"] for d in DatasetClient(grpc(srv)).list_datasets()]
            assert sorted(n for n in names if n.startswith("race_")) == [f"race_{k}" for k in range(5)]
    finally:
        a.stop()
        b.stop()


def test_vacuum_on_one_server_keeps_files_the_other_is_committing(s3, s3_bucket, tmp_path):
    """B has uploaded a flush's Parquet files and is about to commit them (its
    commit PUT is held at the proxy) while A vacuums with retention 0: the files are
    protected (leases), B's commit lands, and every reader finds every file."""
    args = ["--flush-interval", "3600", "--maintenance-interval", "0", "--unsafe-short-retention"]
    a = start_server(s3, s3_bucket, tmp_path, name="a", args=args)
    b = start_server(s3, s3_bucket, tmp_path, name="b", args=args)
    cfg = config("vacuum_race")
    uri = table_uri(s3_bucket, cfg)
    try:
        insert(a, cfg, readings(0, 90))
        maintain(a, cfg, "flush")
        insert(b, cfg, readings(90, 90))
        held, release = threading.Event(), threading.Event()

        def hold_commit(method: str, target: str) -> None:
            if method == "PUT" and re.search(r"/_delta_log/\d{20}\.json$", target.split("?")[0]) \
                    and not held.is_set():
                held.set()
                release.wait(60)

        s3.proxy.on_request = hold_commit
        flusher = threading.Thread(target=lambda: maintain(b, cfg, "flush"), daemon=True)
        flusher.start()
        assert held.wait(60), "B never tried to commit"
        try:
            # B's three files are in the bucket, referenced by no commit yet.
            parquet = [k for k in s3.keys(s3_bucket, table_key(cfg) + "/") if k.endswith(".parquet")]
            assert len(parquet) == 6, parquet
            vacuumed = maintain(a, cfg, "vacuum", retention_hours=0)
        finally:
            release.set()
        flusher.join(120)
        s3.proxy.on_request = None
        assert not s3.proxy.hook_errors
        assert vacuumed["files_deleted"] == 0, vacuumed
        expected = list(range(180))
        assert_exactly_once(delta_rs_ids(s3, uri), expected, "delta-rs after the vacuum")
        for srv in (a, b):
            wait_for_ids(srv, cfg, expected, VISIBILITY_BOUND_S)
    finally:
        s3.proxy.on_request = None
        a.stop()
        b.stop()
