"""SQL through DatasetClient against the real server: results checked against the
same computation done in Python over the inserted records; QueryResult formats."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from bifrost import DatasetClient, DatasetProducer, QueryResult, TableConfig, WriteConfig

from models import Event, make_events

N = 2000


@pytest.fixture(scope="module")
def loaded(server):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Event, catalog="test", schema_name="queries", table="events", partition_columns=["category"])
    events = make_events(N, seed=11)
    with DatasetProducer(cfg, grpc, WriteConfig(batch_size=333)) as producer:
        producer.insert_many(events)
        assert producer.flush() == N
    return DatasetClient(grpc, cfg), cfg, events


def test_read_returns_validated_models(loaded):
    client, cfg, events = loaded
    rows = client.read()
    assert len(rows) == N
    assert all(isinstance(r, Event) for r in rows)
    assert sorted(rows, key=lambda e: e.user_id) == events
    assert rows[0].at.tzinfo is not None
    assert len(client.read(limit=10)) == 10
    assert client.read(limit=0) == []


def test_where_and_group_by_match_python(loaded):
    client, cfg, events = loaded
    got = client.sql(
        f"SELECT category, count(*) AS n, sum(value) AS total, max(count) AS top "
        f"FROM {cfg.fqn} WHERE value > 10 AND flag = false GROUP BY category ORDER BY category"
    ).to_arrow().to_pylist()
    groups = defaultdict(list)
    for e in events:
        if e.value > 10 and not e.flag:
            groups[e.category].append(e)
    expected = [
        {"category": c, "n": len(g), "total": sum(e.value for e in g), "top": max(e.count for e in g)}
        for c, g in sorted(groups.items())
    ]
    assert [(r["category"], r["n"], r["top"]) for r in got] == [(r["category"], r["n"], r["top"]) for r in expected]
    for r, x in zip(got, expected):
        assert r["total"] == pytest.approx(x["total"])


def test_nested_enum_list_and_date_columns_query(loaded):
    client, cfg, events = loaded
    got = client.sql(
        f"SELECT tier, location.city AS city, count(*) AS n, sum(len(tags)) AS n_tags "
        f"FROM {cfg.fqn} WHERE day >= DATE '2025-02-01' GROUP BY ALL ORDER BY ALL"
    ).to_arrow().to_pylist()
    expected = defaultdict(lambda: [0, 0])
    for e in events:
        if e.day >= dt.date(2025, 2, 1):
            key = (e.tier.value, e.location.city)
            expected[key][0] += 1
            expected[key][1] += len(e.tags)
    assert [(r["tier"], r["city"], r["n"], r["n_tags"]) for r in got] == [
        (k[0], k[1], v[0], v[1]) for k, v in sorted(expected.items())]


def test_window_and_cte(loaded):
    client, cfg, events = loaded
    got = client.sql(
        f"WITH ranked AS (SELECT user_id, category, value, "
        f"row_number() OVER (PARTITION BY category ORDER BY value DESC, user_id) AS rn FROM {cfg.fqn}) "
        f"SELECT category, user_id FROM ranked WHERE rn = 1 ORDER BY category"
    ).to_arrow().to_pylist()
    best = {}
    for e in sorted(events, key=lambda e: (-e.value, e.user_id)):
        best.setdefault(e.category, e.user_id)
    assert [(r["category"], r["user_id"]) for r in got] == sorted(best.items())


def test_params_are_bound(loaded):
    client, cfg, events = loaded
    tricky = "x' OR '1'='1"
    n = client.sql(f"SELECT count(*) AS n FROM {cfg.fqn} WHERE category = ? AND value > ?", ["a", 0.0]).to_arrow()
    assert n.column("n")[0].as_py() == sum(1 for e in events if e.category == "a" and e.value > 0)
    n = client.sql(f"SELECT count(*) AS n FROM {cfg.fqn} WHERE user_id = $1 OR user_id = $1", [tricky]).to_arrow()
    assert n.column("n")[0].as_py() == 0
    n = client.sql(f"SELECT count(*) AS n FROM {cfg.fqn} WHERE \"at\" < ? AND note = '?'", [events[10].at]).to_arrow()
    assert n.column("n")[0].as_py() == 0  # the '?' inside the literal is not a placeholder
    from bifrost import QueryError

    with pytest.raises(QueryError, match="placeholder"):
        client.sql("SELECT ?", [])


def test_query_result_formats(loaded):
    client, cfg, events = loaded
    result = client.sql(f"SELECT user_id, value, \"at\", day, tier FROM {cfg.fqn} ORDER BY user_id LIMIT 50")
    assert isinstance(result, QueryResult)
    assert result.num_rows == len(result) == 50
    table = result.to_arrow()
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("day").type == pa.date32()
    assert table.column("user_id").to_pylist() == [e.user_id for e in events[:50]]
    assert isinstance(result.to_polars(), pl.DataFrame) and result.to_polars().height == 50
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame["user_id"]) == [e.user_id for e in events[:50]]
    assert pa.table(result).equals(table)  # __arrow_c_stream__
    assert pl.DataFrame(result).height == 50
    again = QueryResult(result.to_bytes())
    assert again.to_arrow().equals(table)
    assert "num_rows=50" in repr(result)


def test_zero_rows_keep_schema(loaded):
    client, cfg, _ = loaded
    result = client.sql(f"SELECT user_id, value, \"at\" FROM {cfg.fqn} WHERE false")
    table = result.to_arrow()
    assert result.num_rows == 0 and len(result) == 0
    assert table.column_names == ["user_id", "value", "at"]
    assert table.schema.field("value").type == pa.float64()
    assert result.to_polars().columns == ["user_id", "value", "at"]


def test_values_statement(loaded):
    client, _, _ = loaded
    assert client.sql("VALUES (1, 'a'), (2, 'b')").num_rows == 2


def test_list_and_describe(loaded):
    client, cfg, _ = loaded
    datasets = client.list_datasets()
    entry = next(d for d in datasets if (d["catalog"], d["schema_name"], d["table"]) == ("test", "queries", "events"))
    assert entry["fingerprint"] == cfg.fingerprint_str
    described = client.describe_dataset("test", "queries", "events")
    assert described["fingerprint"] == cfg.fingerprint_str
    assert described["partition_columns"] == ["category"]
    assert described["num_rows"] == N


def test_read_with_where_params_and_columns(loaded):
    client, cfg, events = loaded
    rows = client.read(where='category = ? AND "value" > ?', params=["a", 0.5])
    want = sorted((e for e in events if e.category == "a" and e.value > 0.5), key=lambda e: e.user_id)
    assert sorted(rows, key=lambda e: e.user_id) == want
    required = [n for n, f in Event.model_fields.items() if f.is_required()]
    partial = client.read(limit=5, columns=required)
    assert len(partial) == 5 and all(isinstance(r, Event) for r in partial)
    with pytest.raises(ValueError, match="required"):
        client.read(columns=required[:1])
    with pytest.raises(ValueError, match="not fields"):
        client.read(columns=required + ["nope"])
