"""Query parameters bound server-side (DuckDB prepared statements) and the status ->
exception mapping."""
from __future__ import annotations

import datetime as dt
import pytest

from bifrost import _errors
from bifrost._sql import quote_identifier


@pytest.fixture
def client(grpc):
    from bifrost import DatasetClient

    return DatasetClient(grpc)


def one(client, sql, params):
    return client.sql(sql, params).to_arrow().to_pylist()[0]


def test_every_parameter_type_is_bound_server_side(client):
    at = dt.datetime(1955, 7, 1, 12, 30, 45, 123456, tzinfo=dt.timezone.utc)
    row = one(client, "SELECT ? AS i, ? AS f, ? AS s, ? AS b, ? AS d, ? AS t, ? AS n",
              [-(2**63), 1.5, "it's ? $1", True, dt.date(1900, 3, 1), at, None])
    assert row == {"i": -(2**63), "f": 1.5, "s": "it's ? $1", "b": True, "d": dt.date(1900, 3, 1),
                   "t": at, "n": None}
    # naive datetimes are UTC, as on the write path
    assert one(client, "SELECT ? AS t", [dt.datetime(2025, 1, 2)])["t"] == dt.datetime(
        2025, 1, 2, tzinfo=dt.timezone.utc)


def test_numbered_placeholders_and_literals_are_not_placeholders(client):
    row = one(client, "SELECT $2 AS a, $1 AS b, $2 AS c, '?' AS q", ["x", 7])
    assert row == {"a": 7, "b": "x", "c": 7, "q": "?"}


def test_injection_attempts_stay_values(client):
    tricky = "x'; DROP TABLE t; --"
    assert one(client, "SELECT ? AS v, length(?) AS n", [tricky, tricky]) == {"v": tricky, "n": len(tricky)}


def test_param_count_and_type_errors(client):
    from bifrost import QueryError

    with pytest.raises(QueryError, match="placeholder"):
        client.sql("SELECT ?, ?", [1])
    with pytest.raises(QueryError, match="placeholder"):
        client.sql("SELECT ?", [1, 2])
    with pytest.raises(TypeError):
        client.sql("SELECT ?", [object()])
    with pytest.raises(ValueError):
        client.sql("SELECT ?", ["nul\x00"])
    with pytest.raises(ValueError):
        client.sql("SELECT ?", [2**64])
    with pytest.raises(TypeError):
        client.sql("SELECT ?", "not a list")


def test_quote_identifier():
    assert quote_identifier('we"ird') == '"we""ird"'


def test_status_mapping():
    e = _errors.error_from_status("BF_EINVAL", "bad field", None)
    assert type(e) is _errors.SchemaError and e.status == "BF_EINVAL" and str(e) == "bad field"
    assert type(_errors.error_from_status("BF_EINVAL", "m", "query")) is _errors.QueryError
    assert isinstance(_errors.error_from_status("BF_EPERM", "m", "query"), PermissionError)
    assert isinstance(_errors.error_from_status("BF_EPERM", "m", "query"), _errors.QueryError)
    assert type(_errors.error_from_status("BF_EMISMATCH", "m")) is _errors.FingerprintMismatchError
    assert type(_errors.error_from_status("BF_ENOTFOUND", "m")) is _errors.NotFoundError
    assert type(_errors.error_from_status("BF_EUNAVAILABLE", "m")) is _errors.BifrostConnectionError
    assert type(_errors.error_from_status("BF_ETIMEOUT", "m")) is _errors.BifrostTimeoutError
    assert type(_errors.error_from_status("BF_EFULL", "m")) is _errors.QueueFullError
    assert type(_errors.error_from_status("BF_ECLOSED", "m")) is _errors.ProducerClosedError
    assert type(_errors.error_from_status("BF_EINTERNAL", "m")) is _errors.BifrostError
