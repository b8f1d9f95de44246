"""insert() of nested models (struct + list + enum + Optional) through the binary row
encoder's fast paths (_core_rows.c): per-class attribute names of nested models, the
instance __dict__ read in field order, str enum members remembered by identity, list
items of exactly float / str encoded inline. Each case reads back through the real
server exactly what was inserted, or is refused with the same message as before."""
from __future__ import annotations

import enum
import math
import struct
import types
from typing import Dict, List, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field

from bifrost import DatasetClient, DatasetProducer, SchemaError, TableConfig, WriteConfig

SPECIAL = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1.5, 5e-324, 1.7976931348623157e308]


class Kind(str, enum.Enum):
    CREDIT = "credit"
    FRAUD = "fraud"


class OtherKind(str, enum.Enum):
    CREDIT = "credit"  # same value as Kind.CREDIT: accepted by value
    LOAN = "loan"  # not one of Kind's values: refused


class Shade(enum.Enum):  # not a str subclass: read through .value
    LIGHT = "light"
    DARK = "dark"


class Features(BaseModel):
    amount: float
    country: str


class FeaturesChild(Features):
    note: str = "not a column"


class FeaturesExtra(Features):
    model_config = ConfigDict(extra="allow")


class Aliased(BaseModel):
    amount_value: float = Field(alias="amount")
    country: str


class Record(BaseModel):
    id: int
    kind: Kind
    features: Features
    scores: List[float]
    names: List[str] = []
    counts: List[int] = []
    shade: Optional[Shade] = None
    maybe: Optional[Features] = None
    label: Optional[str] = None


class RecordExtra(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    kind: Kind
    features: Features
    scores: List[float]
    maybe: Optional[Features] = None


class AliasedRecord(BaseModel):
    id: int
    inner: Aliased
    inners: List[Aliased] = []
    by_name: Dict[str, Aliased] = {}


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def same_floats(a: List[float], b: List[float]) -> bool:
    """Equal as stored: NaN equals NaN, -0.0 differs from 0.0."""
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or bits(x) == bits(y) for x, y in zip(a, b))


def config(model, table: str) -> TableConfig:
    return TableConfig(model, catalog="test", schema_name="nested", table=table)


def insert_all(grpc, cfg: TableConfig, records: list, many: bool = False) -> None:
    with DatasetProducer(cfg, grpc, WriteConfig(scheduled_delay_secs=3600)) as producer:
        if many:
            assert producer.insert_many(records) == len(records)
        else:
            for r in records:
                producer.insert(r)
        assert producer.flush(timeout=60) == len(records)


def read_by_id(grpc, cfg: TableConfig) -> list:
    return sorted(DatasetClient(grpc, cfg).read(), key=lambda r: r.id)


def unchecked(model, **values):
    """An instance holding values as given (no validation): what assignment without
    validate_assignment or model_construct leave in an instance."""
    return model.model_construct(**values)


