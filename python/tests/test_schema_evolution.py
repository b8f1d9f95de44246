"""Additive schema evolution against the real server: TableConfig(schema_mode="merge")
adds nullable fields to an existing table (one Delta metaData commit that delta-rs and
Polars read), producers of every registered version keep inserting (their rows null in
the new columns), read() works with the old and the new model, time travel reads
before and after the change, and every non-additive change is refused with
SchemaEvolutionError listing each difference; strict mode stays strict."""
from __future__ import annotations

import json
import threading
from enum import Enum
from typing import List, Literal, Optional

import pytest
from pydantic import BaseModel

from bifrost import (DatasetClient, DatasetProducer, FingerprintMismatchError, SchemaEvolutionError,
                     TableConfig)

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")


class V1(BaseModel):
    id: int
    name: str


class V2(BaseModel):
    id: int
    name: str
    score: Optional[float] = None


class V3(BaseModel):
    id: int
    name: Optional[str] = None  # required -> nullable
    score: Optional[float] = None
    tags: Optional[List[str]] = None


def cfg(model, table: str, merge: bool = True) -> TableConfig:
    return TableConfig(model, catalog="evo", schema_name="s", table=table,
                       schema_mode="merge" if merge else None)


def delta_path(server, table: str) -> str:
    return str(server.data_dir / "evo" / "s" / table)


def test_evolve_twice_while_an_old_producer_keeps_inserting(server, grpc, unique_table):
    old = DatasetProducer(cfg(V1, unique_table, merge=False), grpc)
    stop = threading.Event()
    sent: List[int] = []

    def keep_inserting() -> None:
        i = 0
        while not stop.is_set() or i < 300:
            old.insert(V1(id=i, name=f"old{i}"))
            sent.append(i)
            i += 1
            if i % 50 == 0:
                old.flush(timeout=60)

    thread = threading.Thread(target=keep_inserting)
    thread.start()
    try:
        admin = DatasetClient(grpc)
        with DatasetProducer(cfg(V2, unique_table), grpc) as p2:
            p2.insert_many([V2(id=10_000 + i, name="v2", score=i / 2) for i in range(20)])
            assert p2.flush(timeout=60) == 20
        admin.maintain_dataset("evo", "s", unique_table, ["flush"])
        with DatasetProducer(cfg(V3, unique_table), grpc) as p3:
            p3.insert_many([V3(id=20_000 + i, tags=["a", str(i)]) for i in range(20)])
            assert p3.flush(timeout=60) == 20
    finally:
        stop.set()
        thread.join()
        assert old.flush(timeout=60) >= 0
        stats = old.stats()
        old.shutdown()
    assert stats.get("records_failed", stats.get("failed", 0)) in (0, None)
    admin = DatasetClient(grpc)
    info = admin.describe_dataset("evo", "s", unique_table)
    assert len(info["schema_fingerprints"]) == 3 and info["fingerprint"] == cfg(V3, unique_table).fingerprint_str
    # No record lost; old rows read with None in the new columns.
    rows = DatasetClient(grpc, cfg(V3, unique_table)).read()
    by_id = {r.id: r for r in rows}
    assert len(rows) == len(sent) + 40
    assert all(by_id[i] == V3(id=i, name=f"old{i}") for i in sent)
    assert by_id[10_003] == V3(id=10_003, name="v2", score=1.5)
    assert by_id[20_001] == V3(id=20_001, tags=["a", "1"])
    # The old model still reads (the new columns are not selected).
    old_rows = DatasetClient(grpc, cfg(V1, unique_table, merge=False)).read(where="id < 10000")
    assert sorted(r.id for r in old_rows) == sorted(sent)
    # Delta readers see the final schema; older files read as nulls there.
    admin.maintain_dataset("evo", "s", unique_table, ["flush"])
    dt = deltalake.DeltaTable(delta_path(server, unique_table))
    names = [f.name for f in dt.schema().fields]
    assert {"id", "name", "score", "tags"} <= set(names)
    frame = pl.read_delta(delta_path(server, unique_table))
    assert frame.height == len(sent) + 40
    assert frame.filter(pl.col("id") < 10_000)["score"].null_count() == len(sent)
    history = admin.history("evo", "s", unique_table)
    evolutions = [h for h in history if h["operation"] == "ADD COLUMNS"]
    assert len(evolutions) == 2 and [h["schema_version"] for h in evolutions] == [1, 2]
    assert history[-1]["schema_version"] == 2


def test_time_travel_across_a_schema_change(grpc, unique_table):
    with DatasetProducer(cfg(V1, unique_table, merge=False), grpc) as p:
        p.insert_many([V1(id=i, name="a") for i in range(3)])
        assert p.flush(timeout=60) == 3
    admin = DatasetClient(grpc)
    before = admin.maintain_dataset("evo", "s", unique_table, ["flush"])["delta_version"]
    with DatasetProducer(cfg(V2, unique_table), grpc) as p:
        p.insert(V2(id=9, name="b", score=2.0))
        assert p.flush(timeout=60) == 1
    after = admin.maintain_dataset("evo", "s", unique_table, ["flush"])["delta_version"]
    new = DatasetClient(grpc, cfg(V2, unique_table))
    assert sorted(r.id for r in new.read(version=before)) == [0, 1, 2]
    assert all(r.score is None for r in new.read(version=before))
    assert sorted((r.id, r.score) for r in new.read(version=after)) == [(0, None), (1, None), (2, None), (9, 2.0)]
    assert len(DatasetClient(grpc, cfg(V1, unique_table, merge=False)).read(version=before)) == 3


