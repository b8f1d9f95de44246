"""SQL helpers for the client: identifier quoting, and the encoding of query
parameters for server-side binding.

DatasetClient.sql(query, params) never splices values into the SQL text: each value
travels typed in the request and the server binds it to the statement's ``?`` /
``$n`` placeholders through a DuckDB prepared statement. ``encode_params`` turns
Python values into (type_code, value) pairs whose codes match the C enum
``bf_param_type_t`` (include/bifrost/query_param.h)."""
from __future__ import annotations

import datetime as _dt
import enum
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ["encode_params", "quote_identifier"]

PARAM_NULL, PARAM_INT64, PARAM_DOUBLE, PARAM_STRING, PARAM_BOOL, PARAM_DATE, PARAM_TIMESTAMP = range(7)

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_INT64 = (-(2**63), 2**63 - 1)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _encode(value: Any, position: int) -> Tuple[int, Any]:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return PARAM_NULL, None
    if isinstance(value, bool):
        return PARAM_BOOL, value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"query parameter {position} ({value}) does not fit in a 64-bit integer")
        return PARAM_INT64, value
    if isinstance(value, float):
        return PARAM_DOUBLE, value
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"query parameter {position} contains a NUL character")
        return PARAM_STRING, value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)  # naive = UTC, as on the write path
        delta = value - _EPOCH
        return PARAM_TIMESTAMP, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, _dt.date):
        return PARAM_DATE, (value - _EPOCH_DATE).days
    raise TypeError(
        f"query parameter {position} has type {type(value).__name__}; supported: None, bool, int, "
        "float, str, datetime, date and str/int enums")


def encode_params(params: Optional[Sequence[Any]]) -> Optional[List[Tuple[int, Any]]]:
    """Typed (code, value) pairs for the server, or None when there are no params."""
    if params is None:
        return None
    if isinstance(params, (str, bytes)) or not isinstance(params, (list, tuple)):
        raise TypeError("params must be a list or tuple of values")
    return [_encode(v, i + 1) for i, v in enumerate(params)]