def test_nested_values_round_trip(grpc, unique_table):
    """Lists of 0, 1 and 10k elements (NaN, ±inf, -0.0 among them), None and a value
    in the Optional nested model, enum members and raw values, nested subclass
    instances alternating with the model itself."""
    long = [SPECIAL[i % len(SPECIAL)] + (i if i % 3 == 0 else 0) for i in range(10_000)]
    records = [
        Record(id=0, kind=Kind.CREDIT, features=Features(amount=1.5, country="DE"), scores=[]),
        Record(id=1, kind=Kind.FRAUD, features=FeaturesChild(amount=-0.0, country=""), scores=[0.25],
               names=["a"], counts=[7], shade=Shade.DARK, maybe=Features(amount=2.0, country="FR"),
               label="x"),
        Record(id=2, kind=Kind.CREDIT, features=Features(amount=float("nan"), country="ü✓"), scores=long,
               names=["x" * 1000, "", "ß"], counts=[-(2**63), 0, 2**63 - 1], shade=Shade.LIGHT,
               maybe=FeaturesChild(amount=float("-inf"), country="IT", note="dropped")),
        Record(id=3, kind=Kind.FRAUD, features=FeaturesExtra(amount=float("inf"), country="ES", extra=1),
               scores=list(SPECIAL), maybe=FeaturesExtra(amount=3.0, country="PT", more=[1, 2])),
        unchecked(Record, id=4, kind="fraud", features=Features(amount=4.0, country="NL"), scores=(1, 2.5),
                  names=("t",), counts=[], shade=Shade.DARK, maybe=None, label=None),
        unchecked(Record, id=5, kind=OtherKind.CREDIT, features={"country": "BE", "amount": 5.0},
                  scores=[1.0, 3], names=[Kind.FRAUD], counts=[1], shade=Shade.LIGHT,
                  maybe={"amount": 6.0, "country": "LU"}, label="dict"),
        unchecked(Record, id=6, kind="credit", features=types.SimpleNamespace(amount=7.0, country="AT"),
                  scores={8.0}, names=[], counts=[], shade="light",
                  maybe=types.SimpleNamespace(amount=8.0, country="CH"), label=None),
    ]
    records += [Record(id=10 + i, kind=Kind.CREDIT if i % 2 else Kind.FRAUD,
                       features=(FeaturesChild if i % 3 else Features)(amount=i * 1.5, country="DE"),
                       scores=[0.1 * i] * (i % 4), maybe=None if i % 2 else Features(amount=i, country="X"))
                for i in range(200)]
    for many, suffix in ((False, "_one"), (True, "_many")):
        cfg = config(Record, unique_table + suffix)
        insert_all(grpc, cfg, records, many=many)
        rows = read_by_id(grpc, cfg)
        assert [r.id for r in rows] == [r.id for r in records]
        for got, want in zip(rows, records):
            feats = want.features
            amount = feats["amount"] if isinstance(feats, dict) else feats.amount
            country = feats["country"] if isinstance(feats, dict) else feats.country
            assert same_floats([got.features.amount], [float(amount)]), (got, want)
            assert got.features.country == country
            assert got.kind == Kind(want.kind if isinstance(want.kind, str) else want.kind.value)
            assert same_floats(got.scores, [float(s) for s in want.scores]), want.id
            assert got.names == [str(n.value if isinstance(n, enum.Enum) else n) for n in want.names]
            assert got.counts == list(want.counts)
            assert got.shade == (None if want.shade is None else Shade(want.shade))
            assert got.label == want.label
            if want.maybe is None:
                assert got.maybe is None
            else:
                m = want.maybe
                amount = m["amount"] if isinstance(m, dict) else m.amount
                country = m["country"] if isinstance(m, dict) else m.country
                assert same_floats([got.maybe.amount], [float(amount)]) and got.maybe.country == country


def test_model_with_extra_allow_round_trip(grpc, unique_table):
    cfg = config(RecordExtra, unique_table)
    records = [RecordExtra(id=i, kind=Kind.FRAUD, features=Features(amount=i, country="DE"),
                           scores=[float(i)] * i, maybe=None if i % 2 else Features(amount=-i, country="Y"),
                           **({"zzz": i, "aaa": "extra"} if i % 2 else {}))
               for i in range(5)]
    insert_all(grpc, cfg, records)
    rows = read_by_id(grpc, cfg)
    assert [(r.id, r.kind, r.features, r.scores, r.maybe) for r in rows] == [
        (r.id, r.kind, r.features, r.scores, r.maybe) for r in records]


def test_aliased_nested_models_read_by_attribute(grpc, unique_table):
    """A nested model whose attribute differs from its column (alias), in a struct, a
    list and a map value."""
    cfg = config(AliasedRecord, unique_table)
    records = [AliasedRecord(id=i, inner=Aliased(amount=i + 0.5, country="DE"),
                             inners=[Aliased(amount=float(k), country=str(k)) for k in range(i)],
                             by_name={f"k{k}": Aliased(amount=-k, country="M") for k in range(i)})
               for i in range(4)]
    insert_all(grpc, cfg, records)
    assert [r.model_dump() for r in read_by_id(grpc, cfg)] == [r.model_dump() for r in records]


def refused(grpc, cfg: TableConfig, good: list, bad, message: str) -> None:
    """bad is refused with message (a regex) after good records of the same shape
    (so any per-class or per-member state is warm), and nothing of it is stored."""
    with DatasetProducer(cfg, grpc, WriteConfig(scheduled_delay_secs=3600)) as producer:
        for r in good:
            producer.insert(r)
        with pytest.raises(SchemaError, match=message):
            producer.insert(bad)
        with pytest.raises(SchemaError, match=message):
            producer.insert_many([bad])
        assert producer.flush(timeout=60) == len(good)


