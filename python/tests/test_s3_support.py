"""The S3 test harness itself (s3_support.py), independent of bifrost-server: moto
answers through the proxy, the proxy counts every HTTP request (Content-Length,
chunked and keep-alive streams), down() refuses connections and cuts open ones,
up() serves on the same port again; delta-rs, polars and DuckDB delta_scan read
one table from the bucket."""
from __future__ import annotations

import socket

import pytest

from s3_support import _RequestCounter, boto_client, delta_scan


def test_request_counter_follows_bodies_and_chunks():
    seen = []
    counter = _RequestCounter(lambda m, p, agent: seen.append((m, p)))
    body = b"GET /fake HTTP/1.1\r\n\r\n" * 3  # inside a body: not requests
    stream = (b"PUT /b/k HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
              + b"POST /b/k?uploads HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"5\r\nhello\r\n1a;ext=1\r\n" + b"x" * 26 + b"\r\n0\r\n\r\n"
              + b"GET /b?list-type=2 HTTP/1.1\r\nHost: h\r\n\r\n")
    for i in range(0, len(stream), 7):  # arrives in small pieces
        counter.feed(stream[i:i + 7])
    assert seen == [("PUT", "/b/k"), ("POST", "/b/k?uploads"), ("GET", "/b?list-type=2")]


def test_proxy_counts_refuses_and_comes_back(s3, s3_bucket):
    client = boto_client(s3.endpoint)  # through the proxy
    client.put_object(Bucket=s3_bucket, Key="a/one", Body=b"1" * 100_000)
    assert client.get_object(Bucket=s3_bucket, Key="a/one")["Body"].read() == b"1" * 100_000
    assert [r for r in s3.proxy.requests() if "/a/one" in r[1]] == [
        ("PUT", f"/{s3_bucket}/a/one"), ("GET", f"/{s3_bucket}/a/one")]

    held = socket.create_connection(("127.0.0.1", s3.proxy.port))
    s3.proxy.down()
    try:  # an open connection is cut (closed, or reset if it was not accepted yet)
        assert held.recv(1) == b""
    except ConnectionResetError:
        pass
    held.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s3.proxy.port), timeout=2)
    s3.proxy.up()
    client = boto_client(s3.endpoint)
    assert client.get_object(Bucket=s3_bucket, Key="a/one")["Body"].read() == b"1" * 100_000
    assert s3.keys(s3_bucket) == ["a/one"]


def test_three_readers_read_a_delta_table_in_the_bucket(s3, s3_bucket):
    import deltalake
    import polars as pl
    import pyarrow as pa

    uri = f"s3://{s3_bucket}/t"
    data = pa.table({"id": pa.array(range(100), pa.int64()), "p": [("a", "b")[i % 2] for i in range(100)]})
    deltalake.write_deltalake(uri, data, partition_by=["p"], storage_options=s3.storage_options())
    assert sorted(deltalake.DeltaTable(uri, storage_options=s3.storage_options())
                  .to_pyarrow_table().column("id").to_pylist()) == list(range(100))
    assert sorted(pl.read_delta(uri, storage_options=s3.storage_options())["id"].to_list()) == list(range(100))
    scanned = delta_scan(s3.direct_endpoint, uri)
    assert sorted(zip(scanned.column("id").to_pylist(), scanned.column("p").to_pylist())) == \
        [(i, ("a", "b")[i % 2]) for i in range(100)]


def test_proxy_injects_error_answers_and_lost_responses(s3, s3_bucket):
    import botocore.exceptions

    from s3_support import DROP_RESPONSE, error_response

    client = boto_client(s3.endpoint)
    s3.proxy.on_request = lambda method, target: error_response(503, "SlowDown") if method == "PUT" else None
    with pytest.raises(botocore.exceptions.ClientError, match="SlowDown"):
        client.put_object(Bucket=s3_bucket, Key="refused", Body=b"x")
    assert s3.keys(s3_bucket) == []  # never reached S3
    assert [m for m, _ in s3.proxy.requests()].count("PUT") >= 2  # refused each time boto3 retried

    s3.proxy.on_request = lambda method, target: DROP_RESPONSE if method == "PUT" else None
    with pytest.raises(botocore.exceptions.BotoCoreError):
        client.put_object(Bucket=s3_bucket, Key="done-but-unanswered", Body=b"y")
    assert s3.keys(s3_bucket) == ["done-but-unanswered"]  # reached S3 all the same
    s3.proxy.on_request = None
    assert client.get_object(Bucket=s3_bucket, Key="done-but-unanswered")["Body"].read() == b"y"
