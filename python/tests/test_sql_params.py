"""Client-side parameter binding (bifrost._sql) and the status -> exception mapping."""
from __future__ import annotations

import datetime as dt
import decimal

import pytest

from bifrost import _errors
from bifrost._sql import bind_params, quote_identifier


def test_positional_and_numbered_placeholders():
    assert bind_params("SELECT ?, ?", [1, "a"]) == "SELECT 1, 'a'"
    assert bind_params("SELECT $2, $1, $2", [True, None]) == "SELECT NULL, TRUE, NULL"
    assert bind_params("SELECT 1", None) == "SELECT 1"


def test_literals():
    assert bind_params("?", ["it's"]) == "'it''s'"
    assert bind_params("?", [1.5]) == "1.5::DOUBLE"
    assert bind_params("?", [float("nan")]) == "'nan'::DOUBLE"
    assert bind_params("?", [decimal.Decimal("1.10")]) == "1.10"
    assert bind_params("?", [dt.date(2025, 1, 2)]) == "DATE '2025-01-02'"
    assert bind_params("?", [dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)]) == \
        "TIMESTAMPTZ '2025-01-02T03:04:05+00:00'"
    assert bind_params("?", [dt.datetime(2025, 1, 2)]) == "TIMESTAMPTZ '2025-01-02T00:00:00+00:00'"
    assert bind_params("?", [[1, "x"]]) == "[1, 'x']"
    assert bind_params("?", [b"\x00\xff"]) == "'\\x00\\xff'::BLOB"


def test_placeholders_inside_strings_identifiers_and_comments_are_left_alone():
    sql = "SELECT '?', \"col?\", $$ ? $1 $$, $q$ ? $q$ FROM t -- what?\n/* $1 ? */ WHERE a = ? AND b = 'it''s ?'"
    assert bind_params(sql, [5]) == sql.replace("a = ?", "a = 5")


def test_param_count_errors():
    with pytest.raises(ValueError):
        bind_params("SELECT ?, ?", [1])
    with pytest.raises(ValueError):
        bind_params("SELECT ?", [1, 2])
    with pytest.raises(ValueError):
        bind_params("SELECT $3", [1, 2, 3][:2])
    with pytest.raises(TypeError):
        bind_params("SELECT ?", [object()])
    with pytest.raises(ValueError):
        bind_params("SELECT ?", ["nul\x00"])


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
