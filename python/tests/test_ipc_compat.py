"""The C IPC codec against pyarrow: streams written by pyarrow decode with
bf_ipc_reader and re-encode with bf_ipc_writer into streams pyarrow reads back
equal (values, types, nullability, dictionaries, zero-row batches)."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from bifrost import _core


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def roundtrip(table: pa.Table) -> pa.Table:
    out = _core.ipc_roundtrip(ipc_bytes(table))
    return pa.ipc.open_stream(out).read_all()


UTC = dt.timezone.utc
N = 1000  # enough rows for multi-byte validity bitmaps and offsets past 2**16 bytes


def nullable(values, every=3):
    return [None if i % every == 1 else v for i, v in enumerate(values)]


COLUMNS = {
    "int8": pa.array(nullable([i % 127 - 60 for i in range(N)]), pa.int8()),
    "int16": pa.array([i * 31 - 5000 for i in range(N)], pa.int16()),
    "int32": pa.array(nullable([i * 100_003 for i in range(N)]), pa.int32()),
    "int64": pa.array([i * 10**12 - 5 for i in range(N)], pa.int64()),
    "uint8": pa.array([i % 256 for i in range(N)], pa.uint8()),
    "uint64": pa.array(nullable([2**64 - 1 - i for i in range(N)]), pa.uint64()),
    "float32": pa.array([i / 8 for i in range(N)], pa.float32()),
    "float64": pa.array(nullable([i * 1.5e-3 for i in range(N)], every=4), pa.float64()),
    "bool": pa.array(nullable([i % 5 == 0 for i in range(N)], every=7), pa.bool_()),
    "utf8": pa.array(nullable([f"value-{i}-" + "é" * (i % 4) for i in range(N)]), pa.string()),
    "string_view": pa.array(nullable([("long string value number %d " % i) * (i % 3) for i in range(N)]), pa.string_view()),
    "large_string": pa.array(nullable([f"L{i}" * 50 for i in range(N)]), pa.large_string()),
    "binary": pa.array(nullable([bytes([i % 256]) * (i % 9) for i in range(N)]), pa.binary()),
    "date32": pa.array(nullable([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(N)]), pa.date32()),
    "ts_us_utc": pa.array(
        nullable([dt.datetime(2024, 5, 1, tzinfo=UTC) + dt.timedelta(microseconds=i * 1_234_567) for i in range(N)]),
        pa.timestamp("us", tz="UTC"),
    ),
    "list_int": pa.array(nullable([list(range(i % 5)) for i in range(N)]), pa.list_(pa.int64())),
    "list_str": pa.array([[f"a{i}", None, "b"][: i % 4] for i in range(N)], pa.list_(pa.string())),
    "struct": pa.array(
        nullable([{"x": i, "name": f"n{i}", "inner": {"flag": i % 2 == 0}} for i in range(N)]),
        pa.struct([("x", pa.int64()), ("name", pa.string()), ("inner", pa.struct([("flag", pa.bool_())]))]),
    ),
    "dictionary": pa.array(nullable([["red", "green", "blue"][i % 3] for i in range(N)])).dictionary_encode().cast(
        pa.dictionary(pa.int16(), pa.string())
    ),
    "all_null": pa.nulls(N, pa.int64()),
}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_single_column_roundtrip(name):
    table = pa.table({name: COLUMNS[name]})
    result = roundtrip(table)
    assert result.schema == table.schema
    assert result.equals(table)


def test_all_columns_with_non_nullable_fields_and_metadata_free_schema():
    schema = pa.schema([pa.field(name, arr.type, nullable=(arr.null_count > 0)) for name, arr in COLUMNS.items()])
    table = pa.table(list(COLUMNS.values()), schema=schema)
    result = roundtrip(table)
    assert result.schema == schema
    assert [f.nullable for f in result.schema] == [f.nullable for f in schema]
    assert result.equals(table)


def test_several_batches_and_sliced_input():
    table = pa.table({"i": COLUMNS["int64"], "s": COLUMNS["utf8"], "l": COLUMNS["list_int"]})
    batches = table.slice(3, 500).to_batches(max_chunksize=97)
    sliced = pa.Table.from_batches(batches)
    result = roundtrip(sliced)
    assert result.num_rows == 500
    assert result.equals(sliced)


def test_zero_rows_keeps_schema():
    table = pa.table({name: arr.slice(0, 0) for name, arr in COLUMNS.items()})
    result = roundtrip(table)
    assert result.num_rows == 0
    assert result.schema == table.schema


def test_schema_only_stream():
    schema = pa.schema([("a", pa.int64()), ("b", pa.string_view())])
    sink = pa.BufferOutputStream()
    pa.ipc.new_stream(sink, schema).close()
    result = pa.ipc.open_stream(_core.ipc_roundtrip(sink.getvalue().to_pybytes())).read_all()
    assert result.schema == schema and result.num_rows == 0


@pytest.mark.parametrize("cut", ["garbage", 4, 8, 17, "half", "minus9"])
def test_truncated_or_corrupt_stream_is_an_error_not_a_crash(cut):
    from bifrost import BifrostError

    data = ipc_bytes(pa.table({"s": COLUMNS["utf8"]}))
    if cut == "garbage":
        data = b"\x00garbage"
    elif cut == "half":
        data = data[: len(data) // 2]
    elif cut == "minus9":
        data = data[:-9]  # end-of-stream marker and one byte of the last body gone
    else:
        data = data[:cut]
    with pytest.raises(BifrostError):
        _core.ipc_roundtrip(data)
