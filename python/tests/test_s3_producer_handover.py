"""Exactly once across servers (README, "Exactly once across servers"): a batch
(producer id, sequence) that server A stored and flushed is recognised when the
same batch is retried on server B (a load balancer moving the producer), because
the sequence is a Delta txn version every server reads. Sent with raw InsertBatch
calls so the retry is byte-for-byte the same batch."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

import raw_grpc
from bifrost import DatasetProducer
from test_hardening import ipc

from s3_tables import (SENSORS, assert_exactly_once, config, delta_rs_ids, describe, grpc, ids_in, maintain,
                       start_server, table_uri, wait_for_ids)


def batch(cfg, start: int, n: int) -> bytes:
    """Rows start..start+n in the table's layout (system columns filled), as IPC."""
    now = dt.datetime.now(dt.timezone.utc)
    ids = range(start, start + n)
    columns = [pa.array(ids, pa.int64()), pa.array([SENSORS[i % 3] for i in ids], pa.string_view()),
               pa.array([i * 0.5 for i in ids], pa.float64()), pa.array([now] * n, pa.timestamp("us", tz="UTC")),
               pa.array([now.date()] * n, pa.date32()), pa.array([f"batch-{start}"] * n, pa.string())]
    return ipc(pa.RecordBatch.from_arrays(columns, schema=cfg.arrow_schema))


def send(server, cfg, data: bytes, producer_id: str, sequence: int):
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    return raw_grpc.call(server.uri, "InsertBatch",
                         raw_grpc.insert_request(name, cfg.fingerprint_str, data, producer_id, sequence))


def test_batch_committed_on_one_server_is_not_stored_again_on_another(s3, s3_bucket, tmp_path):
    cfg = config("handover")
    a = start_server(s3, s3_bucket, tmp_path, name="a")
    b = start_server(s3, s3_bucket, tmp_path, name="b")
    try:
        with DatasetProducer(cfg, grpc(a)) as producer:
            producer.register()
        first, second = batch(cfg, 0, 50), batch(cfg, 50, 50)
        for seq, data in ((1, first), (2, second)):
            _, error = send(a, cfg, data, "handover-producer", seq)
            assert error is None, error
        maintain(a, cfg, "flush")
        wait_for_ids(b, cfg, list(range(100)), 10)  # B sees A's commit

        # The producer, moved to B, retries its last batch, then goes on with the next.
        _, error = send(b, cfg, second, "handover-producer", 2)
        assert error is None, error  # acknowledged (as a duplicate), not refused
        _, error = send(b, cfg, batch(cfg, 100, 50), "handover-producer", 3)
        assert error is None, error
        expected = list(range(150))
        assert_exactly_once(ids_in(b, cfg), expected, "server B")
        maintain(b, cfg, "flush")
        assert describe(b, cfg)["tail_rows"] == 0
        assert_exactly_once(delta_rs_ids(s3, table_uri(s3_bucket, cfg)), expected, "delta-rs")
        wait_for_ids(a, cfg, expected, 10)
    finally:
        a.stop()
        b.stop()
