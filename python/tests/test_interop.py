"""Tables written by bifrost are plain Delta Lake tables: delta-rs (deltalake) and
polars.read_delta read the same rows with the expected types."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from bifrost import DatasetClient, DatasetProducer, TableConfig, WriteConfig

from models import Event, make_events

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

N = 500


@pytest.fixture(scope="module")
def table_path(server):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Event, catalog="test", schema_name="interop", table="events", partition_columns=["category"])
    events = make_events(N, seed=3)
    with DatasetProducer(cfg, grpc, WriteConfig(batch_size=128)) as producer:
        producer.insert_many(events)
        assert producer.flush() == N
    path = Path(server.data_dir) / "test" / "interop" / "events"
    assert (path / "_delta_log").is_dir()
    done = DatasetClient(grpc).maintain_dataset("test", "interop", "events", ["flush"])
    assert done["rows_flushed"] == N
    info = DatasetClient(grpc).describe_dataset("test", "interop", "events")
    assert (Path(server.data_dir) / info["location"]).resolve() == path.resolve()
    return path, events


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def check_rows(rows, events):
    by_id = {r["user_id"]: r for r in rows}
    assert len(rows) == len(by_id) == N
    for e in events:
        r = by_id[e.user_id]
        assert r["category"] == e.category
        assert r["value"] == e.value and r["count"] == e.count and r["flag"] == e.flag
        assert r["at"] == e.at
        assert r["day"] == e.day
        assert r["note"] == e.note
        assert list(r["tags"]) == e.tags
        assert list(r["scores"]) == e.scores
        assert r["tier"] == e.tier.value
        assert r["location"]["city"] == e.location.city and r["location"]["lat"] == e.location.lat
        assert r["location"]["lon"] == e.location.lon
        assert isinstance(r["scouter_batch_id"], str) and len(r["scouter_batch_id"]) == 36
        assert r["scouter_partition_date"] == r["scouter_created_at"].astimezone(dt.timezone.utc).date()


def test_deltalake_reads_rows_and_types(table_path):
    path, events = table_path
    delta = deltalake.DeltaTable(str(path))
    assert delta.metadata().partition_columns == ["scouter_partition_date", "category"]
    table = delta.to_pyarrow_table()
    schema = table.schema
    assert is_string(schema.field("user_id").type)
    assert schema.field("value").type == pa.float64()
    assert schema.field("count").type == pa.int64()
    assert schema.field("flag").type == pa.bool_()
    at_type = schema.field("at").type
    assert pa.types.is_timestamp(at_type) and at_type.unit == "us" and at_type.tz in ("UTC", "+00:00")
    assert schema.field("day").type == pa.date32()
    assert pa.types.is_list(schema.field("tags").type) or pa.types.is_large_list(schema.field("tags").type)
    assert pa.types.is_struct(schema.field("location").type)
    assert schema.field("scouter_partition_date").type == pa.date32()
    check_rows(table.to_pylist(), events)


def test_polars_read_delta(table_path):
    path, events = table_path
    frame = pl.read_delta(str(path))
    assert frame.height == N
    assert frame.schema["value"] == pl.Float64
    assert frame.schema["count"] == pl.Int64
    assert frame.schema["at"] == pl.Datetime("us", "UTC")
    assert frame.schema["day"] == pl.Date
    assert frame.schema["tags"] == pl.List(pl.String)
    check_rows(frame.to_dicts(), events)


def test_file_statistics_bound_every_file(table_path):
    """add.stats: numRecords, and min/max/nullCount per column that really bound each
    file's data (checked by reading every file with pyarrow)."""
    import json

    from urllib.parse import unquote

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path, events = table_path
    log = sorted((path / "_delta_log").glob("*.json"))
    adds = [json.loads(line)["add"] for f in log for line in f.read_text().splitlines() if '"add"' in line]
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == len(events)
    checked = 0
    for add in adds:
        stats = json.loads(add["stats"])
        data = pq.read_table(path / unquote(add["path"]))
        assert data.num_rows == stats["numRecords"]
        for column in ("value", "count", "user_id", "note"):
            values = data.column(column)
            if column in stats["minValues"]:
                assert stats["minValues"][column] <= pc.min(values).as_py()
                assert stats["maxValues"][column] >= pc.max(values).as_py()
                checked += 1
            if "nullCount" in stats:
                assert stats["nullCount"][column] == values.null_count
    assert checked > 0
    # delta-rs understands them: a filter on a data column skips files by their stats.
    table = deltalake.DeltaTable(str(path))
    actions = pa.table(table.get_add_actions(flatten=True))
    assert "min.value" in actions.column_names and "null_count.note" in actions.column_names
