"""The types real models use beyond the basic ones (issue 19, item 4), end to end
through the real server: UUID, constrained Decimal, bytes, time, timedelta,
Dict[str, T], IntEnum / int Literal and naive datetimes. Each goes through insert()
and insert_arrow(), comes back equal from read(), and reads with deltalake and
polars; refusals name the field and say what to do. Expected values are the
inserted Python objects."""
from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Dict, List, Literal, Optional

import deltalake
import polars as pl
import pyarrow as pa
import pytest
from pydantic import BaseModel, Field, condecimal

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig
from bifrost._errors import SchemaError

UTC = dt.timezone.utc
MAX_TD = dt.timedelta(microseconds=2**63 - 1)
MIN_TD = dt.timedelta(microseconds=-(2**63))
US = dt.timedelta(microseconds=1)


class Color(enum.IntEnum):
    red = 1
    green = 2
    blue = 30


class Inner(BaseModel):
    at: dt.time
    wait: Optional[dt.timedelta] = None
    price: Optional[condecimal(max_digits=12, decimal_places=4)] = None
    tags: Dict[str, str] = {}


class Rich(BaseModel):
    id: int
    key: uuid.UUID
    maybe_key: Optional[uuid.UUID] = None
    amount: Decimal = Field(max_digits=38, decimal_places=10)
    small: condecimal(max_digits=5, decimal_places=2)
    blob: bytes
    maybe_blob: Optional[bytes] = None
    clock: dt.time
    took: dt.timedelta
    counts: Dict[str, int]
    scores: Optional[Dict[str, Optional[float]]] = None
    color: Color
    level: Literal[1, 2]
    inner: Inner
    clocks: List[dt.time]
    lists: Dict[str, List[int]] = {}


AMOUNTS = [Decimal("0"), Decimal("9" * 28 + "." + "9" * 10), Decimal("-" + "9" * 28 + "." + "9" * 10),
           Decimal("0.0000000001"), Decimal("-12.5"), Decimal("1E+5")]
SMALLS = [Decimal("999.99"), Decimal("-999.99"), Decimal("0.00"), Decimal("1.5"), Decimal("-0.01")]
BLOBS = [b"", b"\x00", b"\x00" * 40, bytes(range(256)), b"NULL", b"plain"]
CLOCKS = [dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 34, 56, 789), dt.time(0, 0, 0, 1)]
TOOKS = [dt.timedelta(0), dt.timedelta(microseconds=-1), dt.timedelta(days=-1, microseconds=1),
         MAX_TD, MIN_TD, dt.timedelta(hours=36, microseconds=5)]
COUNTS = [{}, {"a": 1}, {"": 0, "NULL": -1, "ünï": 2**63 - 1, "k" * 40: -(2**63), "nul\x00key": 3}]


def make_rows(n: int = 30) -> List[Rich]:
    rows = []
    for i in range(n):
        rows.append(Rich(
            id=i, key=uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % 2**128),
            maybe_key=None if i % 2 else uuid.uuid5(uuid.NAMESPACE_DNS, f"h{i}"),
            amount=AMOUNTS[i % len(AMOUNTS)], small=SMALLS[i % len(SMALLS)], blob=BLOBS[i % len(BLOBS)],
            maybe_blob=None if i % 3 == 0 else BLOBS[(i + 1) % len(BLOBS)], clock=CLOCKS[i % len(CLOCKS)],
            took=TOOKS[i % len(TOOKS)], counts=COUNTS[i % len(COUNTS)],
            scores=None if i % 4 == 0 else {"inf": math.inf, "-inf": -math.inf, "none": None, "x": i / 3},
            color=list(Color)[i % 3], level=1 + i % 2,
            inner=Inner(at=CLOCKS[(i + 1) % len(CLOCKS)], wait=None if i % 2 else TOOKS[(i + 2) % len(TOOKS)],
                        price=None if i % 5 == 0 else Decimal("-12345678.1234") + i, tags={"t": str(i)} if i % 2 else {}),
            clocks=CLOCKS[: i % 5], lists={} if i % 3 else {"a": [], "b": [i, -i]},
        ))
    return rows


def table_dir(server, client, cfg) -> Path:
    client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])
    return Path(server.data_dir) / client.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)["location"]


