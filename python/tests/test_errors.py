"""Error behaviour end to end: fingerprint mismatches, missing tables, forbidden
SQL, unreachable servers; each raises the documented exception class."""
from __future__ import annotations

from typing import Optional

import pytest
from pydantic import BaseModel

from bifrost import (
    BifrostConnectionError,
    BifrostError,
    DatasetClient,
    DatasetProducer,
    FingerprintMismatchError,
    GrpcConfig,
    NotFoundError,
    QueryError,
    TableConfig,
    WriteConfig,
)


class V1(BaseModel):
    id: str
    value: float


class V2(BaseModel):
    id: str
    value: float
    extra: Optional[int] = None


def test_fingerprint_mismatch_on_register_names_both(grpc, unique_table):
    v1 = TableConfig(V1, "test", "errors", unique_table)
    v2 = TableConfig(V2, "test", "errors", unique_table)
    DatasetProducer(v1, grpc).shutdown()
    with pytest.raises(FingerprintMismatchError) as info:
        DatasetProducer(v2, grpc)
    assert isinstance(info.value, ValueError)
    assert v1.fingerprint_str in str(info.value) and v2.fingerprint_str in str(info.value)


def test_fingerprint_mismatch_on_client_names_both(grpc, unique_table):
    v1 = TableConfig(V1, "test", "errors", unique_table)
    v2 = TableConfig(V2, "test", "errors", unique_table)
    DatasetProducer(v1, grpc).shutdown()
    DatasetClient(grpc, v1)  # same fingerprint: fine
    with pytest.raises(FingerprintMismatchError) as info:
        DatasetClient(grpc, v2)
    assert v1.fingerprint_str in str(info.value) and v2.fingerprint_str in str(info.value)


def test_missing_table(grpc, unique_table):
    cfg = TableConfig(V1, "test", "errors", unique_table)
    with pytest.raises(NotFoundError) as info:
        DatasetClient(grpc, cfg)
    assert isinstance(info.value, LookupError)
    with pytest.raises(NotFoundError):
        DatasetClient(grpc).describe_dataset("test", "errors", unique_table)


@pytest.mark.parametrize("statement", [
    "DROP TABLE test.errors.x",
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO test.errors.x VALUES (1)",
    "DELETE FROM test.errors.x",
    "COPY (SELECT 42) TO '/tmp/bifrost_escape.csv'",
    "ATTACH '/tmp/bifrost_escape.duckdb' AS esc",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "PRAGMA enable_profiling",
    "SELECT 1; SELECT 2",
    "SELECT * FROM read_csv('/etc/passwd')",
])
def test_forbidden_statements_are_refused(grpc, statement):
    import os

    with pytest.raises(QueryError):
        DatasetClient(grpc).sql(statement)
    assert not os.path.exists("/tmp/bifrost_escape.csv")
    assert not os.path.exists("/tmp/bifrost_escape.duckdb")


def test_bad_sql_and_unknown_table_are_query_errors(grpc):
    client = DatasetClient(grpc)
    with pytest.raises(QueryError):
        client.sql("SELEC 1")
    with pytest.raises(QueryError):
        client.sql("SELECT * FROM no_such.schema_here.table_x")


def test_unreachable_server():
    transport = GrpcConfig(server_uri="127.0.0.1:1")
    cfg = TableConfig(V1, "test", "errors", "unreachable")
    with pytest.raises(BifrostConnectionError) as info:
        DatasetProducer(cfg, transport, WriteConfig())
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(BifrostConnectionError):
        DatasetClient(transport).list_datasets()


def test_exceptions_share_the_base_and_builtins():
    import bifrost

    for cls, builtin in [
        (bifrost.SchemaError, ValueError),
        (bifrost.FingerprintMismatchError, ValueError),
        (bifrost.NotFoundError, LookupError),
        (bifrost.QueryError, RuntimeError),
        (bifrost.BifrostTimeoutError, TimeoutError),
        (bifrost.BifrostConnectionError, ConnectionError),
        (bifrost.PermissionDeniedError, PermissionError),
        (bifrost.QueueFullError, RuntimeError),
    ]:
        assert issubclass(cls, BifrostError) and issubclass(cls, builtin)
