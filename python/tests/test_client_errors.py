"""Errors that say what to fix: a fingerprint mismatch lists the columns that differ,
write statements are refused as read-only (QueryPermissionError), a refused file
access is a QueryPermissionError, an address without a port means port 50051, and a
closed client says so."""
from __future__ import annotations

from typing import Optional

import pytest
from pydantic import BaseModel

from bifrost import (
    ClientClosedError,
    DatasetClient,
    DatasetProducer,
    FingerprintMismatchError,
    GrpcConfig,
    QueryError,
    QueryPermissionError,
    TableConfig,
)


class Stored(BaseModel):
    id: int
    name: str
    score: float
    note: Optional[str] = None


class Changed(BaseModel):
    id: Optional[int] = None  # nullability changed
    name: int                 # type changed
    note: Optional[str] = None
    extra: bool               # only in the model
    # score: only in the table


def test_fingerprint_mismatch_lists_the_differences(grpc, unique_table):
    DatasetProducer(TableConfig(Stored, "test", "client_errors", unique_table), grpc).shutdown()
    changed = TableConfig(Changed, "test", "client_errors", unique_table)
    with pytest.raises(FingerprintMismatchError) as info:
        DatasetClient(grpc, changed)
    message = str(info.value)
    diff = info.value.differences
    assert diff["added"] == ["extra (Boolean, required)"]
    assert diff["removed"] == ["score (Float64, required)"]
    assert diff["type_changed"] == ["name: table Utf8View -> model Int64"]
    assert diff["nullability_changed"] == ["id: table required -> model nullable"]
    for text in ["extra", "score", "name: table Utf8View -> model Int64", "id: table required -> model nullable"]:
        assert text in message
    assert "note" not in message


@pytest.mark.parametrize("statement, word", [
    ("INSERT INTO test.client_errors.{t} VALUES (1, 'a', 1.0, NULL)", "INSERT"),
    ("DELETE FROM test.client_errors.{t}", "DELETE"),
    ("UPDATE test.client_errors.{t} SET score = 0", "UPDATE"),
    ("CREATE TABLE x AS SELECT 1", "CREATE"),
    ("DROP VIEW test.client_errors.{t}", "DROP"),
    ("  -- a comment first\n insert into test.client_errors.{t} VALUES (1, 'a', 1.0, NULL)", "INSERT"),
    ("COPY (SELECT 1) TO '/tmp/bifrost_copy_refused.csv'", "COPY"),
])
def test_write_statements_are_refused_as_read_only(grpc, unique_table, statement, word):
    DatasetProducer(TableConfig(Stored, "test", "client_errors", unique_table), grpc).shutdown()
    with pytest.raises(QueryPermissionError, match=f"read-only: {word}") as info:
        DatasetClient(grpc).sql(statement.format(t=unique_table))
    assert isinstance(info.value, QueryError) and isinstance(info.value, PermissionError)


def test_refused_file_access_is_a_permission_error(grpc):
    with pytest.raises(QueryPermissionError):
        DatasetClient(grpc).sql("SELECT * FROM read_csv('/etc/passwd')")


def test_bad_sql_stays_a_plain_query_error(grpc):
    with pytest.raises(QueryError) as info:
        DatasetClient(grpc).sql("SELEC 1")
    assert not isinstance(info.value, QueryPermissionError)


def test_address_without_port_uses_50051(server_50051):
    for uri in ["127.0.0.1", "localhost", "http://127.0.0.1"]:
        with DatasetClient(GrpcConfig(server_uri=uri)) as client:
            assert isinstance(client.list_datasets(), list)


@pytest.mark.parametrize("uri", ["127.0.0.1:0", "127.0.0.1:http", "127.0.0.1:99999", "[::1"])
def test_bad_ports_are_refused(uri):
    with pytest.raises(ValueError, match="port|]"):
        DatasetClient(GrpcConfig(server_uri=uri))


def test_closed_client_says_so(grpc):
    client = DatasetClient(grpc)
    result = client.sql("SELECT 1 AS x")
    client.close()
    client.close()  # idempotent
    assert client.closed and "closed" in repr(client)
    with pytest.raises(ClientClosedError, match="closed"):
        client.sql("SELECT 1")
    with pytest.raises(ClientClosedError):
        client.list_datasets()
    assert result.to_arrow().column("x")[0].as_py() == 1  # results stay readable


def test_registration_mismatch_lists_the_differences(grpc, unique_table):
    DatasetProducer(TableConfig(Stored, "test", "client_errors", unique_table), grpc).shutdown()
    with pytest.raises(FingerprintMismatchError) as info:
        DatasetProducer(TableConfig(Changed, "test", "client_errors", unique_table), grpc)
    assert info.value.differences["removed"] == ["score (Float64, required)"]
    assert "name: table Utf8View -> model Int64" in str(info.value)
