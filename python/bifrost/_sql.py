"""Client-side parameter binding for DatasetClient.sql(query, params).

Placeholders ``?`` (positional, in order) and ``$1``, ``$2``... (1-based) are
replaced by SQL literals rendered from the Python values. Quoted strings, quoted
identifiers and comments in the query are skipped, so a ``?`` inside them is left
alone. Strings are rendered as standard SQL literals with ``'`` doubled (DuckDB does
not treat backslash as an escape there), so a value can never end its literal; the
server still accepts exactly one read-only statement."""
from __future__ import annotations

import datetime as _dt
import decimal
import math
import re
from typing import Any, Sequence, Union

__all__ = ["bind_params", "quote_identifier"]


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "'nan'::DOUBLE"
        if math.isinf(value):
            return "'inf'::DOUBLE" if value > 0 else "'-inf'::DOUBLE"
        return repr(value) + "::DOUBLE"
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot bind non-finite Decimal {value!r}")
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("cannot bind a string containing NUL")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "'" + "".join(f"\\x{b:02x}" for b in bytes(value)) + "'::BLOB"
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)  # naive = UTC, as on the write path
        return "TIMESTAMPTZ '" + value.isoformat() + "'"
    if isinstance(value, _dt.date):
        return "DATE '" + value.isoformat() + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if hasattr(value, "value") and isinstance(getattr(value, "value"), (str, int)):  # Enum members
        return _literal(value.value)
    raise TypeError(f"cannot bind a parameter of type {type(value).__name__}")


def bind_params(query: str, params: Union[Sequence[Any], None]) -> str:
    """Returns ``query`` with its placeholders replaced by literals of ``params``."""
    if params is None:
        return query
    if isinstance(params, (str, bytes)) or not isinstance(params, (Sequence, tuple, list)):
        raise TypeError("params must be a sequence (list or tuple) of values")
    values = list(params)
    out = []
    i = 0
    n = len(query)
    next_positional = 0
    used = set()
    while i < n:
        c = query[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if query[j] == c:
                    if j + 1 < n and query[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(query[i : j + 1])
            i = j + 1
        elif c == "$" and _DOLLAR_TAG.match(query, i):
            tag = _DOLLAR_TAG.match(query, i).group(0)
            j = query.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            out.append(query[i:j])
            i = j
        elif c == "-" and query.startswith("--", i):
            j = query.find("\n", i)
            j = n if j < 0 else j
            out.append(query[i:j])
            i = j
        elif c == "/" and query.startswith("/*", i):
            j = query.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(query[i:j])
            i = j
        elif c == "?":
            if next_positional >= len(values):
                raise ValueError(f"query has more '?' placeholders than the {len(values)} params given")
            out.append(_literal(values[next_positional]))
            used.add(next_positional)
            next_positional += 1
            i += 1
        elif c == "$" and i + 1 < n and query[i + 1].isdigit() and (i == 0 or not (query[i - 1].isalnum() or query[i - 1] == "_")):
            j = i + 1
            while j < n and query[j].isdigit():
                j += 1
            index = int(query[i + 1 : j]) - 1
            if not 0 <= index < len(values):
                raise ValueError(f"placeholder ${index + 1} has no matching param ({len(values)} given)")
            out.append(_literal(values[index]))
            used.add(index)
            i = j
        else:
            out.append(c)
            i += 1
    if len(used) != len(values):
        raise ValueError(f"{len(values) - len(used)} of {len(values)} params are not used by the query")
    return "".join(out)
