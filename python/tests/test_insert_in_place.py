"""The server decodes an InsertBatch's Arrow data in place, inside the received
request (no copy), moving it to an 8-byte boundary when it does not start on one.
Whatever the request looks like around the Arrow bytes (where the field lies, in
which order the fields come, unknown fields), the rows stored are exactly the rows
sent, and a request that protobuf would read differently is refused as before."""
from __future__ import annotations

import pyarrow as pa

import raw_grpc
from test_hardening import count, ipc, note_batch, note_config, register


def rows(server, cfg):
    from bifrost import DatasetClient, GrpcConfig

    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    table = client.sql(f"SELECT text FROM {cfg.catalog}.{cfg.schema_name}.{cfg.table}").to_arrow()
    return sorted(table["text"].to_pylist())


def test_every_alignment_of_the_arrow_bytes_stores_the_rows_sent(server):
    cfg = note_config("in_place_align")
    register(server, cfg)
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    expected = []
    for shift in range(9):
        # Producer ids of growing length move the Arrow bytes (sent after them here)
        # through every offset modulo 8.
        texts = [f"s{shift}-{i}" * (i % 5) for i in range(300)]
        data = ipc(note_batch(cfg, pa.array(texts), 0))
        request = (raw_grpc._field(1, name) + raw_grpc._field(4, raw_grpc._text("p" * (shift + 1)))
                   + raw_grpc._uint(5, 1) + raw_grpc._field(2, raw_grpc._text(cfg.fingerprint_str))
                   + raw_grpc._field(3, data))
        _, error = raw_grpc.call(server.uri, "InsertBatch", request)
        assert error is None, error
        expected += texts
    assert rows(server, cfg) == sorted(expected)


def test_fields_after_the_arrow_bytes_and_unknown_fields_are_read(server):
    cfg = note_config("in_place_fields")
    register(server, cfg)
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    data = ipc(note_batch(cfg, pa.array(["a", "b", "c"]), 0))
    request = (raw_grpc._field(3, data) + raw_grpc._field(1, name)
               + raw_grpc._field(2, raw_grpc._text(cfg.fingerprint_str))
               + raw_grpc._field(99, b"unknown to this server") + raw_grpc._field(4, raw_grpc._text("p-x"))
               + raw_grpc._uint(5, 7))
    _, error = raw_grpc.call(server.uri, "InsertBatch", request)
    assert error is None, error
    # the producer id and sequence after the Arrow bytes were read: a resend is a duplicate
    reply, error = raw_grpc.call(server.uri, "InsertBatch", request)
    assert error is None, error
    assert count(server, cfg) == 3


def test_arrow_bytes_given_twice_are_refused(server):
    cfg = note_config("in_place_twice")
    register(server, cfg)
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    first = ipc(note_batch(cfg, pa.array(["first"]), 0))
    second = ipc(note_batch(cfg, pa.array(["second", "second"]), 0))
    request = raw_grpc.insert_request(name, cfg.fingerprint_str, first) + raw_grpc._field(3, second)
    _, error = raw_grpc.call(server.uri, "InsertBatch", request)
    assert error is not None and "canonically encoded" in error.details()
    assert count(server, cfg) == 0


def test_a_cut_request_is_refused_and_the_server_keeps_serving(server):
    cfg = note_config("in_place_cut")
    register(server, cfg)
    name = raw_grpc.table_name(cfg.catalog, cfg.schema_name, cfg.table)
    request = raw_grpc.insert_request(name, cfg.fingerprint_str, ipc(note_batch(cfg, pa.array(["x"] * 50), 0)))
    for cut in (1, 7, len(request) // 2, len(request) - 1):
        _, error = raw_grpc.call(server.uri, "InsertBatch", request[:cut])
        assert error is not None
    _, error = raw_grpc.call(server.uri, "InsertBatch", request)
    assert error is None, error
    assert count(server, cfg) == 50