@pytest.fixture(scope="module")
def loaded(server):
    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Rich, catalog="types", schema_name="more", table="rich")
    rows = make_rows()
    with DatasetProducer(cfg, grpc, WriteConfig(batch_size=7)) as producer:
        for r in rows:
            producer.insert(r)
        assert producer.flush() == len(rows)
    client = DatasetClient(grpc, cfg)
    return client, cfg, rows, table_dir(server, client, cfg)


def test_parse_schema_entries_for_the_new_types():
    fields = TableConfig(Rich, catalog="c", schema_name="s", table="t").fields
    assert fields["key"] == {"arrow_type": "Utf8View", "nullable": False}
    assert fields["maybe_key"] == {"arrow_type": "Utf8View", "nullable": True}
    assert fields["amount"]["arrow_type"] == "Decimal128(38, 10)"
    assert fields["small"]["arrow_type"] == "Decimal128(5, 2)"
    assert fields["blob"]["arrow_type"] == "BinaryView"
    assert fields["clock"]["arrow_type"] == "Time64(Microsecond)"
    assert fields["took"]["arrow_type"] == "Duration(Microsecond)"
    assert fields["counts"]["arrow_type"] == "Map(Utf8View, Int64)"
    assert fields["scores"] == {"arrow_type": "Map(Utf8View, Float64)", "nullable": True}
    assert fields["color"]["arrow_type"] == "Int64"
    assert fields["level"]["arrow_type"] == "Int64"
    assert fields["lists"]["arrow_type"] == "Map(Utf8View, List(Int64))"
    assert fields["inner"]["arrow_type"] == (
        "Struct(at: Time64(Microsecond), wait: Duration(Microsecond), price: Decimal128(12, 4), "
        "tags: Map(Utf8View, Utf8View))")


def documented_fingerprint(entries: List[str]) -> str:
    return hashlib.sha256("|".join(sorted(entries)).encode()).hexdigest()[:32]


SYSTEM = ["scouter_batch_id:Utf8:false", "scouter_created_at:Timestamp(Microsecond, Some(\"UTC\")):false",
          "scouter_partition_date:Date32:false"]


def test_fingerprints_follow_the_documented_rule_old_types_unchanged():
    class Old(BaseModel):
        a: int
        b: Optional[str] = None
        c: dt.datetime
        d: List[float]

    old = TableConfig(Old, catalog="c", schema_name="s", table="t")
    assert old.fingerprint_str == documented_fingerprint(
        ["a:Int64:false", "b:Utf8View:true", "c:Timestamp(Microsecond, Some(\"UTC\")):false",
         "d:List(item:Float64:false):false"] + SYSTEM)
    # the pydantic schema and bifrost's differ only for Decimal: same fingerprint
    assert TableConfig.compute_fingerprint(Old.model_json_schema()) == old.fingerprint_str

    class New(BaseModel):
        m: Dict[str, Optional[int]]
        t: dt.time
        z: dt.timedelta
        x: condecimal(max_digits=3, decimal_places=1)
        y: bytes

    new = TableConfig(New, catalog="c", schema_name="s", table="t")
    assert new.fingerprint_str == documented_fingerprint(
        ["m:Map(entries:Struct(key:Utf8View:false,value:Int64:true):false):false",
         "t:Time64(Microsecond):false", "z:Duration(Microsecond):false", "x:Decimal128(3, 1):false",
         "y:BinaryView:false"] + SYSTEM)


def test_read_returns_equal_models(loaded):
    client, _, rows, _ = loaded
    back = sorted(client.read(), key=lambda r: r.id)
    assert back == rows
    assert isinstance(back[0].color, Color) and isinstance(back[0].key, uuid.UUID)


