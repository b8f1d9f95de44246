"""The producer stores exactly the values given (issue 12, items 2 and 2b): NaN, ±inf
and -0.0 on every path and position; aliases; exact UTC offsets; defaults filled by
insert_arrow; values the table cannot hold refused at insert() naming the field.
Against the real server, read back through sql() and read()."""
from __future__ import annotations

import math
import struct
from datetime import date, datetime, timedelta, timezone
from typing import List, Optional
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from pydantic import AliasChoices, BaseModel, Field

from bifrost import DatasetClient, DatasetProducer, SchemaError, TableConfig, WriteConfig

SPECIAL = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1.5]


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def same(a: Optional[float], b: Optional[float]) -> bool:
    """Equal as stored: NaN equals NaN, -0.0 differs from 0.0."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return bits(a) == bits(b)


class Inner(BaseModel):
    x: float
    y: Optional[float] = None


class Floats(BaseModel):
    i: int
    score: float
    maybe: Optional[float] = None
    many: List[float] = []
    inner: Inner
    inners: List[Inner] = []


def make(i: int, v: float) -> Floats:
    return Floats(i=i, score=v, maybe=v, many=[v, v], inner=Inner(x=v, y=v), inners=[Inner(x=v, y=v)])


def check_row(row: dict, v: float) -> None:
    assert same(row["score"], v), (row, v)
    assert same(row["maybe"], v)
    assert all(same(m, v) for m in row["many"]) and len(row["many"]) == 2
    assert same(row["inner"]["x"], v) and same(row["inner"]["y"], v)
    assert same(row["inners"][0]["x"], v) and same(row["inners"][0]["y"], v)


@pytest.mark.parametrize("path", ["insert", "insert_many", "insert_arrow"])
def test_nan_inf_and_negative_zero_round_trip(grpc, unique_table, path):
    cfg = TableConfig(Floats, catalog="test", schema_name="exact", table=unique_table)
    records = [make(i, v) for i, v in enumerate(SPECIAL)]
    with DatasetProducer(cfg, grpc, WriteConfig(scheduled_delay_secs=3600)) as producer:
        if path == "insert":
            for r in records:
                producer.insert(r)
        elif path == "insert_many":
            producer.insert_many(records)
        else:
            producer.insert_arrow(pa.Table.from_pylist([r.model_dump() for r in records]))
        assert producer.flush(timeout=30) == len(records)
    client = DatasetClient(grpc, cfg)
    rows = client.sql(f"SELECT * FROM {cfg.fqn} ORDER BY i").to_arrow().to_pylist()
    assert len(rows) == len(SPECIAL)
    for row, v in zip(rows, SPECIAL):
        check_row(row, v)
    models = sorted(client.read(), key=lambda m: m.i)
    for model, v in zip(models, SPECIAL):
        check_row(model.model_dump(), v)


class Named(BaseModel):
    id: int
    user_name: Optional[str] = Field(None, alias="userName")
    city: str = Field(validation_alias="town")
    code: str = Field(validation_alias=AliasChoices("zip", "postcode"))
    secret: str = Field(exclude=True)


def test_aliases_and_excluded_fields_are_stored(grpc, unique_table):
    cfg = TableConfig(Named, catalog="test", schema_name="exact", table=unique_table)
    assert cfg.user_columns == ["id", "userName", "town", "zip", "secret"]
    records = [Named(id=1, userName="ann", town="Oslo", zip="0150", secret="s1"),
               Named(id=2, town="Rome", postcode="00100", secret="s2")]
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert(records[0])
        producer.insert_many(records[1:])
        assert producer.flush(timeout=30) == 2
    rows = DatasetClient(grpc, cfg).sql(f"SELECT * FROM {cfg.fqn} ORDER BY id").to_arrow().to_pylist()
    assert [(r["id"], r["userName"], r["town"], r["zip"], r["secret"]) for r in rows] == [
        (1, "ann", "Oslo", "0150", "s1"), (2, None, "Rome", "00100", "s2")]


class When(BaseModel):
    at: datetime


class Nested(BaseModel):
    id: int
    when: When
    whens: List[When] = []


def test_sub_minute_offsets_are_exact_in_nested_models(grpc, unique_table):
    cfg = TableConfig(Nested, catalog="test", schema_name="exact", table=unique_table)
    amsterdam = datetime(1900, 1, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam"))  # +00:19:32
    odd = datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)))
    values = [amsterdam, odd]
    with DatasetProducer(cfg, grpc) as producer:
        for i, v in enumerate(values):
            producer.insert(Nested(id=i, when=When(at=v), whens=[When(at=v)]))
        assert producer.flush(timeout=30) == 2
    rows = DatasetClient(grpc, cfg).sql(f"SELECT * FROM {cfg.fqn} ORDER BY id").to_arrow().to_pylist()
    for row, v in zip(rows, values):
        assert row["when"]["at"] == v.astimezone(timezone.utc)
        assert row["whens"][0]["at"] == v.astimezone(timezone.utc)


class Days(BaseModel):
    id: int
    at: datetime
    day: date


def test_dates_that_change_from_row_to_row_are_exact(grpc, unique_table):
    # The encoder keeps the last date it converted: rows going back and forth
    # between days, across month, year and leap-day boundaries, stay exact.
    days = [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1), date(2024, 2, 29), date(1, 1, 1),
            date(9999, 12, 31), date(1970, 1, 1), date(1969, 12, 31), date(2023, 12, 31), date(2024, 1, 1)]
    days = days + days[::-1]
    utc = timezone.utc
    cfg = TableConfig(Days, catalog="test", schema_name="exact", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        for i, d in enumerate(days):
            producer.insert(Days(id=i, at=datetime(d.year, d.month, d.day, 23, 59, 59, 999999, tzinfo=utc), day=d))
        assert producer.flush(timeout=30) == len(days)
    rows = DatasetClient(grpc, cfg).sql(f"SELECT * FROM {cfg.fqn} ORDER BY id").to_arrow().to_pylist()
    assert [(r["at"], r["day"]) for r in rows] == [
        (datetime(d.year, d.month, d.day, 23, 59, 59, 999999, tzinfo=utc), d) for d in days]


class Flat(BaseModel):
    id: int
    at: Optional[datetime] = None
    n: Optional[int] = None
    f: Optional[float] = None


@pytest.mark.parametrize("kwargs, field", [
    ({"at": datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))}, "at"),
    ({"at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))}, "at"),
    ({"n": 2 ** 63}, "n"),
    ({"n": -(2 ** 63) - 1}, "n"),
])
def test_values_the_table_cannot_hold_are_refused_at_insert(grpc, unique_table, kwargs, field):
    cfg = TableConfig(Flat, catalog="test", schema_name="exact", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        with pytest.raises(SchemaError, match=f"field '{field}'"):
            producer.insert(Flat(id=1, **kwargs))
        with pytest.raises(SchemaError, match=f"field '{field}'"):
            producer.insert_many([Flat(id=2), Flat(id=3, **kwargs)])
        assert producer.flush(timeout=30) == 1  # the good record before the bad one
        assert producer.stats()["failed"] == 0


def test_subclass_changing_a_field_type_is_refused_at_insert(grpc, unique_table):
    class Base(BaseModel):
        id: int
        score: float

    class Sub(Base):
        score: str  # type: ignore[assignment]

    cfg = TableConfig(Base, catalog="test", schema_name="exact", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        with pytest.raises(SchemaError, match="field 'score'.*expected float, got str"):
            producer.insert(Sub(id=1, score="high"))
        producer.insert(Base(id=2, score=0.5))
        assert producer.flush(timeout=30) == 1


class Point(BaseModel):
    x_pos: float = Field(alias="xPos")


class WithDefaults(BaseModel):
    id: int
    n: int = 5
    tags: List[str] = []
    label: Optional[str] = "x"
    origin: Point = Point(xPos=-0.0)


def test_insert_arrow_fills_missing_columns_with_model_defaults(grpc, unique_table):
    cfg = TableConfig(WithDefaults, catalog="test", schema_name="exact", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        assert producer.insert_arrow(pa.table({"id": [1, 2]})) == 2
        assert producer.flush(timeout=30) == 2
    client = DatasetClient(grpc, cfg)
    assert sorted(client.read(), key=lambda m: m.id) == [WithDefaults(id=1), WithDefaults(id=2)]


def test_insert_arrow_refuses_instants_outside_years_1_to_9999(grpc, unique_table):
    cfg = TableConfig(Flat, catalog="test", schema_name="exact", table=unique_table)
    too_late = 253402300800000000  # 10000-01-01T00:00:00Z in microseconds
    with DatasetProducer(cfg, grpc) as producer:
        with pytest.raises(SchemaError, match="column 'at'.*outside years 1-9999"):
            producer.insert_arrow(pa.table({"id": [1, 2], "at": pa.array([0, too_late], pa.timestamp("us", "UTC"))}))
        assert producer.insert_arrow(pa.table({"id": [3], "at": pa.array([0], pa.timestamp("us", "UTC"))})) == 1
        assert producer.flush(timeout=30) == 1
