"""Every supported field type at once, end to end through the real server: insert,
read back equal models, read the Delta table with deltalake, polars and DuckDB, and
reach into structs and lists with SQL. Expected values come from the inserted
Python objects, never from running the same SQL elsewhere."""
from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import List, Literal, Optional

import deltalake
import duckdb
import polars as pl
import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

UTC = dt.timezone.utc


class Tier(str, enum.Enum):
    free = "free"
    pro = "pro"


class Point(BaseModel):
    x: float
    y: Optional[float] = None
    labels: List[str]


class Owner(BaseModel):
    name: str
    home: Point
    since: Optional[dt.date] = None


class Everything(BaseModel):
    id: int
    text: str
    score: float
    flag: bool
    at: dt.datetime
    day: dt.date
    maybe: Optional[int] = None
    tier: Tier
    mode: Literal["a", "b"]
    tags: List[int]
    grid: List[List[str]]
    owner: Owner
    points: List[Point]
    backup: Optional[Point] = None


def make_rows() -> list[Everything]:
    texts = ["", "ascii", "ünïcödé ✓", "😀 emoji", "a" * 40, "quote ' and \" and \\"]
    ats = [dt.datetime(1901, 12, 13, 20, 45, 52, 1, tzinfo=UTC), dt.datetime(1970, 1, 1, tzinfo=UTC),
           dt.datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC),
           dt.datetime(2026, 11, 22, 13, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5)))]
    days = [dt.date(1, 1, 1), dt.date(1969, 12, 31), dt.date(9999, 12, 31), dt.date(2024, 2, 29)]
    rows = []
    for i in range(60):
        rows.append(Everything(
            id=i, text=texts[i % len(texts)], score=i / 7, flag=i % 2 == 0, at=ats[i % len(ats)],
            day=days[i % len(days)], maybe=None if i % 3 == 0 else -i, tier=Tier.pro if i % 4 else Tier.free,
            mode="a" if i % 5 else "b", tags=list(range(i % 4)), grid=[[str(i)], [], ["x", "y"]][: i % 3],
            owner=Owner(name=f"o{i}", home=Point(x=i, y=None if i % 2 else i * 2.0, labels=["h"] * (i % 2)),
                        since=None if i % 2 else dt.date(2000, 1, 1 + i % 28)),
            points=[Point(x=j, labels=[]) for j in range(i % 3)],
            backup=None if i % 2 else Point(x=-1.5, y=2.5, labels=["b", "c"]),
        ))
    return rows


@pytest.fixture(scope="module")
def loaded(server):
    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Everything, catalog="types", schema_name="all", table="everything",
                      partition_columns=["tier"])
    rows = make_rows()
    with DatasetProducer(cfg, grpc, WriteConfig(batch_size=25)) as producer:
        for r in rows:
            producer.insert(r)
        assert producer.flush() == len(rows)
    client = DatasetClient(grpc, cfg)
    # Acknowledged rows are queryable at once; Delta readers see them once the
    # server's writer has flushed them to Parquet, which this forces now.
    client.maintain_dataset("types", "all", "everything", ["flush"])
    table_dir = Path(server.data_dir) / client.describe_dataset("types", "all", "everything")["location"]
    return client, cfg, rows, table_dir


def test_parse_schema_strings_for_every_type():
    fields = TableConfig.parse_schema(Everything.model_json_schema())
    assert fields["tier"] == {"arrow_type": "Dictionary(Int16, Utf8)", "nullable": False}
    assert fields["mode"]["arrow_type"] == "Dictionary(Int16, Utf8)"
    assert fields["grid"]["arrow_type"] == "List(List(Utf8View))"
    assert fields["owner"]["arrow_type"] == (
        "Struct(name: Utf8View, home: Struct(x: Float64, y: Float64, labels: List(Utf8View)), since: Date32)")
    assert fields["points"]["arrow_type"] == "List(Struct(x: Float64, y: Float64, labels: List(Utf8View)))"
    assert fields["backup"]["nullable"] is True
    assert fields["maybe"] == {"arrow_type": "Int64", "nullable": True}


def test_read_returns_equal_models(loaded):
    client, _, rows, _ = loaded
    back = sorted(client.read(), key=lambda r: r.id)
    assert back == rows


def test_delta_readers_agree(loaded):
    _, _, rows, table_dir = loaded
    by_delta = deltalake.DeltaTable(str(table_dir)).to_pyarrow_table()
    assert by_delta.num_rows == len(rows)
    assert by_delta.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_list(by_delta.schema.field("grid").type)
    assert pa.types.is_struct(by_delta.schema.field("owner").type)
    got = sorted(by_delta.select(["id", "text", "at", "day", "tier", "tags"]).to_pylist(), key=lambda r: r["id"])
    for r, g in zip(rows, got):
        assert (g["text"], g["at"], g["day"], g["tier"], g["tags"]) == (
            r.text, r.at.astimezone(UTC), r.day, r.tier.value, r.tags)
    by_polars = pl.read_delta(str(table_dir))
    assert by_polars.height == len(rows)
    assert sorted(by_polars["owner"].struct.field("name").to_list()) == sorted(r.owner.name for r in rows)
    files = [str(p) for p in table_dir.rglob("*.parquet")]
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r}, hive_partitioning=true)").fetchall()[0][0]
    assert n == len(rows)


def test_sql_reaches_into_structs_and_unnests_lists(loaded):
    client, cfg, rows, _ = loaded
    by_struct = client.sql(
        f"SELECT id, owner.home.x AS hx, owner.name AS name FROM {cfg.fqn} WHERE owner.home.y IS NULL ORDER BY id"
    ).to_arrow().to_pylist()
    expected = [{"id": r.id, "hx": r.owner.home.x, "name": r.owner.name} for r in rows if r.owner.home.y is None]
    assert by_struct == expected
    total = client.sql(f"SELECT sum(t) AS s, count(*) AS n FROM (SELECT unnest(tags) AS t FROM {cfg.fqn})").to_arrow()
    assert total.column("s")[0].as_py() == sum(sum(r.tags) for r in rows)
    assert total.column("n")[0].as_py() == sum(len(r.tags) for r in rows)
    labels = client.sql(
        f"SELECT count(*) AS n FROM (SELECT unnest(p.labels) FROM (SELECT unnest(points) AS p FROM {cfg.fqn}))"
    ).to_arrow()
    assert labels.column("n")[0].as_py() == sum(len(p.labels) for r in rows for p in r.points)