def test_delta_schema_and_readers(loaded):
    _, _, rows, directory = loaded
    dt_table = deltalake.DeltaTable(str(directory))
    schema = json.loads(dt_table.schema().to_json())
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types["key"] == "string"
    assert types["amount"] == "decimal(38,10)"
    assert types["small"] == "decimal(5,2)"
    assert types["blob"] == "binary"
    assert types["clock"] == "long" and types["took"] == "long"
    assert types["counts"] == {"type": "map", "keyType": "string", "valueType": "long",
                               "valueContainsNull": False}
    assert types["scores"]["valueContainsNull"] is True
    assert types["color"] == "long"
    got = sorted(dt_table.to_pyarrow_table().to_pylist(maps_as_pydicts="strict"), key=lambda r: r["id"])
    assert len(got) == len(rows)
    for r, g in zip(rows, got):
        assert g["key"] == str(r.key)
        assert g["amount"] == r.amount and g["small"] == r.small
        assert g["blob"] == r.blob and g["maybe_blob"] == r.maybe_blob
        assert g["clock"] == (r.clock.hour * 3600 + r.clock.minute * 60 + r.clock.second) * 10**6 + r.clock.microsecond
        assert g["took"] == r.took // dt.timedelta(microseconds=1)
        assert g["counts"] == r.counts and g["color"] == int(r.color)
    by_polars = pl.read_delta(str(directory)).sort("id")
    assert by_polars.height == len(rows)
    assert by_polars["blob"].to_list() == [r.blob for r in rows]
    assert by_polars["amount"].to_list() == [r.amount for r in rows]
    assert by_polars["key"].to_list() == [str(r.key) for r in rows]
    assert by_polars["took"].to_list() == [r.took // dt.timedelta(microseconds=1) for r in rows]


def test_insert_arrow_takes_the_logical_arrow_types(server, unique_table):
    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Rich, catalog="types", schema_name="more", table=unique_table)
    rows = make_rows(12)
    records = [r.model_dump() for r in rows]
    clock = pa.array([r.clock for r in rows], pa.time64("ns"))  # any unit; cast to µs exactly
    data = pa.table({
        "id": pa.array([r.id for r in rows], pa.int64()),
        "key": pa.array([r.key.bytes for r in rows], pa.uuid()),
        "maybe_key": pa.array([None if r.maybe_key is None else str(r.maybe_key) for r in rows]),
        "amount": pa.array([r.amount for r in rows], pa.decimal128(38, 10)),
        "small": pa.array([str(r.small) for r in rows]),  # text converts exactly
        "blob": pa.array([r.blob for r in rows], pa.binary()),
        "maybe_blob": pa.array([r.maybe_blob for r in rows], pa.large_binary()),
        "clock": clock,
        # (pyarrow cannot build ±2**63 µs from timedelta objects; from integers it can)
        "took": pa.array([r.took // US for r in rows], pa.int64()).cast(pa.duration("us")),
        "counts": pa.array([list(r.counts.items()) for r in rows], pa.map_(pa.string(), pa.int64())),
        "scores": pa.array([None if r.scores is None else list(r.scores.items()) for r in rows],
                           pa.map_(pa.string(), pa.float64())),
        "color": pa.array([int(r.color) for r in rows], pa.int64()),
        "level": pa.array([r.level for r in rows], pa.int32()),
        "inner": pa.array([{**d["inner"], "tags": list(d["inner"]["tags"].items()),
                            "wait": None if d["inner"]["wait"] is None else d["inner"]["wait"] // US} for d in records],
                          pa.struct([("at", pa.time64("us")), ("wait", pa.int64()),
                                     ("price", pa.decimal128(12, 4)), ("tags", pa.map_(pa.string(), pa.string()))])),
        "clocks": pa.array([r.clocks for r in rows], pa.list_(pa.time64("us"))),
        "lists": pa.array([list(r.lists.items()) for r in rows], pa.map_(pa.string(), pa.list_(pa.int64()))),
    })
    with DatasetProducer(cfg, grpc) as producer:
        assert producer.insert_arrow(data) == len(rows)
        producer.flush()
    client = DatasetClient(grpc, cfg)
    assert sorted(client.read(), key=lambda r: r.id) == rows
    directory = table_dir(server, client, cfg)
    assert pl.read_delta(str(directory)).sort("id")["small"].to_list() == [r.small for r in rows]


def test_insert_arrow_refuses_lossy_values(server, unique_table):
    class Few(BaseModel):
        small: condecimal(max_digits=5, decimal_places=2)
        clock: Optional[dt.time] = None

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Few, catalog="types", schema_name="more", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        refused = [
            {"small": pa.array([Decimal("1.234")], pa.decimal128(6, 3))},
            {"small": pa.array([Decimal("1234.5")])},
            {"small": pa.array([12.345])},  # a float is not rounded to the scale
            {"small": pa.array([math.nan])},
            {"small": [Decimal("1")], "clock": pa.array([1], pa.int64()).cast(pa.time64("ns"))},  # 1 ns
            {"small": [Decimal("1")], "clock": ["25:00:00"]},
        ]
        for columns in refused:
            with pytest.raises(SchemaError, match=f"column '{list(columns)[-1]}'"):
                producer.insert_arrow(pa.table(columns))
        with pytest.raises(SchemaError, match="times of day"):
            producer.insert_arrow(pa.table({"small": [Decimal("1")], "clock": [86_400_000_000]}))
        assert producer.insert_arrow(pa.table({"small": [0.1, -999.99]})) == 2  # exact at scale 2
        assert producer.insert_arrow(pa.table({"small": [Decimal("1"), Decimal("2")],
                                               "clock": ["23:59:59.999999", "00:00"]})) == 2
        producer.flush()
    back = sorted(DatasetClient(grpc, cfg).read(), key=lambda r: r.small)
    assert [(r.small, r.clock) for r in back] == [
        (Decimal("-999.99"), None), (Decimal("0.1"), None), (Decimal("1"), dt.time(23, 59, 59, 999999)),
        (Decimal("2"), dt.time(0, 0))]


def test_unconstrained_decimal_is_refused_with_how_to_constrain_it():
    class Loose(BaseModel):
        price: Decimal

    with pytest.raises(SchemaError, match=r"field 'price'.*max_digits and\s+decimal_places"):
        TableConfig(Loose, catalog="c", schema_name="s", table="t")

    class Half(BaseModel):
        price: Decimal = Field(max_digits=5)

    with pytest.raises(SchemaError, match="max_digits and decimal_places"):
        TableConfig(Half, catalog="c", schema_name="s", table="t")

    class Huge(BaseModel):
        price: condecimal(max_digits=39, decimal_places=2)

    with pytest.raises(SchemaError, match=r"max_digits=39 is outside 1\.\.38"):
        TableConfig(Huge, catalog="c", schema_name="s", table="t")


def test_insert_refuses_values_the_column_cannot_hold(server, unique_table):
    class Strict(BaseModel):
        price: condecimal(max_digits=5, decimal_places=2)
        clock: dt.time
        took: dt.timedelta
        m: Dict[str, int]

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Strict, catalog="types", schema_name="more", table=unique_table)
    ok = dict(price=Decimal("1.00"), clock=dt.time(1), took=dt.timedelta(1), m={})
    with DatasetProducer(cfg, grpc) as producer:
        bad = [
            (dict(price=Decimal("1234.5")), "more than 5 digits"),
            (dict(price=Decimal("1.234")), "more than 2 decimal places"),
            (dict(price=Decimal("NaN")), "NaN and infinite"),
            (dict(price=1.5), "a float is not exact"),
            (dict(price=True), "expected a Decimal, got bool"),
            (dict(price="1.5"), "expected a Decimal, got str"),
            (dict(clock=dt.time(1, tzinfo=dt.timezone(dt.timedelta(hours=2)))), "non-UTC offset"),
            (dict(took=MAX_TD + dt.timedelta(microseconds=1)), "64-bit microseconds"),
            (dict(took=MIN_TD - dt.timedelta(microseconds=1)), "64-bit microseconds"),
            (dict(m={1.5: 2}), "keys must be str, int, an enum or a UUID"),
            (dict(m={"a": "x"}), "expected int"),
        ]
        for change, message in bad:
            record = Strict.model_construct(**{**ok, **change})  # skips pydantic's own checks
            with pytest.raises(SchemaError, match=message):
                producer.insert(record)
        producer.insert(Strict(**{**ok, "price": Decimal("1.20000")}))  # trailing zeros fit
        producer.flush()
    assert DatasetClient(grpc, cfg).read() == [Strict(**{**ok, "price": Decimal("1.2")})]


def test_naive_datetimes_are_taken_as_utc(server, unique_table):
    class Stamp(BaseModel):
        at: dt.datetime
        stamps: Dict[str, dt.datetime]

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Stamp, catalog="types", schema_name="more", table=unique_table)
    naive = dt.datetime(2026, 12, 2, 7, 30, 0, 123456)
    aware = dt.datetime(2026, 12, 2, 9, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert(Stamp(at=naive, stamps={"naive": naive, "aware": aware}))
        producer.insert_arrow(pa.table({
            "at": pa.array([naive], pa.timestamp("us")),
            "stamps": pa.array([[("naive", naive)]], pa.map_(pa.string(), pa.timestamp("us")))}))
        producer.flush()
    client = DatasetClient(grpc, cfg)
    utc = naive.replace(tzinfo=UTC)
    assert sorted(client.read(), key=lambda r: len(r.stamps)) == [
        Stamp(at=utc, stamps={"naive": utc}), Stamp(at=utc, stamps={"naive": utc, "aware": utc})]
    # a naive query parameter is UTC too
    result = client.sql(f"SELECT count(*) AS n FROM types.more.{unique_table} WHERE at = ?", params=[naive])
    assert result.to_arrow().to_pylist() == [{"n": 2}]


def test_evolution_refuses_decimal_precision_and_map_value_changes(server, unique_table):
    from bifrost import SchemaEvolutionError

    class Before(BaseModel):
        price: condecimal(max_digits=10, decimal_places=2)
        attrs: Dict[str, int]

    class Wider(BaseModel):
        price: condecimal(max_digits=12, decimal_places=2)
        attrs: Dict[str, int]

    class OtherValues(BaseModel):
        price: condecimal(max_digits=10, decimal_places=2)
        attrs: Dict[str, str]

    class Added(BaseModel):
        price: condecimal(max_digits=10, decimal_places=2)
        attrs: Dict[str, int]
        more: Optional[Dict[str, bytes]] = None

    grpc = GrpcConfig(server_uri=server.uri)

    def config(model):
        return TableConfig(model, catalog="types", schema_name="more", table=unique_table, schema_mode="merge")

    with DatasetProducer(config(Before), grpc) as producer:
        producer.insert(Before(price=Decimal("1.25"), attrs={"a": 1}))
        producer.flush()
    with pytest.raises(SchemaEvolutionError, match=r"field 'price' changed type from Decimal128\(10, 2\) "
                                                   r"to Decimal128\(12, 2\)"):
        DatasetProducer(config(Wider), grpc)
    with pytest.raises(SchemaEvolutionError, match=r"field 'attrs\{\}' changed type from Int64 to Utf8View"):
        DatasetProducer(config(OtherValues), grpc)
    with DatasetProducer(config(Added), grpc) as producer:
        producer.insert(Added(price=Decimal("2"), attrs={}, more={"k": b"\x00"}))
        producer.flush()
    back = DatasetClient(grpc, config(Added)).read()
    assert sorted(back, key=lambda r: r.price) == [
        Added(price=Decimal("1.25"), attrs={"a": 1}), Added(price=Decimal("2"), attrs={}, more={"k": b"\x00"})]


def test_query_parameters_of_the_new_types(loaded):
    client, cfg, rows, _ = loaded
    table = f"{cfg.catalog}.{cfg.schema_name}.{cfg.table}"

    def ids(where: str, *params) -> List[int]:
        result = client.sql(f"SELECT id FROM {table} WHERE {where} ORDER BY id", params=list(params))
        return [r["id"] for r in result.to_arrow().to_pylist()]

    assert ids("key = ?", rows[3].key) == [3]
    assert ids("amount = ?", AMOUNTS[1]) == [r.id for r in rows if r.amount == AMOUNTS[1]]
    assert ids("amount = ?", Decimal("-12.50")) == [r.id for r in rows if r.amount == Decimal("-12.5")]
    assert ids("small < ?", Decimal("0")) == [r.id for r in rows if r.small < 0]
    assert ids("blob = ?", b"\x00") == [r.id for r in rows if r.blob == b"\x00"]
    assert ids("blob = ?", b"") == [r.id for r in rows if r.blob == b""]
    assert ids("clock = ?", CLOCKS[1]) == [r.id for r in rows if r.clock == CLOCKS[1]]
    assert ids("took = ?", MIN_TD) == [r.id for r in rows if r.took == MIN_TD]
    assert ids("color = ?", Color.blue) == [r.id for r in rows if r.color == Color.blue]
    # lists: IN ? and = ANY(?), with NULLs and empty lists
    assert ids("id IN ?", [1, 5, None]) == [1, 5]
    assert ids("id = ANY(?)", (2, 4)) == [2, 4]
    assert ids("key IN ?", [rows[0].key, rows[7].key]) == [0, 7]
    assert ids("amount IN ?", [Decimal("0"), Decimal("-12.5")]) == [
        r.id for r in rows if r.amount in (Decimal("0"), Decimal("-12.5"))]
    assert ids("blob IN ?", [b"NULL", b"plain"]) == [r.id for r in rows if r.blob in (b"NULL", b"plain")]
    assert ids("id IN ?", []) == []
    assert ids("level IN ?", {2}) == [r.id for r in rows if r.level == 2]
    for bad, message in [([[1]], "a list inside a list"), (Decimal("NaN"), "not a finite decimal"),
                         (Decimal("1" * 39), "more than 38 digits"), (object(), "has type object")]:
        with pytest.raises((TypeError, ValueError), match=message):
            client.sql(f"SELECT id FROM {table} WHERE id IN ?", params=[bad])
    from bifrost._errors import BifrostError
    with pytest.raises(BifrostError, match="one type"):
        client.sql(f"SELECT id FROM {table} WHERE id IN ?", params=[[1, "a"]])


def test_stats_compaction_checkpoint_and_time_travel_keep_the_types(server, unique_table):
    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Rich, catalog="types", schema_name="more", table=unique_table)
    rows = make_rows(12)
    with DatasetProducer(cfg, grpc) as producer:
        client = DatasetClient(grpc, cfg)
        for part in (rows[:6], rows[6:]):  # two flushes: two files to compact
            for r in part:
                producer.insert(r)
            producer.flush()
            client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])
    directory = table_dir(server, client, cfg)
    adds = [json.loads(line)["add"] for f in sorted((directory / "_delta_log").glob("*.json"))
            for line in f.read_text().splitlines() if '"add"' in line]
    stats = [json.loads(a["stats"]) for a in adds]
    micros = [r.took // US for r in rows[:6]]
    assert stats[0]["minValues"]["took"] == min(micros) and stats[0]["maxValues"]["took"] == max(micros)
    assert "clock" in stats[0]["minValues"]
    version = client.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)["delta_version"]
    done = client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["optimize", "checkpoint"])
    assert done["files_removed"] >= 2
    assert sorted(client.read(), key=lambda r: r.id) == rows
    assert sorted(client.read(version=version), key=lambda r: r.id) == rows
    assert pl.read_delta(str(directory)).height == len(rows)


