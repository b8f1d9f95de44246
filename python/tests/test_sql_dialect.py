"""DataFusion-dialect SQL on the real server, with the `datafusion` package as the
oracle (issue 17). Rows are inserted through the producer, read back from the server
and registered in a DataFusion context under the name `t`; every query of
sql_dialect_corpus.sql then runs on both, `{t}` standing for the table (the
server's catalog.schema_name.table, DataFusion's `t`), and the results must match
value for value, column by column, and in type family (int, real, text, ...).

Corpus line format: a query, optionally followed by `#@` and options:
  approx=<rel>   approximate aggregates: relative tolerance (t-digest vs DuckDB's
                 sketch, HyperLogLog vs HyperLogLog)
  anytype        the types differ on purpose (docs/sql.md), values must match
Rows are compared as sorted multisets unless the query has an ORDER BY."""
from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from pathlib import Path
from typing import List, Optional

import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig
from bifrost import QueryError

datafusion = pytest.importorskip("datafusion")

CORPUS = Path(__file__).with_name("sql_dialect_corpus.sql")
UTC = dt.timezone.utc


class Reading(BaseModel):
    id: int
    user_id: str
    category: Optional[str] = None
    confidence: Optional[float] = None
    count: Optional[int] = None
    flag: Optional[bool] = None
    predicted_at: dt.datetime
    at: dt.datetime
    day: dt.date
    note: Optional[str] = None
    tags: List[str]
    scores: List[int]


def make_rows() -> List[Reading]:
    base = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    notes = ["", "NULL", "hello world", "Ünïcode ✓", "a,b,c", "u12-x7", "  padded  ", "O'Brien", None]
    confidences = [0.5, 0.95, 0.0, -0.0, 1e-300, 123456.789, -2.5, None, 0.75, 0.25]
    rows = []
    for i in range(40):
        rows.append(Reading(
            id=i,
            user_id=f"u{i % 13}",
            category=None if i % 11 == 10 else "abcd"[i % 4],
            confidence=confidences[i % len(confidences)],
            count=None if i % 9 == 8 else (i * 37) % 101 - 50 + (2**53 if i == 5 else 0),
            flag=None if i % 7 == 6 else i % 3 == 0,
            predicted_at=base + dt.timedelta(minutes=7 * i, seconds=i, microseconds=1001 * i),
            at=base - dt.timedelta(days=i, hours=i),
            day=dt.date(2026, 1, 1) + dt.timedelta(days=5 * i),
            note=notes[i % len(notes)],
            tags=[f"t{j}" for j in range(i % 4)],
            scores=[(i + j) % 5 for j in range(i % 5)],
        ))
    return rows


def load_corpus():
    entries = []
    for number, line in enumerate(CORPUS.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("--"):
            continue
        query, _, opts = text.partition("#@")
        options = {}
        for opt in opts.split():
            key, _, value = opt.partition("=")
            options[key] = value or True
        entries.append(pytest.param(query.strip(), options, id=f"L{number}"))
    return entries


@pytest.fixture(scope="module")
def both(server):
    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Reading, catalog="dialect", schema_name="df", table="readings")
    with DatasetProducer(cfg, grpc, WriteConfig(batch_size=16)) as producer:
        producer.insert_many(make_rows())
        assert producer.flush() == 40
    client = DatasetClient(grpc, cfg)
    table = client.sql(f"SELECT * FROM {cfg.fqn}").to_arrow()
    assert table.num_rows == 40
    ctx = datafusion.SessionContext()
    ctx.register_record_batches("t", [table.to_batches()])
    return client, cfg.fqn, ctx


