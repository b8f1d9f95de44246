"""Delta commits on S3 at the exact moment things go wrong, staged with the proxy's
request hook: another writer takes the version the server is about to commit (a
lost put-if-absent race: the server re-reads and commits at the next version),
and a commit that reached S3 whose answer never came back (the server cannot
know it succeeded: its retry must not commit the rows a second time)."""
from __future__ import annotations

import json
import re
import time
from typing import List

from s3_support import DROP_RESPONSE
from s3_tables import (assert_exactly_once, config, delta_rs_ids, describe, ids_in, insert, maintain, readings,
                       start_server, table_key, table_uri)

ARGS = ["--flush-interval", "3600", "--maintenance-interval", "0", "--checkpoint-interval", "0"]
COMMIT = re.compile(r"/_delta_log/(\d{20})\.json$")


def log_versions(s3, bucket: str, cfg) -> List[int]:
    keys = s3.keys(bucket, table_key(cfg) + "/_delta_log/")
    return sorted(int(k.rsplit("/", 1)[1][:20]) for k in keys if COMMIT.search("/" + k.split("/", 1)[1]))


def commit_put(method: str, target: str):
    match = COMMIT.search(target.split("?")[0])
    return int(match.group(1)) if method == "PUT" and match else None


def test_lost_commit_race_retries_at_the_next_version(s3, s3_bucket, tmp_path):
    cfg = config("lost_race")
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        insert(server, cfg, readings(0, 100))
        assert maintain(server, cfg, "flush")["delta_version"] == 1
        insert(server, cfg, readings(100, 100))
        taken: List[int] = []
        foreign = json.dumps({"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "WRITE",
                                             "operationParameters": {"mode": "Append"},
                                             "engineInfo": "bifrost-test-foreign-writer"}}) + "\n"

        def take_version(method: str, target: str) -> None:
            version = commit_put(method, target)
            if version is not None and not taken:  # another writer gets there first
                s3.client.put_object(Bucket=s3_bucket, Key=f"{table_key(cfg)}/_delta_log/{version:020d}.json",
                                     Body=foreign.encode(), IfNoneMatch="*")
                taken.append(version)

        s3.proxy.on_request = take_version
        done = maintain(server, cfg, "flush")
        s3.proxy.on_request = None
        assert not s3.proxy.hook_errors, s3.proxy.hook_errors
        assert taken == [2]
        assert done["rows_flushed"] == 100 and done["delta_version"] == 3
        assert log_versions(s3, s3_bucket, cfg) == [0, 1, 2, 3]
        body = s3.client.get_object(Bucket=s3_bucket, Key=f"{table_key(cfg)}/_delta_log/{2:020d}.json")["Body"]
        assert b"bifrost-test-foreign-writer" in body.read()  # the other writer's commit stays as it was
        assert_exactly_once(ids_in(server, cfg), list(range(200)), "server SQL")
        assert describe(server, cfg)["tail_rows"] == 0
    finally:
        s3.proxy.on_request = None
        server.stop()
    assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), list(range(200)), "delta-rs")


def test_commit_whose_answer_is_lost_is_not_applied_twice(s3, s3_bucket, tmp_path):
    cfg = config("lost_answer")
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        insert(server, cfg, readings(0, 100))
        dropped: List[int] = []

        def drop_commit_answer(method: str, target: str):
            version = commit_put(method, target)
            if version is not None and not dropped:
                dropped.append(version)
                return DROP_RESPONSE
            return None

        s3.proxy.on_request = drop_commit_answer
        try:
            maintain(server, cfg, "flush")
        except Exception:  # noqa: BLE001 - a failed flush is allowed; a double commit is not
            pass
        s3.proxy.on_request = None
        assert dropped == [1]
        # Whatever the server concluded, it gets there by itself or on the next flush.
        deadline = time.monotonic() + 60
        while describe(server, cfg)["tail_rows"] and time.monotonic() < deadline:
            try:
                maintain(server, cfg, "flush")
            except Exception:  # noqa: BLE001 - retried until the deadline
                time.sleep(0.5)
        assert describe(server, cfg)["tail_rows"] == 0
        assert_exactly_once(ids_in(server, cfg), list(range(100)), "server SQL")
        insert(server, cfg, readings(100, 50))
        maintain(server, cfg, "flush")
        assert_exactly_once(ids_in(server, cfg), list(range(150)), "server SQL after one more flush")
    finally:
        s3.proxy.on_request = None
        server.stop()
    assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), list(range(150)), "delta-rs")
    # And after a restart (WAL replay against the log with that commit in it).
    server = start_server(s3, s3_bucket, tmp_path, args=ARGS)
    try:
        assert_exactly_once(ids_in(server, cfg), list(range(150)), "server SQL after a restart")
    finally:
        server.stop()