def test_insert_arrow_fills_defaults_of_the_new_types(server, unique_table):
    class WithDefaults(BaseModel):
        id: int
        clock: dt.time = dt.time(6, 30)
        took: dt.timedelta = dt.timedelta(minutes=-5)
        price: condecimal(max_digits=6, decimal_places=2) = Decimal("9.99")
        blob: bytes = b"\x00d"
        attrs: Dict[str, int] = {"d": 1}

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(WithDefaults, catalog="types", schema_name="more", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert_arrow(pa.table({"id": [1, 2]}))
        producer.flush()
    assert DatasetClient(grpc, cfg).read() == [WithDefaults(id=1), WithDefaults(id=2)]


def test_dict_keys_are_stored_as_text_and_validated_back(server, unique_table):
    class Keys(BaseModel):
        by_int: Dict[int, str]
        by_enum: Dict[Color, int]
        by_literal: Dict[Literal["x", "y"], bool]
        by_uuid: Dict[uuid.UUID, Optional[Dict[str, int]]]

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Keys, catalog="types", schema_name="more", table=unique_table)
    record = Keys(by_int={-1: "", 2**63 - 1: "NULL"}, by_enum={Color.blue: 30}, by_literal={"y": True},
                  by_uuid={uuid.UUID(int=5): None, uuid.UUID(int=6): {"": 0}})
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert(record)
        producer.flush()
    client = DatasetClient(grpc, cfg)
    assert client.read() == [record]
    stored = client.sql(f"SELECT by_int, by_enum FROM types.more.{unique_table}").to_arrow()
    assert stored.to_pylist(maps_as_pydicts="strict") == [
        {"by_int": {"-1": "", str(2**63 - 1): "NULL"}, "by_enum": {"30": 30}}]


