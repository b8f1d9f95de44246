"""The producer's record paths against the real server: binary rows read from model
instances (flat models) give exactly what the JSON path gives, many threads lose
and duplicate nothing, a poisoned record does not stall the queue, insert_arrow
converts and checks columns, a forked child cannot use its parent's producer, and
the C API works from a C program."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
from pathlib import Path
from typing import Optional

import polars as pl
import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, ProducerClosedError, SchemaError, TableConfig, WriteConfig

from conftest import REPO


class Flat(BaseModel):
    id: int
    name: str
    score: float
    ok: bool
    at: dt.datetime
    note: Optional[str] = None


class FlatChild(Flat):
    extra: str = "ignored by the table"


def flat_config(table: str) -> TableConfig:
    return TableConfig(Flat, catalog="test", schema_name="paths", table=table)


def read_sorted(grpc, cfg: TableConfig) -> list:
    return sorted(DatasetClient(grpc, cfg).read(), key=lambda r: r.id)


def stats_add_up(s: dict) -> bool:
    return s["inserted"] == s["acknowledged"] + s["queued"] + s["in_flight"] + s["dropped"] + s["failed"]


def tricky_records() -> list:
    paris = dt.timezone(dt.timedelta(hours=2))
    return [
        Flat(id=1, name="plain", score=0.1, ok=True, at=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)),
        Flat(id=2, name="ünïcödé ✓ \"quoted\" \\ \n tab\t", score=-1e300, ok=False,
             at=dt.datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=paris), note="x"),
        Flat(id=3, name="", score=5, ok=True, at=dt.datetime(1969, 12, 31, 23, 59, 59, 1)),  # naive = UTC
        Flat(id=4, name="z" * 5000, score=2.5e-310, ok=False, at="2030-02-03T04:05:06.000007-03:30", note=""),
        FlatChild(id=5, name="subclass", score=3.0, ok=True, at=dt.datetime(2000, 2, 29, tzinfo=dt.timezone.utc)),
        Flat(id=6, name="big", score=float(2**60), ok=True, at=dt.datetime(2262, 4, 11, tzinfo=dt.timezone.utc),
             note=None),
    ]


def test_binary_rows_equal_the_json_path(grpc, unique_table):
    """The same records through the binary row path and the JSON path read back
    equal (time zones, naive datetimes, escapes, long strings, subclasses)."""
    records = tricky_records()
    fast_cfg, json_cfg = flat_config(unique_table + "_fast"), flat_config(unique_table + "_json")
    with DatasetProducer(fast_cfg, grpc) as fast:
        assert fast.insert_many(records) == len(records)
        assert fast.flush() == len(records)
    with DatasetProducer(json_cfg, grpc) as slow:
        for r in records:  # the C JSON path (bf_producer_insert_json)
            slow._core.insert(r.model_dump_json())
        assert slow.flush() == len(records)
    fast_rows, json_rows = read_sorted(grpc, fast_cfg), read_sorted(grpc, json_cfg)
    assert fast_rows == json_rows
    expected = [Flat.model_validate(r.model_dump(include=set(Flat.model_fields))) for r in records]
    assert [r.model_dump() for r in fast_rows] == [
        {**e.model_dump(), "at": e.at if e.at.tzinfo else e.at.replace(tzinfo=dt.timezone.utc)} for e in expected]


def test_many_threads_every_record_accounted(grpc, unique_table):
    cfg = flat_config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=500, scheduled_delay_secs=0.05,
                                                      max_queue_rows=2000))
    now = dt.datetime.now(dt.timezone.utc)

    def run(k: int) -> None:
        for i in range(4000):
            producer.insert(Flat(id=k * 100_000 + i, name=f"t{k}", score=i, ok=i % 2 == 0, at=now))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for _ in range(20):  # stats are consistent while inserts are running
        assert stats_add_up(producer.stats())
    for t in threads:
        t.join()
    assert producer.flush(timeout=120) == 32_000
    stats = producer.stats()
    assert stats["inserted"] == stats["acknowledged"] == 32_000
    assert stats["queued"] == stats["in_flight"] == stats["failed"] == stats["dropped"] == 0
    producer.shutdown()
    ids = DatasetClient(grpc).sql(f"SELECT id FROM {cfg.fqn}").to_arrow().column("id").to_pylist()
    assert sorted(ids) == sorted(k * 100_000 + i for k in range(8) for i in range(4000))


def test_poisoned_record_does_not_stall_later_records(grpc, unique_table):
    """A record that cannot be stored (here JSON missing required fields, through
    the C JSON path) fails alone on the sending thread; the records before and
    after it are stored. (A model instance with such values is refused at insert:
    test_producer_exact.py.)"""
    cfg = flat_config(unique_table)
    now = dt.datetime.now(dt.timezone.utc)
    producer = DatasetProducer(cfg, grpc, WriteConfig(batch_size=10))
    for i in range(15):
        producer.insert(Flat(id=i, name="good", score=1.0, ok=True, at=now))
    producer._core.insert('{"id": 15, "name": null, "score": "not a number", "ok": true}')
    for i in range(16, 40):
        producer.insert(Flat(id=i, name="good", score=1.0, ok=True, at=now))
    with pytest.raises(Exception, match="1 record\\(s\\) failed"):
        producer.flush(timeout=60)
    stats = producer.stats()
    assert stats["failed"] == 1 and stats["acknowledged"] == 39 and stats_add_up(stats)
    assert "name" in stats["last_error"] or "score" in stats["last_error"]
    producer.insert(Flat(id=40, name="after", score=1.0, ok=True, at=now))
    assert producer.flush(timeout=60) == 1
    producer.shutdown()
    assert [r.id for r in read_sorted(grpc, cfg)] == [i for i in range(41) if i != 15]


def test_insert_arrow_converts_and_checks_columns(grpc, unique_table):
    cfg = flat_config(unique_table)
    producer = DatasetProducer(cfg, grpc)
    # Any column order, an optional column left out, naive timestamps (UTC), ints for floats.
    table = pa.table({
        "at": pa.array([dt.datetime(2025, 1, 1, 0, 0, i) for i in range(3)]),
        "ok": [True, False, True],
        "score": pa.array([1, 2, 3], type=pa.int32()),
        "name": ["a", "b", "c"],
        "id": [1, 2, 3],
    })
    assert producer.insert_arrow(table) == 3
    frame = pl.DataFrame({"id": [4, 5], "name": ["d", "e"], "score": [0.5, None], "ok": [True, True],
                          "at": ["2025-01-02T00:00:00+01:00", "2025-01-02T00:00:00"], "note": ["n", None]})
    with pytest.raises(SchemaError, match="'score' is required but has 1 nulls"):
        producer.insert_arrow(frame)
    assert producer.insert_arrow(frame.with_columns(pl.col("score").fill_null(0.0))) == 2
    with pytest.raises(SchemaError, match="'score' has type string"):
        producer.insert_arrow(pa.table({"id": [9], "name": ["x"], "score": ["abc"], "ok": [True],
                                        "at": [dt.datetime(2025, 1, 1)]}))
    with pytest.raises(SchemaError, match="required column 'ok' is missing"):
        producer.insert_arrow(pa.table({"id": [9], "name": ["x"], "score": [1.0],
                                        "at": [dt.datetime(2025, 1, 1)]}))
    with pytest.raises(SchemaError, match="bogus"):
        producer.insert_arrow(pa.table({"bogus": [1]}))
    with pytest.raises(TypeError, match="insert_arrow"):
        producer.insert_arrow([{"id": 1}])
    assert producer.flush() == 5
    stats = producer.stats()
    producer.shutdown()
    assert stats["acknowledged"] == 5 and stats["failed"] == 0 and stats_add_up(stats)
    rows = read_sorted(grpc, cfg)
    assert [(r.id, r.score, r.note) for r in rows] == [(1, 1.0, None), (2, 2.0, None), (3, 3.0, None),
                                                        (4, 0.5, "n"), (5, 0.0, None)]
    assert rows[0].at == dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    assert rows[3].at == dt.datetime(2025, 1, 1, 23, tzinfo=dt.timezone.utc)
    assert rows[4].at == dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)


def test_insert_arrow_plain_and_large_strings_round_trip(grpc, unique_table):
    """utf8 and large_utf8 columns (pyarrow's defaults) go to a Utf8View column
    without conversion; values, nulls and chunk boundaries come back unchanged."""
    cfg = flat_config(unique_table)
    names = ["", "short", "exactly12chr", "a longer string past the inline limit", "ünïcødé ✓"] * 40
    notes = [None if i % 3 else f"note {i}" for i in range(len(names))]
    base = {"id": list(range(len(names))), "score": [float(i) for i in range(len(names))],
            "ok": [i % 2 == 0 for i in range(len(names))], "at": [dt.datetime(2025, 3, 1)] * len(names)}
    plain = pa.table({**base, "name": pa.array(names, pa.string()), "note": pa.array(notes, pa.string())})
    large = pa.table({**base, "name": pa.array(names, pa.large_string()), "note": pa.array(notes, pa.large_string())})
    with DatasetProducer(cfg, grpc) as producer:
        assert producer.insert_arrow(pa.concat_tables([plain.slice(0, 77), plain.slice(77)])) == len(names)
        assert producer.insert_arrow(large.to_batches(max_chunksize=64)[1]) == 64
        assert producer.flush() == len(names) + 64
    got = DatasetClient(grpc).sql(f"SELECT id, name, note FROM {cfg.fqn} ORDER BY id, name").to_arrow()
    expected = sorted([(i, names[i], notes[i]) for i in range(len(names))]
                      + [(i, names[i], notes[i]) for i in range(64, 128)])
    assert sorted(zip(*(got.column(c).to_pylist() for c in ("id", "name", "note")))) == expected


def test_batches_of_alternating_string_layouts_in_one_tail_read_back_exactly(grpc, unique_table):
    """The server remembers the last batch schema it checked against the table's
    columns; batches whose string columns alternate between utf8, large_utf8,
    utf8_view and dictionary encoding, all unflushed in one tail, are each read with
    their own layout, both from the tail and from the flushed files."""
    cfg = flat_config(unique_table)
    encodings = [pa.string(), pa.large_string(), pa.string(), pa.string_view(), "dict", pa.large_string(),
                 pa.string()]

    def batch(k, encoding):
        ids = list(range(k * 100, k * 100 + 100))
        names = [f"name {i} " + "x" * (i % 17) for i in ids]
        notes = [None if i % 4 else f"note {i}" for i in ids]
        if encoding == "dict":
            name_col, note_col = pa.array(names).dictionary_encode(), pa.array(notes).dictionary_encode()
        else:
            name_col, note_col = pa.array(names, encoding), pa.array(notes, encoding)
        return pa.table({"id": ids, "name": name_col, "score": [float(i) for i in ids],
                         "ok": [i % 2 == 0 for i in ids], "at": [dt.datetime(2025, 3, 1)] * 100,
                         "note": note_col}), list(zip(ids, names, notes))

    expected = []
    client = DatasetClient(grpc)
    with DatasetProducer(cfg, grpc, WriteConfig(scheduled_delay_secs=3600)) as producer:
        for k, encoding in enumerate(encodings):
            table, rows = batch(k, encoding)
            expected += rows
            assert producer.insert_arrow(table) == 100
            assert producer.flush() == 100  # each batch its own request, into the same tail
        query = f"SELECT id, name, note FROM {cfg.fqn} ORDER BY id"
        got = client.sql(query).to_arrow()
        assert list(zip(*(got.column(c).to_pylist() for c in ("id", "name", "note")))) == expected
        client.maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])
        got = client.sql(query).to_arrow()
        assert list(zip(*(got.column(c).to_pylist() for c in ("id", "name", "note")))) == expected


def test_forked_child_cannot_use_the_parents_producer(grpc, unique_table):
    cfg = flat_config(unique_table)
    producer = DatasetProducer(cfg, grpc, WriteConfig(scheduled_delay_secs=3600))
    now = dt.datetime.now(dt.timezone.utc)
    producer.insert(Flat(id=1, name="parent", score=1.0, ok=True, at=now))
    pid = os.fork()
    if pid == 0:  # child: the inherited producer refuses, and exit does not wait for it
        code = 0
        try:
            producer.insert(Flat(id=2, name="child", score=1.0, ok=True, at=now))
            code = 1
        except ProducerClosedError as exc:
            code = 0 if "fork" in str(exc) else 2
        except BaseException:  # noqa: BLE001
            code = 3
        from bifrost import _producer
        _producer._shutdown_live_producers()  # what atexit runs: must not touch it
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    producer.insert(Flat(id=3, name="parent", score=1.0, ok=True, at=now))
    assert producer.flush(timeout=60) == 2
    producer.shutdown()
    assert [r.id for r in read_sorted(grpc, cfg)] == [1, 3]


def test_c_producer_example(server, grpc, unique_table):
    """examples/c_producer.c: a C program inserting JSON and binary rows."""
    binary = REPO / "build" / "c_producer_example"
    if not binary.exists():
        pytest.fail(f"{binary} not built (make build)")
    table = unique_table + "_c"
    out = subprocess.run([str(binary), server.uri, "test", "paths", table, "1000"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "acknowledged=1000" in out.stdout and "failed=1" in out.stdout
    rows = DatasetClient(grpc).sql(f"SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi "
                                   f"FROM test.paths.{table}").to_arrow().to_pylist()[0]
    assert rows == {"n": 1000, "d": 1000, "lo": 0, "hi": 999}


def test_insert_arrow_checks_enum_values(grpc, unique_table):
    from enum import Enum

    class Level(str, Enum):
        LOW = "low"
        HIGH = "high"

    class Alert(BaseModel):
        id: int
        level: Level

    cfg = TableConfig(Alert, catalog="test", schema_name="paths", table=unique_table)
    with DatasetProducer(cfg, grpc) as producer:
        assert producer.insert_arrow(pa.table({"id": [1, 2], "level": ["low", "high"]})) == 2
        with pytest.raises(Exception, match="column 'level' has 'medium', not one of its enum values"):
            producer.insert_arrow(pa.table({"id": [3], "level": ["medium"]}))
        assert producer.flush() == 2
    rows = sorted(DatasetClient(grpc, cfg).read(), key=lambda r: r.id)
    assert [(r.id, r.level) for r in rows] == [(1, Level.LOW), (2, Level.HIGH)]