@pytest.mark.parametrize("change,message", [
    (dict(kind="nope"), r"field 'kind': 'nope' is not one of the enum values"),
    (dict(kind=OtherKind.LOAN), r"field 'kind': 'loan' is not one of the enum values"),
    (dict(kind=1), r"field 'kind': expected an enum member or str, got int"),
    (dict(shade="dim"), r"field 'shade': 'dim' is not one of the enum values"),
    (dict(features=5), r"field 'features': expected an object \(model, dataclass or dict\), got int"),
    (dict(features=[1.0, "DE"]), r"field 'features': expected an object \(model, dataclass or dict\), got list"),
    (dict(features={"amount": 1.0}), r"field 'features.country': required value is missing \(dict\)"),
    (dict(features=types.SimpleNamespace(country="DE")),
     r"field 'features.amount': required value is missing \(SimpleNamespace\)"),
    (dict(features=Features.model_construct(country="DE")),
     r"field 'features.amount': required value is missing \(Features\)"),
    (dict(features=Features.model_construct(amount="1", country="DE")),
     r"field 'features.amount': expected float, got str"),
    (dict(features=None), r"field 'features': required value is None \(NoneType\)"),
    (dict(scores=[1.0, True]), r"field 'scores\[\]': expected float, got bool"),
    (dict(scores=[1.0, None]), r"field 'scores\[\]': required value is None \(NoneType\)"),
    (dict(scores=[1.0, 2**1024]), r"field 'scores\[\]': the integer is too large for a float \(int\)"),
    (dict(scores="abc"), r"field 'scores': expected a list, tuple or set, got str"),
    (dict(names=["a", 1]), r"field 'names\[\]': expected str, got int"),
    (dict(names=["a", "\ud800"]), r"field 'names\[\]': the string cannot be encoded as UTF-8"),
    (dict(counts=[1, 2**63]), r"field 'counts\[\]': the integer does not fit in 64 bits \(int\)"),
    (dict(counts=[1, 1.0]), r"field 'counts\[\]': expected int, got float"),
    (dict(maybe=FeaturesChild.model_construct(amount=1.0)),
     r"field 'maybe.country': required value is missing \(FeaturesChild\)"),
])
def test_refusals_unchanged_after_warm_rows(grpc, unique_table, change, message):
    cfg = config(Record, unique_table)
    good = [Record(id=i, kind=k, features=f(amount=1.0, country="DE"), scores=[1.0, 2.0], names=["n"],
                   counts=[1], shade=Shade.LIGHT, maybe=f(amount=2.0, country="FR"))
            for i, (k, f) in enumerate([(Kind.CREDIT, Features), (Kind.FRAUD, FeaturesChild)] * 2)]
    values = dict(id=99, kind=Kind.CREDIT, features=Features(amount=1.0, country="DE"), scores=[1.0],
                  names=[], counts=[], shade=Shade.DARK, maybe=None, label=None)
    values.update(change)
    refused(grpc, cfg, good, unchecked(Record, **values), message)


def test_enum_members_of_another_enum_are_checked_by_value(grpc, unique_table):
    """A member remembered for one field is never taken for another of the same value
    in a field that lacks it, and members of other enums are checked by value."""

    class Mini(BaseModel):
        id: int
        kind: Kind
        other: OtherKind

    cfg = config(Mini, unique_table)
    good = [Mini(id=1, kind=Kind.CREDIT, other=OtherKind.CREDIT),
            unchecked(Mini, id=2, kind=OtherKind.CREDIT, other=Kind.CREDIT)]
    refused(grpc, cfg, good, unchecked(Mini, id=3, kind=Kind.CREDIT, other=Kind.FRAUD),
            r"field 'other': 'fraud' is not one of the enum values")
    rows = read_by_id(grpc, cfg)
    assert [(r.id, r.kind, r.other) for r in rows] == [(1, Kind.CREDIT, OtherKind.CREDIT),
                                                       (2, Kind.CREDIT, OtherKind.CREDIT)]


def test_none_in_optional_enum_reads_back_none(grpc, unique_table):
    class WithShade(BaseModel):
        id: int
        shade: Optional[Shade] = None

    cfg = config(WithShade, unique_table)
    insert_all(grpc, cfg, [WithShade(id=1), WithShade(id=2, shade=Shade.DARK)])
    assert [(r.id, r.shade) for r in read_by_id(grpc, cfg)] == [(1, None), (2, Shade.DARK)]
