"""The producer's encoding path without the network: Pydantic records -> C row
builder -> our IPC writer -> pyarrow. Schemas and values are compared with what
pyarrow and Python say they should be, per type and for one model using all."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
from pydantic import BaseModel
import pytest

from bifrost import SchemaError, TableConfig, _core
from test_types_e2e import Everything, make_rows

UTC = dt.timezone.utc
CREATED = int(dt.datetime(2026, 11, 22, 8, 30, tzinfo=UTC).timestamp() * 1_000_000)


def build(model, records) -> pa.Table:
    schema = json.dumps(model.model_json_schema())
    data = _core.build_ipc(schema, [r.model_dump_json() for r in records], CREATED, "batch-1")
    return pa.ipc.open_stream(data).read_all()


def expected_value(value):
    """What a value looks like after Arrow: enums as their string value, datetimes
    in UTC, nested models as dicts."""
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, list):
        return [expected_value(v) for v in value]
    if isinstance(value, BaseModel):
        return {k: expected_value(getattr(value, k)) for k in type(value).model_fields}
    return value


def test_every_type_matches_pyarrow():
    rows = make_rows()
    table = build(Everything, rows)
    cfg = TableConfig(Everything, catalog="c", schema_name="s", table="t")
    # On the wire the batch id (one value per batch) is dictionary-encoded; the
    # table stores it as the string the table's schema names.
    i = cfg.arrow_schema.get_field_index("scouter_batch_id")
    field = cfg.arrow_schema.field(i)
    wire = cfg.arrow_schema.set(i, field.with_type(pa.dictionary(pa.int8(), field.type)))
    assert table.schema.equals(wire), (table.schema, wire)
    assert table.num_rows == len(rows)
    for name in Everything.model_fields:
        got = table.column(name).to_pylist()
        want = [expected_value(getattr(r, name)) for r in rows]
        assert got == want, name
    assert table.column("scouter_batch_id").to_pylist() == ["batch-1"] * len(rows)
    assert set(table.column("scouter_partition_date").to_pylist()) == {dt.date(2026, 11, 22)}
    assert set(table.column("scouter_created_at").to_pylist()) == {dt.datetime(2026, 11, 22, 8, 30, tzinfo=UTC)}


def test_naive_datetimes_are_utc():
    from pydantic import BaseModel

    class M(BaseModel):
        at: dt.datetime

    table = build(M, [M(at=dt.datetime(1950, 5, 17, 3, 4, 5, 6))])
    assert table.column("at").to_pylist() == [dt.datetime(1950, 5, 17, 3, 4, 5, 6, tzinfo=UTC)]


def test_empty_batch_keeps_schema():
    table = build(Everything, [])
    assert table.num_rows == 0
    assert table.schema.field("owner").type == TableConfig(Everything, "c", "s", "t").arrow_schema.field("owner").type


def test_bad_record_names_the_field():
    schema = json.dumps(Everything.model_json_schema())
    bad = json.loads(make_rows()[0].model_dump_json())
    bad["tier"] = "platinum"
    with pytest.raises(SchemaError, match="tier"):
        _core.build_ipc(schema, [json.dumps(bad)], CREATED, "b")