def family(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_decimal(t):  # DuckDB: decimal literals, HUGEINT sums (docs/sql.md)
        return "decimal"
    if pa.types.is_floating(t):
        return "real"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_dictionary(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_fixed_size_list(t):
        return "list<" + family(t.value_type) + ">"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{family(t.field(i).type)}" for i in range(t.num_fields)) + ">"
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "interval"
    return str(t)


def norm(v):
    """A value in a comparable form: timestamps as UTC-aware µs datetimes (naive
    ones are UTC, the session time zone of both engines), decimals as floats."""
    if hasattr(v, "to_pydatetime"):  # pandas Timestamp (nanosecond values)
        return norm(v.to_pydatetime(warn=False))
    if hasattr(v, "to_pytimedelta"):
        return v.to_pytimedelta()
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if type(v).__name__ == "MonthDayNano" and v.months == 0:  # DuckDB INTERVAL
        return dt.timedelta(days=v.days, microseconds=v.nanoseconds // 1000)
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, memoryview):
        return bytes(v)
    return v


def same(a, b, rel: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b or math.isclose(a, b, rel_tol=max(rel, 1e-9), abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k], rel) for k in a)
    return a == b


def types_match(ours: pa.DataType, theirs: pa.DataType) -> bool:
    """Same family; DataFusion's Null type matches anything; decimals (DuckDB's
    literal and HUGEINT type) match ints and reals."""
    if pa.types.is_null(theirs) or pa.types.is_null(ours):
        return True
    if pa.types.is_map(ours) and pa.types.is_map(theirs):
        return types_match(ours.key_type, theirs.key_type) and types_match(ours.item_type, theirs.item_type)
    a, b = family(ours), family(theirs)
    if a.startswith("list<") and b.startswith("list<"):
        return types_match(ours.value_type, theirs.value_type)
    if a.startswith("struct<") and b.startswith("struct<"):
        return [f.name for f in ours] == [f.name for f in theirs] and all(
            types_match(f.type, g.type) for f, g in zip(ours, theirs))
    numeric = {"int", "real", "decimal"}
    return a == b or (a in numeric and b in numeric and "decimal" in (a, b))


def rows_of(table: pa.Table):
    columns = [[norm(v) for v in column.to_pylist()] for column in table.columns]
    return [tuple(column[i] for column in columns) for i in range(table.num_rows)]


def sort_key(row):
    def key(v):
        if isinstance(v, bool) or v is None:
            return repr(v)
        if isinstance(v, (int, float)):
            return "n" if math.isnan(v) else f"{float(v) + 0.0:.6g}"
        if isinstance(v, list):
            return [key(x) for x in v]
        if isinstance(v, dict):
            return {k: key(x) for k, x in v.items()}
        return repr(v)
    return repr([key(v) for v in row])


def ordered(query: str) -> bool:
    """True when the query has an ORDER BY outside parentheses."""
    depth, text = 0, query.lower()
    for i, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and text.startswith("order by", i):
            return True
    return False


def run_ours(client, fqn, query):
    return client.sql(query.replace("{t}", fqn)).to_arrow()


def run_oracle(ctx, query):
    return ctx.sql(query.replace("{t}", "t")).to_arrow_table()


@pytest.mark.parametrize("query,options", load_corpus())
def test_corpus_matches_datafusion(both, query, options):
    client, fqn, ctx = both
    expected = run_oracle(ctx, query)
    got = run_ours(client, fqn, query)
    assert got.num_columns == expected.num_columns, (got.schema, expected.schema)
    if "anytype" not in options:
        for g, e in zip(got.columns, expected.columns):
            if g.null_count == len(g) and e.null_count == len(e):
                continue  # an all-NULL column: DuckDB types a bare NULL as INTEGER
            assert types_match(g.type, e.type), (query, g.type, e.type)
    rows_got = rows_of(got)
    rows_exp = rows_of(expected)
    if not ordered(query):
        rows_got.sort(key=sort_key)
        rows_exp.sort(key=sort_key)
    rel = float(options.get("approx", 0))
    assert len(rows_got) == len(rows_exp), (query, rows_got, rows_exp)
    for g, e in zip(rows_got, rows_exp):
        assert all(same(x, y, rel) for x, y in zip(g, e)), f"{query}\n ours:       {g}\n datafusion: {e}"


# ---- functions refused with guidance ------------------------------------------------

REFUSED = {
    "approx_percentile_cont_with_weight": "SELECT approx_percentile_cont_with_weight(1, 0.5) WITHIN GROUP (ORDER BY id) FROM {t}",
    "arrow_field": "SELECT arrow_field(id) FROM {t}",
    "arrow_metadata": "SELECT arrow_metadata(id) FROM {t}",
    "with_metadata": "SELECT with_metadata(id, 'k', 'v') FROM {t}",
    "try_cast_to_type": "SELECT try_cast_to_type('x', 1)",
    "input_file_name": "SELECT input_file_name() FROM {t}",
    "file_row_index": "SELECT file_row_index() FROM {t}",
    "sha224": "SELECT sha224('a')",
    "sha384": "SELECT sha384(note) FROM {t}",
    "sha512": "SELECT sha512('a')",
    "arrow_cast": "SELECT arrow_cast(id, note) FROM {t}",  # the type must be a literal
    "arrow_try_cast": "SELECT arrow_try_cast(id, 'Dictionary(Int32, Utf8)') FROM {t}",
    "named_struct": "SELECT named_struct(note, 1) FROM {t}",  # names must be literals
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_function_names_itself_and_the_alternative(both, name):
    client, fqn, ctx = both
    with pytest.raises(QueryError) as info:
        run_ours(client, fqn, REFUSED[name])
    message = str(info.value)
    assert f"DataFusion function {name}()" in message and ("use" in message or "write" in message), message


# ---- the function reference, checked off ---------------------------------------------

# DataFusion functions whose name exists here with a documented difference (docs/sql.md,
# "Differences that remain"); not in the corpus because the results differ on purpose.
DIFFERENT = {"array_push_front", "cardinality", "list_zip", "row", "sha256", "version", "union_extract", "union_tag"}


def datafusion_functions():
    ctx = datafusion.SessionContext(datafusion.SessionConfig().with_information_schema(True))
    rows = ctx.sql("SELECT DISTINCT routine_name FROM information_schema.routines").to_arrow_table()
    return sorted(set(rows.column(0).to_pylist()))


def test_every_datafusion_function_is_covered_refused_or_documented():
    corpus = CORPUS.read_text().lower()
    sql_md = (Path(__file__).resolve().parents[2] / "docs" / "sql.md").read_text()
    names = datafusion_functions()
    assert len(names) > 250
    uncovered = []
    for name in names:
        called = re.search(r"\b" + re.escape(name) + r"\s*\(", corpus)
        if not called and name not in REFUSED and name not in DIFFERENT:
            uncovered.append(name)
        assert f"`{name}`" in sql_md, f"{name} is not in the function reference of docs/sql.md"
    assert not uncovered, uncovered
    for name in DIFFERENT:  # a difference is documented where the name is listed
        assert f"`{name}`" in sql_md


def test_corpus_size_and_reach():
    assert len(load_corpus()) >= 300


# ---- the DuckDB dialect keeps working -----------------------------------------------

DUCKDB_DIALECT = [
    ("SELECT to_timestamp(1.5)", [dt.datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)]),
    ("SELECT typeof(to_timestamp(1))", ["TIMESTAMP WITH TIME ZONE"]),
    ("SELECT encode('a')", [b"a"]),
    ("SELECT decode('a'::BLOB)", ["a"]),
    ("SELECT to_hex(255), sha256('abc')", ["FF", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]),
    ("SELECT lpad('a', 3, 'x'), rpad('a', 2, 'y')", ["xxa", "ay"]),
    ("SELECT octet_length('ab'::BLOB), octet_length('✓')", [2, 3]),
    ("SELECT array_to_string([1, 2], '-'), array_to_string([], '-')", ["1-2", None]),
    ("SELECT string_to_array('a,b', ','), string_to_array('', ',')", [["a", "b"], [""]]),
    ("SELECT array_push_front([1], 2), cardinality(MAP {1: 2})", [[2, 1], 1]),
    ("SELECT list_value(1, 2), [1, 2, 3][2], list_transform([1, 2], lambda x: x + 1)", [[1, 2], 2, [2, 3]]),
    ("SELECT struct_pack(a := 1), {'b': 2}", [{"a": 1}, {"b": 2}]),
    ("SELECT CAST({'a': 1} AS STRUCT(a BIGINT)), 7 // 2, 7 / 2", [{"a": 1}, 3, 3.5]),
    ("SELECT first(x ORDER BY x DESC), last(x ORDER BY x DESC) FROM range(3) r(x)", [2, 0]),
    ("SELECT current_timestamp IS NOT NULL, now() IS NOT NULL, current_date IS NOT NULL", [True, True, True]),
    ("SELECT TIMESTAMP '2026-01-01 10:00:00' AT TIME ZONE 'UTC'", [dt.datetime(2026, 1, 1, 10, tzinfo=UTC)]),
    ("SELECT time_bucket(INTERVAL '1 hour', TIMESTAMP '2026-01-01 10:30:00')", [dt.datetime(2026, 1, 1, 10)]),
    ("SELECT approx_quantile(x, 0.5), quantile_cont(x, 0.5) FROM range(5) r(x)", [2, 2.0]),
    ("SELECT regexp_matches('abc', 'b'), 'abc' ~ 'b', regexp_extract('u12', 'u(\\d+)', 1)", [True, False, "12"]),
    ("SELECT strftime(DATE '2026-12-01', '%d/%m'), strptime('01/12/2026', '%d/%m/%Y')", ["01/12", dt.datetime(2026, 12, 1)]),
]


@pytest.mark.parametrize("query,expected", DUCKDB_DIALECT, ids=[q for q, _ in DUCKDB_DIALECT])
def test_duckdb_dialect_unchanged(both, query, expected):
    client, fqn, ctx = both
    row = [column[0].as_py() for column in client.sql(query).to_arrow().columns]
    if expected is not None:
        assert row == expected


# ---- identifiers that are DuckDB keywords ------------------------------------------------

def test_at_column_works_unquoted_and_keeps_at_time_zone(both):
    client, fqn, ctx = both
    got = client.sql(f"SELECT at, at AT TIME ZONE 'UTC' AS local FROM {fqn} WHERE id = 0").to_arrow()
    assert got.column("at")[0].as_py() == dt.datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert got.column("local")[0].as_py() == dt.datetime(2026, 12, 1, 10)


def test_keyword_column_error_says_to_quote_it(both):
    client, fqn, ctx = both
    with pytest.raises(QueryError) as info:
        client.sql('SELECT id, left FROM (SELECT 1 AS id, 2 AS "left") AS s').to_arrow()
    assert "write a column of that name in double quotes" in str(info.value) and '"left"' in str(info.value)
    assert client.sql('SELECT "left" FROM (SELECT 2 AS "left") AS s').to_arrow().column(0)[0].as_py() == 2
    with pytest.raises(QueryError) as info:  # no hint for a keyword used as syntax
        client.sql(f"SELECT id FROM {fqn} a LEFT JOIN {fqn} b ON a.id = b.id WHERE").to_arrow()
    assert "hint" not in str(info.value)


@pytest.mark.parametrize("query,advice", [
    ("SELECT cardinality(scores) FROM {t}", "array_length(array)"),
    ("SELECT note ~* 'HEL' FROM {t}", "regexp_like(s, pattern, 'i')"),
    ("SELECT map('a', 1, 'b', 2)", "map(make_array(k1, k2), make_array(v1, v2))"),
])
def test_datafusion_spelling_errors_name_the_equivalent(both, query, advice):
    client, fqn, ctx = both
    run_oracle(ctx, query)  # valid DataFusion SQL
    with pytest.raises(QueryError) as info:
        run_ours(client, fqn, query)
    assert advice in str(info.value)