@pytest.mark.parametrize("reader", ["deltalake", "polars", "datafusion", "duckdb"])
def test_every_delta_reader_reads_the_new_types(loaded, reader):
    from test_delta_conformance import READERS

    _, _, rows, directory = loaded
    table = READERS[reader](directory).select(["id", "key", "amount", "small", "blob", "clock", "took", "counts",
                                               "color", "inner"])
    got = sorted(table.to_pylist(maps_as_pydicts="strict"), key=lambda r: r["id"])
    assert len(got) == len(rows)
    for r, g in zip(rows, got):
        assert (g["key"], g["amount"], g["small"], g["blob"], g["color"]) == (
            str(r.key), r.amount, r.small, r.blob, int(r.color)), reader
        assert g["clock"] == (r.clock.hour * 3600 + r.clock.minute * 60 + r.clock.second) * 10**6 + r.clock.microsecond
        assert g["took"] == r.took // US
        assert g["counts"] == r.counts
        assert g["inner"]["price"] == r.inner.price and g["inner"]["tags"] == r.inner.tags


def test_map_conversion_without_maps_as_pydicts_matches_pyarrows():
    from bifrost._logical import _maps_to_dicts

    nested = pa.map_(pa.string(), pa.list_(pa.map_(pa.string(), pa.int64())))
    table = pa.table({
        "m": pa.array([[("a", 1)], [], None], pa.map_(pa.string(), pa.int64())),
        "s": pa.array([{"x": [("k", [[("z", 1)], []])]}, {"x": []}, None], pa.struct([("x", nested)])),
    })
    types = {f.name: f.type for f in table.schema}
    by_hand = [{k: _maps_to_dicts(v, types[k]) for k, v in row.items()} for row in table.to_pylist()]
    assert by_hand == table.to_pylist(maps_as_pydicts="strict")
    assert by_hand[1] == {"m": {}, "s": {"x": {}}}


