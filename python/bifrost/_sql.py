"""SQL helpers for the client: identifier quoting, and the encoding of query
parameters for server-side binding.

DatasetClient.sql(query, params) never splices values into the SQL text: each value
travels typed in the request and the server binds it to the statement's ``?`` /
``$n`` placeholders through a DuckDB prepared statement. ``encode_params`` turns
Python values into (type_code, value) pairs whose codes match the C enum
``bf_param_type_t`` (include/bifrost/query_param.h).

``check_condition`` guards ``DatasetClient.read(where=...)``: the condition is pasted
inside ``WHERE (...)``, so a small lexer makes sure it cannot close that parenthesis,
comment out the rest of the statement or start another one."""
from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import enum
import re
import uuid as _uuid
from typing import Any, List, Optional, Sequence, Tuple

from ._errors import InvalidConditionError

__all__ = ["check_condition", "encode_params", "quote_identifier"]

(PARAM_NULL, PARAM_INT64, PARAM_DOUBLE, PARAM_STRING, PARAM_BOOL, PARAM_DATE, PARAM_TIMESTAMP,
 PARAM_BLOB, PARAM_DECIMAL, PARAM_LIST) = range(10)

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_INT64 = (-(2**63), 2**63 - 1)


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(text: str, start: int, quote: str, backslash: bool, what: str) -> int:
    """Index just past the literal opened at ``start`` (the opening quote); a doubled
    quote is an escaped quote, and so is a backslash escape when ``backslash``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise InvalidConditionError(f"where= condition has an unterminated {what} starting at offset {start}")


def check_condition(condition: str) -> str:
    """Returns ``condition`` stripped if it is safe to paste into ``WHERE (...)``.

    Raises InvalidConditionError (a QueryError and a ValueError) when the condition
    is empty, contains a NUL character, a comment (``--``, ``/*``) or a ``;``
    outside string literals and quoted identifiers, or has parentheses that are
    unbalanced or close one it did not open. String literals (with ``''`` escapes),
    ``E'...'`` strings (backslash escapes), ``"quoted"`` identifiers and dollar
    quotes (``$$...$$``, ``$tag$...$tag$``) are skipped as units, so a ``)`` or
    ``--`` inside them is fine."""
    if not isinstance(condition, str):
        raise TypeError(f"where must be an SQL condition string, not {type(condition).__name__}")
    if "\x00" in condition:
        raise InvalidConditionError("where= condition contains a NUL character")
    text = condition.strip()
    if not text:
        raise InvalidConditionError("where= condition is empty")
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            backslash = i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
            i = _skip_quoted(text, i, "'", backslash, "string literal")
        elif ch == '"':
            i = _skip_quoted(text, i, '"', False, "quoted identifier")
        elif ch == "$":
            tag = _DOLLAR_TAG.match(text, i)
            if tag is None or (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                i += 1  # a $1 placeholder or part of a name
                continue
            end = text.find(tag.group(0), tag.end())
            if end < 0:
                raise InvalidConditionError(
                    f"where= condition has an unterminated dollar-quoted string starting at offset {i}")
            i = end + len(tag.group(0))
        elif text.startswith("--", i) or text.startswith("/*", i):
            raise InvalidConditionError(
                f"where= condition contains a comment ({text[i:i + 2]!r} at offset {i}); comments are not allowed")
        elif ch == ";":
            raise InvalidConditionError(
                f"where= condition contains ';' at offset {i}; it must be a single expression")
        elif ch == "(":
            depth += 1
            i += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InvalidConditionError(
                    f"where= condition closes a parenthesis it did not open (offset {i}); "
                    "it must be a single expression")
            i += 1
        else:
            i += 1
    if depth:
        raise InvalidConditionError(f"where= condition leaves {depth} parenthesis(es) open")
    return text


_US = _dt.timedelta(microseconds=1)


def _encode(value: Any, position: int, in_list: bool = False) -> Tuple[int, Any]:
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
    if isinstance(value, _uuid.UUID):  # UUID columns hold the canonical text
        return PARAM_STRING, str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return PARAM_BLOB, bytes(value)
    if isinstance(value, _decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"query parameter {position} ({value}) is not a finite decimal")
        text = format(value, "f")
        if len(text.lstrip("-").replace(".", "").lstrip("0")) > 38:
            raise ValueError(f"query parameter {position} ({value}) has more than 38 digits")
        return PARAM_DECIMAL, text
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)  # naive = UTC, as on the write path
        delta = value - _EPOCH
        return PARAM_TIMESTAMP, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, _dt.date):
        return PARAM_DATE, (value - _EPOCH_DATE).days
    if isinstance(value, _dt.time):  # time columns hold microseconds since midnight
        if value.utcoffset():
            raise ValueError(f"query parameter {position} is a time with a non-UTC offset")
        return PARAM_INT64, ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    if isinstance(value, _dt.timedelta):  # timedelta columns hold microseconds
        return _encode(value // _US, position, in_list)
    if isinstance(value, (list, tuple, set, frozenset)) and not in_list:
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return PARAM_LIST, [_encode(v, position, True) for v in items]
    if isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(f"query parameter {position}: a list inside a list is not supported")
    raise TypeError(
        f"query parameter {position} has type {type(value).__name__}; supported: None, bool, int, "
        "float, str, bytes, Decimal, UUID, datetime, date, time, timedelta, str/int enums and lists "
        "of these (for IN ? / = ANY(?))")


def encode_params(params: Optional[Sequence[Any]]) -> Optional[List[Tuple[int, Any]]]:
    """Typed (code, value) pairs for the server, or None when there are no params."""
    if params is None:
        return None
    if isinstance(params, (str, bytes)) or not isinstance(params, (list, tuple)):
        raise TypeError("params must be a list or tuple of values")
    return [_encode(v, i + 1) for i, v in enumerate(params)]