class Kind(str, Enum):
    a = "a"
    b = "b"


class Removed(BaseModel):
    id: int


class Retyped(BaseModel):
    id: str
    name: str


class Required(BaseModel):
    id: int
    name: str
    extra: int


class Tightened(BaseModel):
    id: int
    name: str
    note: str


class WithNote(BaseModel):
    id: int
    name: str
    note: Optional[str] = None


def test_every_refused_change_is_listed(grpc, unique_table):
    with DatasetProducer(cfg(WithNote, unique_table, merge=False), grpc) as p:
        p.insert(WithNote(id=1, name="x"))
        assert p.flush(timeout=60) == 1
    cases = [
        (Removed, ["field 'name' was removed (or renamed)", "field 'note' was removed"]),
        (Retyped, ["field 'id' changed type from Int64 to Utf8View"]),
        (Required, ["new field 'extra' is required", "field 'note' was removed"]),
        (Tightened, ["field 'note' became required (nullable -> required)"]),
    ]
    for model, messages in cases:
        with pytest.raises(SchemaEvolutionError) as caught:
            DatasetProducer(cfg(model, unique_table), grpc)
        for message in messages:
            assert message in str(caught.value), (model.__name__, str(caught.value))
        assert isinstance(caught.value, FingerprintMismatchError)
    info = DatasetClient(grpc).describe_dataset("evo", "s", unique_table)
    assert len(info["schema_fingerprints"]) == 1


def test_strict_mode_stays_strict_and_explains(grpc, unique_table):
    with DatasetProducer(cfg(V1, unique_table, merge=False), grpc) as p:
        p.insert(V1(id=1, name="x"))
        assert p.flush(timeout=60) == 1
    with pytest.raises(FingerprintMismatchError) as caught:
        DatasetProducer(cfg(V2, unique_table, merge=False), grpc)
    assert not isinstance(caught.value, SchemaEvolutionError)
    assert 'it only adds to the schema: register with schema_mode="merge"' in str(caught.value)
    assert "in the model, not in the table: score (Float64, nullable)" in str(caught.value)
    with pytest.raises(FingerprintMismatchError) as caught:
        DatasetProducer(cfg(Retyped, unique_table, merge=False), grpc)
    assert not isinstance(caught.value, SchemaEvolutionError)
    assert ("not an additive change, schema_mode=\"merge\" would refuse it too: field 'id' changed type "
            "from Int64 to Utf8View") in str(caught.value)
    with pytest.raises(FingerprintMismatchError):
        DatasetClient(grpc, cfg(V2, unique_table, merge=False))
    info = DatasetClient(grpc).describe_dataset("evo", "s", unique_table)
    assert info["schema_fingerprints"] == [cfg(V1, unique_table).fingerprint_str]
    with pytest.raises(ValueError, match="schema_mode"):
        TableConfig(V1, catalog="evo", schema_name="s", table=unique_table, schema_mode="overwrite")


def test_evolution_survives_a_restart(tmp_path):
    from conftest import ServerProcess
    from bifrost import GrpcConfig

    server = ServerProcess(tmp_path / "data")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        with DatasetProducer(cfg(V1, "restart", merge=False), grpc) as p:
            p.insert(V1(id=1, name="x"))
            assert p.flush(timeout=60) == 1
        with DatasetProducer(cfg(V2, "restart"), grpc) as p:
            p.insert(V2(id=2, name="y", score=1.0))
            assert p.flush(timeout=60) == 1
    finally:
        server.stop()
    entry = json.loads((tmp_path / "data" / "evo" / "s" / "restart" / "_bifrost" / "table.json").read_text())
    assert len(entry["schema_versions"]) == 2
    server = ServerProcess(tmp_path / "data")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        with DatasetProducer(cfg(V1, "restart", merge=False), grpc) as p:  # the old version still inserts
            p.insert(V1(id=3, name="z"))
            assert p.flush(timeout=60) == 1
        rows = DatasetClient(grpc, cfg(V2, "restart")).read()
        assert sorted((r.id, r.score) for r in rows) == [(1, None), (2, 1.0), (3, None)]
    finally:
        server.stop()


class KindV2(str, Enum):
    a = "a"
    b = "b"
    c = "c"


class WithKind(BaseModel):
    id: int
    kind: Kind


class WithKindV2(BaseModel):
    id: int
    kind: KindV2
    extra: Optional[str] = None


class WithKindFewer(BaseModel):
    id: int
    kind: Literal["a"]