def test_int_enum_values_are_checked_like_str_enum_values(server, unique_table):
    class Coded(BaseModel):
        color: Color
        level: Optional[Literal[1, 2]] = None
        one: Literal[1] = 1

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Coded, catalog="types", schema_name="more", table=unique_table)
    assert cfg.fields["one"]["arrow_type"] == "Int64"
    with DatasetProducer(cfg, grpc) as producer:
        for change, message in [(dict(color=3), "field 'color': 3 is not one of the enum values"),
                                (dict(level=0), "field 'level': 0 is not one of the enum values"),
                                (dict(one=2), "field 'one': 2 is not one of the enum values")]:
            with pytest.raises(SchemaError, match=message):
                producer.insert(Coded.model_construct(**{"color": Color.red, **change}))
        with pytest.raises(SchemaError, match="column 'color' has 4, not one of its enum values"):
            producer.insert_arrow(pa.table({"color": [1, 4]}))
        with pytest.raises(SchemaError, match="column 'level' has 3"):
            producer.insert_arrow(pa.table({"color": [1, 2], "level": pa.array([None, 3], pa.int64())}))
        producer.insert(Coded(color=Color.blue, level=2))
        assert producer.insert_arrow(pa.table({"color": [30], "level": pa.array([None], pa.int64())})) == 1
        producer.flush()
    back = DatasetClient(grpc, cfg).read()
    assert sorted(back, key=lambda r: r.level or 0) == [Coded(color=Color.blue), Coded(color=Color.blue, level=2)]
    assert isinstance(back[0].color, Color)


def test_sql_sees_time_and_timedelta_as_microseconds(loaded):
    client, cfg, rows, _ = loaded
    table = f"{cfg.catalog}.{cfg.schema_name}.{cfg.table}"
    got = client.sql(f"SELECT id, TIME '00:00' + to_microseconds(clock) AS t, clock, took FROM {table} "
                     "WHERE clock >= ? AND took < ? ORDER BY id",
                     params=[dt.time(12), dt.timedelta(0)]).to_arrow().to_pylist()
    want = [r for r in rows if r.clock >= dt.time(12) and r.took < dt.timedelta(0)]
    assert [g["id"] for g in got] == [r.id for r in want] and want
    for g, r in zip(got, want):
        assert g["t"] == r.clock
        assert g["clock"] == (r.clock.hour * 3600 + r.clock.minute * 60 + r.clock.second) * 10**6 + r.clock.microsecond
        assert g["took"] == r.took // US
