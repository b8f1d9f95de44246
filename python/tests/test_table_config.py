"""TableConfig: type mapping strings, system columns, fingerprint rules (docs/architecture.md)
(checked against an independent Python implementation), validation errors."""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from enum import Enum
from typing import Any, Dict, List, Literal, Optional, Union

import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import SchemaError, TableConfig

TS = 'Timestamp(Microsecond, Some("UTC"))'
SYSTEM = {
    "scouter_created_at": {"arrow_type": TS, "nullable": False},
    "scouter_partition_date": {"arrow_type": "Date32", "nullable": False},
    "scouter_batch_id": {"arrow_type": "Utf8", "nullable": False},
}


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str
    zip_code: Optional[str] = None


class Everything(BaseModel):
    name: str
    count: int
    score: float
    ok: bool
    at: datetime
    day: date
    label: Optional[str] = None
    ints: List[int]
    maybe_floats: List[Optional[float]]
    color: Color
    mode: Literal["a", "b"]
    address: Address
    history: List[Address]


def test_parse_schema_type_strings_and_system_columns():
    parsed = TableConfig.parse_schema(Everything.model_json_schema())
    expected = {
        "name": {"arrow_type": "Utf8View", "nullable": False},
        "count": {"arrow_type": "Int64", "nullable": False},
        "score": {"arrow_type": "Float64", "nullable": False},
        "ok": {"arrow_type": "Boolean", "nullable": False},
        "at": {"arrow_type": TS, "nullable": False},
        "day": {"arrow_type": "Date32", "nullable": False},
        "label": {"arrow_type": "Utf8View", "nullable": True},
        "ints": {"arrow_type": "List(Int64)", "nullable": False},
        "maybe_floats": {"arrow_type": "List(Float64)", "nullable": False},
        "color": {"arrow_type": "Dictionary(Int16, Utf8)", "nullable": False},
        "mode": {"arrow_type": "Dictionary(Int16, Utf8)", "nullable": False},
        "address": {"arrow_type": "Struct(street: Utf8View, city: Utf8View, zip_code: Utf8View)", "nullable": False},
        "history": {
            "arrow_type": "List(Struct(street: Utf8View, city: Utf8View, zip_code: Utf8View))",
            "nullable": False,
        },
        **SYSTEM,
    }
    assert parsed == expected
    assert list(parsed) == list(expected)  # model order, then the system columns


def test_documented_example_output():
    class MyModel(BaseModel):
        user_id: str
        prediction: float
        label: Optional[str] = None

    assert TableConfig.parse_schema(MyModel.model_json_schema()) == {
        "user_id": {"arrow_type": "Utf8View", "nullable": False},
        "prediction": {"arrow_type": "Float64", "nullable": False},
        "label": {"arrow_type": "Utf8View", "nullable": True},
        **SYSTEM,
    }


# --- an independent implementation of the documented fingerprint -----------------------

def _entry(name: str, info: dict, defs: dict) -> str:
    return f"{name}:{_type(info, defs)}:{'true' if _nullable(info) else 'false'}"


def _nullable(info: dict) -> bool:
    return "anyOf" in info and any(v.get("type") == "null" for v in info["anyOf"])


def _strip(info: dict, defs: dict) -> dict:
    if "anyOf" in info:
        info = next(v for v in info["anyOf"] if v.get("type") != "null")
    if "$ref" in info:
        info = defs[info["$ref"].split("/")[-1]]
    return info


def _type(info: dict, defs: dict) -> str:
    info = _strip(info, defs)
    if "enum" in info:
        return "Dictionary(Int16, Utf8)"
    if "const" in info:
        return "Dictionary(Int16, Utf8)"
    t = info.get("type")
    if t == "object":
        children = sorted(_entry(n, i, defs) for n, i in info["properties"].items())
        return "Struct(" + ",".join(children) + ")"
    if t == "array":
        item = info["items"]
        return f"List(item:{_type(item, defs)}:{'true' if _nullable(item) else 'false'})"
    if t == "string":
        return {"date-time": TS, "date": "Date32"}.get(info.get("format"), "Utf8View")
    return {"integer": "Int64", "number": "Float64", "boolean": "Boolean"}[t]


def reference_fingerprint(model) -> str:
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    entries = [_entry(n, i, defs) for n, i in schema["properties"].items()]
    entries += [f"scouter_created_at:{TS}:false", "scouter_partition_date:Date32:false", "scouter_batch_id:Utf8:false"]
    return hashlib.sha256("|".join(sorted(entries)).encode()).hexdigest()[:32]


def test_fingerprint_matches_the_specified_algorithm():
    class Flat(BaseModel):
        user_id: str
        score: float
        n: Optional[int] = None
        at: datetime

    class Nested(BaseModel):
        tags: List[str]
        maybe: List[Optional[int]]
        address: Address
        color: Color
        history: Optional[List[Address]] = None

    for model in (Flat, Nested, Everything):
        fp = TableConfig.compute_fingerprint(model.model_json_schema())
        assert fp == reference_fingerprint(model), model.__name__
        assert len(fp) == 32 and all(c in "0123456789abcdef" for c in fp)


def test_fingerprint_is_order_independent_and_change_sensitive():
    class A(BaseModel):
        x: int
        y: str

    class Reordered(BaseModel):
        y: str
        x: int

    class Added(BaseModel):
        x: int
        y: str
        z: float

    class Removed(BaseModel):
        x: int

    class Retyped(BaseModel):
        x: float
        y: str

    class Nullable(BaseModel):
        x: Optional[int] = None
        y: str

    fp = TableConfig.compute_fingerprint(A.model_json_schema())
    assert fp == TableConfig.compute_fingerprint(A.model_json_schema())
    assert fp == TableConfig.compute_fingerprint(Reordered.model_json_schema())
    others = {TableConfig.compute_fingerprint(m.model_json_schema()) for m in (Added, Removed, Retyped, Nullable)}
    assert fp not in others and len(others) == 4