def test_new_enum_values_need_no_evolution(grpc, unique_table):
    with DatasetProducer(cfg(WithKind, unique_table, merge=False), grpc) as p:
        p.insert(WithKind(id=1, kind=Kind.a))
        assert p.flush(timeout=60) == 1
    with DatasetProducer(cfg(WithKindV2, unique_table), grpc) as p:
        p.insert(WithKindV2(id=2, kind=KindV2.c, extra="x"))
        assert p.flush(timeout=60) == 1
    rows = DatasetClient(grpc, cfg(WithKindV2, unique_table)).read()
    assert sorted((r.id, r.kind.value, r.extra) for r in rows) == [(1, "a", None), (2, "c", "x")]
    # Enum values are not part of the fingerprint (the column is a string): fewer
    # values are the same schema version as the first, not a change.
    assert cfg(WithKindFewer, unique_table).fingerprint_str == cfg(WithKind, unique_table).fingerprint_str
    DatasetProducer(cfg(WithKindFewer, unique_table), grpc).shutdown()
    info = DatasetClient(grpc).describe_dataset("evo", "s", unique_table)
    assert len(info["schema_fingerprints"]) == 2


class Inner(BaseModel):
    a: int


class InnerV2(BaseModel):
    a: int
    b: Optional[str] = None


class Nested(BaseModel):
    id: int
    inner: Inner
    items: List[Inner]


class NestedV2(BaseModel):
    id: int
    inner: InnerV2
    items: List[InnerV2]


def test_fields_added_inside_structs(server, grpc, unique_table):
    with DatasetProducer(cfg(Nested, unique_table, merge=False), grpc) as p:
        p.insert(Nested(id=1, inner=Inner(a=1), items=[Inner(a=10)]))
        assert p.flush(timeout=60) == 1
    admin = DatasetClient(grpc)
    before = admin.maintain_dataset("evo", "s", unique_table, ["flush"])["delta_version"]
    with DatasetProducer(cfg(Nested, unique_table, merge=False), grpc) as p:
        p.insert(Nested(id=2, inner=Inner(a=2), items=[]))  # in the tail during the change
        assert p.flush(timeout=60) == 1
    with DatasetProducer(cfg(NestedV2, unique_table), grpc) as p:
        p.insert(NestedV2(id=3, inner=InnerV2(a=3, b="x"), items=[InnerV2(a=30, b="y")]))
        assert p.flush(timeout=60) == 1
    with DatasetProducer(cfg(Nested, unique_table, merge=False), grpc) as p:  # old version after it
        p.insert(Nested(id=4, inner=Inner(a=4), items=[Inner(a=40)]))
        assert p.flush(timeout=60) == 1
    new = DatasetClient(grpc, cfg(NestedV2, unique_table))
    expected = [NestedV2(id=1, inner=InnerV2(a=1), items=[InnerV2(a=10)]),
                NestedV2(id=2, inner=InnerV2(a=2), items=[]),
                NestedV2(id=3, inner=InnerV2(a=3, b="x"), items=[InnerV2(a=30, b="y")]),
                NestedV2(id=4, inner=InnerV2(a=4), items=[InnerV2(a=40)])]
    assert sorted(new.read(), key=lambda r: r.id) == expected
    admin.maintain_dataset("evo", "s", unique_table, ["flush", "optimize"])
    assert sorted(new.read(), key=lambda r: r.id) == expected
    assert new.read(version=before) == [expected[0]]
    frame = pl.read_delta(delta_path(server, unique_table)).sort("id")
    assert frame["inner"].to_list() == [{"a": 1, "b": None}, {"a": 2, "b": None}, {"a": 3, "b": "x"},
                                        {"a": 4, "b": None}]


def test_wal_of_both_versions_replays_after_a_crash(tmp_path):
    from conftest import ServerProcess
    from bifrost import GrpcConfig

    args = ["--flush-interval", "3600", "--flush-rows", "1000000"]
    server = ServerProcess(tmp_path / "data", args=args)
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        with DatasetProducer(cfg(V1, "crash", merge=False), grpc) as p:
            p.insert_many([V1(id=i, name="one") for i in range(5)])
            assert p.flush(timeout=60) == 5
        with DatasetProducer(cfg(V2, "crash"), grpc) as p:
            p.insert_many([V2(id=10 + i, name="two", score=float(i)) for i in range(5)])
            assert p.flush(timeout=60) == 5
        with DatasetProducer(cfg(V1, "crash", merge=False), grpc) as p:
            p.insert_many([V1(id=20 + i, name="one again") for i in range(5)])
            assert p.flush(timeout=60) == 5
        assert DatasetClient(grpc).describe_dataset("evo", "s", "crash")["tail_rows"] == 15
    finally:
        server.kill()  # nothing flushed: every row is only in the WAL
    server = ServerProcess(tmp_path / "data", args=args)
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        rows = DatasetClient(grpc, cfg(V2, "crash")).read()
        assert sorted((r.id, r.score) for r in rows) == (
            [(i, None) for i in range(5)] + [(10 + i, float(i)) for i in range(5)] + [(20 + i, None) for i in range(5)])
        DatasetClient(grpc).maintain_dataset("evo", "s", "crash", ["flush"])
        frame = pl.read_delta(delta_path(server, "crash"))
        assert frame.height == 15 and frame["score"].null_count() == 10
    finally:
        server.stop()
