"""Columns whose Python type has no Delta Lake type travel and are stored as Int64
microseconds (``datetime.time``: since midnight; ``datetime.timedelta``: signed).
This module converts between that storage form and the logical Arrow types
(Time64(us), Duration(us)) on the client: ``insert_arrow()`` takes either, and
``read()`` casts query results back before pydantic validates them, so models get
``time`` / ``timedelta`` values (and dicts for ``Dict[str, T]`` columns)."""
from __future__ import annotations

import functools
from typing import Any, Dict, List

from . import _core

_DAY_US = 86_400_000_000


@functools.lru_cache(maxsize=256)
def logical_schema(json_schema: str) -> Any:
    """The table's pyarrow schema with time / timedelta columns as Time64(us) /
    Duration(us) (cached per JSON schema text)."""
    import pyarrow as pa

    return pa.ipc.open_stream(_core.arrow_schema_logical_ipc(json_schema)).schema


@functools.lru_cache(maxsize=256)
def int_enum_columns(json_schema: str) -> Dict[str, frozenset]:
    """{column: allowed values} of the top-level IntEnum / int Literal columns (the
    values insert() checks in C; insert_arrow() checks them here)."""
    import json

    root = json.loads(json_schema)
    defs = root.get("$defs", {})
    out: Dict[str, frozenset] = {}
    for name, node in (root.get("properties") or {}).items():
        for _ in range(8):  # $ref and Optional[...] wrappers
            if isinstance(node, dict) and "$ref" in node:
                node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
            elif isinstance(node, dict) and isinstance(node.get("anyOf"), list):
                variants = [v for v in node["anyOf"] if not (isinstance(v, dict) and v.get("type") == "null")]
                if len(variants) != 1:
                    break
                node = variants[0]
            else:
                break
        if not isinstance(node, dict):
            continue
        values = node.get("enum", [node["const"]] if "const" in node else None)
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[name] = frozenset(values)
    return out


def check_int_enum(name: str, column: Any, allowed: frozenset) -> None:
    """insert_arrow(): every non-null value of an integer enum column is one of its values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    known = pc.is_in(column, value_set=pa.array(sorted(allowed), pa.int64()))
    unknown = pc.and_(pc.invert(known), pc.is_valid(column))
    if pc.any(unknown).as_py():
        from ._errors import SchemaError

        first = column.filter(unknown)[0].as_py()
        raise SchemaError(f"insert_arrow(): column '{name}' has {first}, not one of its enum values")


def _retype(stored: Any, logical: Any) -> Any:
    """stored with the Int64 leaves that logical calls time / duration replaced by them
    (structs matched by field name, lists and maps by their items)."""
    import pyarrow as pa

    t = pa.types
    if (t.is_time(logical) or t.is_duration(logical)) and t.is_integer(stored):
        return logical
    if t.is_struct(stored) and t.is_struct(logical):
        fields = []
        for i in range(stored.num_fields):
            f = stored.field(i)
            j = logical.get_field_index(f.name)
            fields.append(f.with_type(_retype(f.type, logical.field(j).type)) if j >= 0 else f)
        return pa.struct(fields)
    if t.is_map(stored) and t.is_map(logical):
        item = _retype(stored.item_type, logical.item_type)
        return stored if item == stored.item_type else pa.map_(stored.key_field, stored.item_field.with_type(item))
    if (t.is_list(stored) or t.is_large_list(stored)) and (t.is_list(logical) or t.is_large_list(logical)):
        item = _retype(stored.value_type, logical.value_type)
        if item == stored.value_type:
            return stored
        field = stored.value_field.with_type(item)
        return pa.list_(field) if t.is_list(stored) else pa.large_list(field)
    return stored


def _has_map(dtype: Any) -> bool:
    import pyarrow as pa

    t = pa.types
    if t.is_map(dtype):
        return True
    if t.is_struct(dtype):
        return any(_has_map(dtype.field(i).type) for i in range(dtype.num_fields))
    if t.is_list(dtype) or t.is_large_list(dtype):
        return _has_map(dtype.value_type)
    return False


def _maps_to_dicts(value: Any, dtype: Any) -> Any:
    """to_pylist() of older pyarrow gives a map as a list of (key, value) pairs;
    models want a dict (guided by the Arrow type, so an empty map becomes {})."""
    import pyarrow as pa

    t = pa.types
    if value is None:
        return None
    if t.is_map(dtype):
        return {k: _maps_to_dicts(v, dtype.item_type) for k, v in value}
    if t.is_struct(dtype):
        return {f.name: _maps_to_dicts(value.get(f.name), f.type) for f in (dtype.field(i) for i in range(dtype.num_fields))}
    if t.is_list(dtype) or t.is_large_list(dtype):
        return [_maps_to_dicts(v, dtype.value_type) for v in value]
    return value


def model_rows(table: Any, json_schema: str) -> List[Dict[str, Any]]:
    """Rows of a query result as dicts ready for model_validate: time / timedelta
    columns back to time / timedelta, maps as dicts."""
    logical = logical_schema(json_schema)
    columns, names, has_map = [], [], False
    changed = False
    for name, column in zip(table.column_names, table.columns):
        i = logical.get_field_index(name)
        if i >= 0:
            target = _retype(column.type, logical.field(i).type)
            if target != column.type:
                column = column.cast(target)
                changed = True
        has_map = has_map or _has_map(column.type)
        columns.append(column)
        names.append(name)
    if changed:
        import pyarrow as pa

        table = pa.Table.from_arrays(columns, names=names)
    if not has_map:
        return table.to_pylist()
    try:
        return table.to_pylist(maps_as_pydicts="strict")
    except TypeError:  # pyarrow without maps_as_pydicts
        types = {f.name: f.type for f in table.schema}
        return [{k: _maps_to_dicts(v, types[k]) for k, v in row.items()} for row in table.to_pylist()]


def to_storage(name: str, column: Any, stored: Any, logical: Any, convert: Any) -> Any:
    """insert_arrow(): a column of a table whose type has time / timedelta parts
    converted to the stored Int64 microseconds (a Time64 or Duration column of any
    unit is first cast to microseconds, refusing lost precision; an integer column is
    taken as microseconds already). Times of day must lie in [0, 24 h)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_time(logical) or pa.types.is_duration(logical):
        if pa.types.is_time(logical) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                                          or pa.types.is_string_view(column.type)):
            # "HH:MM:SS[.ffffff]" text: parsed as that time on 1970-01-01 (exact, ISO 8601)
            text = pc.binary_join_element_wise("1970-01-01T", column.cast(pa.string()), "")
            column = text.cast(pa.timestamp("us")).cast(pa.int64())
        elif not pa.types.is_integer(column.type):
            column = convert(column, logical)
        column = column.cast(stored)
        if pa.types.is_time(logical) and len(column) > column.null_count:
            bounds = pc.min_max(column)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if low < 0 or high >= _DAY_US:
                from ._errors import SchemaError

                raise SchemaError(f"insert_arrow(): column '{name}' has times of day outside "
                                  "[00:00, 24:00) (as microseconds since midnight)")
        return column
    return convert(convert(column, logical), stored)