def test_table_config_properties():
    cfg = TableConfig(model=Everything, catalog="production", schema_name="ml", table="preds",
                      partition_columns=["name", "color"])
    assert cfg.catalog == "production"
    assert cfg.schema_name == "ml"
    assert cfg.table == "preds"
    assert cfg.partition_columns == ["name", "color"]
    assert cfg.fqn == "production.ml.preds"
    assert cfg.model is Everything
    assert cfg.fingerprint_str == TableConfig.compute_fingerprint(Everything.model_json_schema())
    assert TableConfig(Everything, "c", "s", "t").partition_columns == []


def test_arrow_schema():
    cfg = TableConfig(model=Everything, catalog="c", schema_name="s", table="t")
    schema = cfg.arrow_schema
    assert isinstance(schema, pa.Schema)
    address = pa.struct([
        pa.field("street", pa.string_view(), nullable=False),
        pa.field("city", pa.string_view(), nullable=False),
        pa.field("zip_code", pa.string_view(), nullable=True),
    ])
    expected = [
        ("name", pa.string_view(), False),
        ("count", pa.int64(), False),
        ("score", pa.float64(), False),
        ("ok", pa.bool_(), False),
        ("at", pa.timestamp("us", tz="UTC"), False),
        ("day", pa.date32(), False),
        ("label", pa.string_view(), True),
        ("ints", pa.list_(pa.field("item", pa.int64(), nullable=False)), False),
        ("maybe_floats", pa.list_(pa.field("item", pa.float64(), nullable=True)), False),
        ("color", pa.dictionary(pa.int16(), pa.string()), False),
        ("mode", pa.dictionary(pa.int16(), pa.string()), False),
        ("address", address, False),
        ("history", pa.list_(pa.field("item", address, nullable=False)), False),
        ("scouter_created_at", pa.timestamp("us", tz="UTC"), False),
        ("scouter_partition_date", pa.date32(), False),
        ("scouter_batch_id", pa.string(), False),
    ]
    assert [(f.name, f.type, f.nullable) for f in schema] == expected


class Simple(BaseModel):
    user_id: str
    n: int
    score: float
    day: date
    color: Color
    ok: bool


@pytest.mark.parametrize("what", ["catalog", "schema_name", "table"])
@pytest.mark.parametrize("bad", ["", "a/b", "..", "a.b", "has space", 'quo"te', "it's", "1abc", "../../etc", "x" * 129, "a\x00b"])
def test_bad_namespace_is_value_error_naming_the_part(what, bad):
    kwargs = {"catalog": "c", "schema_name": "s", "table": "t", what: bad}
    with pytest.raises(ValueError) as info:
        TableConfig(model=Simple, **kwargs)
    assert what in str(info.value)
    assert isinstance(info.value, SchemaError)


def test_good_namespaces():
    cfg = TableConfig(model=Simple, catalog="_Prod-1", schema_name="ml_v2", table="x" * 128)
    assert cfg.fqn == "_Prod-1.ml_v2." + "x" * 128


@pytest.mark.parametrize("column", ["user_id", "n", "day", "color", "ok"])
def test_scalar_partition_columns_allowed(column):
    assert TableConfig(Simple, "c", "s", "t", partition_columns=[column]).partition_columns == [column]


@pytest.mark.parametrize("columns, needle", [
    (["missing"], "missing"),
    (["score"], "score"),                    # float
    (["scouter_partition_date"], "scouter_partition_date"),  # system column, already the first partition
])
def test_bad_partition_columns(columns, needle):
    with pytest.raises(ValueError, match=needle):
        TableConfig(Simple, "c", "s", "t", partition_columns=columns)


def test_list_and_struct_partition_columns_rejected():
    with pytest.raises(ValueError, match="ints"):
        TableConfig(Everything, "c", "s", "t", partition_columns=["ints"])
    with pytest.raises(ValueError, match="address"):
        TableConfig(Everything, "c", "s", "t", partition_columns=["address"])


def test_system_column_name_collision():
    class Clash(BaseModel):
        scouter_batch_id: str

    with pytest.raises(ValueError, match="scouter_batch_id"):
        TableConfig(Clash, "c", "s", "t")


def test_unsupported_field_types_name_the_field():
    class FreeDict(BaseModel):  # Dict[str, int] is a map; values without a type are not
        ok: int
        attributes: Dict[str, Any]

    class TwoVariants(BaseModel):
        either: Union[int, str]

    with pytest.raises(ValueError, match="attributes"):
        TableConfig(FreeDict, "c", "s", "t")
    with pytest.raises(ValueError, match="either"):
        TableConfig(TwoVariants, "c", "s", "t")


def test_nesting_depth_limit():
    def chain(depth):
        model = type("L0", (BaseModel,), {"__annotations__": {"leaf": int}})
        for i in range(1, depth):
            model = type(f"L{i}", (BaseModel,), {"__annotations__": {"child": model}})
        return model

    TableConfig(chain(30), "c", "s", "t")  # within the 32-level limit
    with pytest.raises(ValueError):
        TableConfig(chain(40), "c", "s", "t")


def test_model_must_be_a_basemodel_class():
    with pytest.raises(TypeError, match="class, not an instance"):
        TableConfig(model=Simple(user_id="u", n=1, score=1.0, day=date.today(), color=Color.RED, ok=True),
                    catalog="c", schema_name="s", table="t")
    with pytest.raises(TypeError):
        TableConfig(model=dict, catalog="c", schema_name="s", table="t")
    with pytest.raises(TypeError):
        TableConfig(model="Simple", catalog="c", schema_name="s", table="t")
