"""Query results stream: sql() returns after the first pieces, to_reader() yields
batches as the rest arrives (client memory bounded by a few pieces, measured in a
subprocess), the Arrow PyCapsule stream feeds pyarrow, Polars and DuckDB directly,
and the buffered conversions still work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from bifrost import DatasetClient, GrpcConfig, QueryResult
from bifrost._result import PREFETCH_BYTES

# ~2M rows x (8 + 8 + 16 + 4) bytes: several 4 MiB pieces, more than sql() prefetches
BIG = "SELECT range AS i, range * 2 AS j, printf('%016d', range) AS s FROM range(2000000)"


@pytest.fixture
def client(server):
    with DatasetClient(GrpcConfig(server_uri=server.uri)) as c:
        yield c


def test_small_result_is_complete_and_rereadable(client):
    result = client.sql("SELECT range AS i FROM range(10)")
    assert result.is_complete
    assert result.to_reader().read_all().column("i").to_pylist() == list(range(10))
    assert result.to_reader().read_all().num_rows == 10  # any number of times
    assert result.to_arrow().num_rows == 10 and len(result) == 10
    assert pa.ipc.open_stream(result.to_bytes()).read_all().num_rows == 10
    assert result.to_pandas()["i"].tolist() == list(range(10))
    assert result.to_polars()["i"].to_list() == list(range(10))


def test_zero_rows_stream_keeps_schema(client):
    reader = client.sql("SELECT range AS i, 'x' AS s FROM range(0)").to_reader()
    assert reader.schema.names == ["i", "s"]
    assert reader.read_all().num_rows == 0


def test_large_result_streams_batch_by_batch(client):
    result = client.sql(BIG)
    assert not result.is_complete  # more than the prefetch is still on the wire
    reader = result.to_reader()
    assert isinstance(reader, pa.RecordBatchReader)
    rows = batches = 0
    expected_i = 0
    for batch in reader:
        assert batch.column("i")[0].as_py() == expected_i
        expected_i += batch.num_rows
        rows += batch.num_rows
        batches += 1
    assert rows == 2_000_000 and batches > 1
    with pytest.raises(ValueError, match="already consumed"):
        result.to_arrow()
    with pytest.raises(ValueError, match="already consumed"):
        result.to_reader()


def test_large_result_buffered_paths_still_work(client):
    result = client.sql(BIG)
    table = result.to_arrow()
    assert table.num_rows == 2_000_000
    assert table.column("j")[1_999_999].as_py() == 3_999_998
    assert len(result.to_bytes()) > PREFETCH_BYTES
    assert result.to_reader().read_all().num_rows == 2_000_000  # complete now: rereadable


def test_pycapsule_consumers_read_the_stream(client):
    import duckdb
    import polars as pl

    assert pa.table(client.sql(BIG)).num_rows == 2_000_000
    assert pl.DataFrame(client.sql(BIG)).height == 2_000_000
    streamed = client.sql(BIG)  # noqa: F841 - DuckDB finds it by name
    assert duckdb.sql("SELECT count(*), max(j) FROM streamed").fetchall() == [(2_000_000, 3_999_998)]
    small = client.sql("SELECT 1 AS x")
    assert pa.table(small).to_pylist() == [{"x": 1}]


def test_closing_an_unread_result_cancels_it(client):
    result = client.sql(BIG)
    assert not result.is_complete
    result.close()
    with pytest.raises(ValueError, match="closed"):
        result.to_arrow()
    assert "closed" in repr(result)
    with client.sql(BIG) as r:
        assert next(iter(r.to_reader())).num_rows > 0
    assert client.sql("SELECT 5 AS x").to_arrow().column("x")[0].as_py() == 5


def test_error_in_first_pieces_raises_in_sql(client):
    from bifrost import QueryError

    with pytest.raises(QueryError):
        client.sql("SELECT * FROM no_such.schema_x.table_y")


def test_query_result_from_bytes_still_works():
    sink = pa.BufferOutputStream()
    table = pa.table({"a": [1, 2, 3]})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    result = QueryResult(sink.getvalue().to_pybytes())
    assert result.is_complete and result.to_reader().read_all() == table and pa.table(result) == table


_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import pyarrow as pa
    from bifrost import DatasetClient, GrpcConfig

    client = DatasetClient(GrpcConfig(server_uri=sys.argv[1], timeout_secs=600))
    # warm up: the same code path on a small result, so imports and pools are counted
    for batch in client.sql("SELECT range AS i, range * 2 AS j, printf('%016d', range) AS s "
                            "FROM range(100000)").to_reader():
        pass
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = client.sql("SELECT range AS i, range * 2 AS j, printf('%016d', range) AS s FROM range(10000000)")
    rows = 0
    arrow_bytes = 0
    for batch in result.to_reader():
        rows += batch.num_rows
        arrow_bytes += batch.nbytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": rows, "arrow_bytes": arrow_bytes, "growth": peak - base}))
""")


def test_ten_million_rows_stream_in_bounded_memory(server, tmp_path):
    script = tmp_path / "stream_rss.py"
    script.write_text(_RSS_SCRIPT)
    out = subprocess.run([sys.executable, str(script), server.uri], capture_output=True, text=True,
                         timeout=900, env={**os.environ})
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 10_000_000
    assert figures["arrow_bytes"] > 300 << 20  # the result is several hundred MB
    assert figures["growth"] < figures["arrow_bytes"] / 3, figures


def test_error_mid_stream_raises_from_the_reader(tmp_path):
    from bifrost import QueryError

    from conftest import ServerProcess

    srv = ServerProcess(tmp_path / "data", args=["--max-result-bytes", "30000000"])
    try:
        client = DatasetClient(GrpcConfig(server_uri=srv.uri))
        result = client.sql(BIG)  # the first pieces are under the limit
        assert not result.is_complete
        with pytest.raises(QueryError, match="max-result-bytes"):
            for _ in result.to_reader():
                pass
        assert client.sql("SELECT 2 AS x").to_arrow().column("x")[0].as_py() == 2
    finally:
        srv.stop()
