"""Query results as large record batches: the server gathers DuckDB's 2,048-row
chunks into batches of about 4 MiB (bitmaps and offsets joined across chunks), sends
each as it is produced without holding the whole result, and the client decodes
them over the received bytes. Checked against DuckDB computing the same rows in
this process, for every column layout the gathering touches."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pytest

from bifrost import DatasetClient, GrpcConfig

# Nulls at every third row, bools, strings of varying length (empty and NULL among
# them), lists with nulls inside and NULL lists, structs, dates, decimals: every
# layout whose buffers are re-packed or re-based when chunks are joined.
MIXED = """
SELECT range AS i,
       CASE WHEN range % 3 = 1 THEN NULL ELSE range * 7 END AS n,
       range % 5 = 0 AS b,
       CASE WHEN range % 4 = 0 THEN NULL WHEN range % 4 = 1 THEN '' ELSE repeat('s', (range % 23)::INT) END AS s,
       CASE WHEN range % 6 = 0 THEN NULL ELSE [range, NULL, range + 1][1:(range % 3)::INT + 1] END AS l,
       {{'a': range, 'b': CASE WHEN range % 2 = 0 THEN NULL ELSE 'odd' END}} AS st,
       DATE '2024-01-01' + (range % 400)::INT AS d,
       (range % 1000)::DECIMAL(10, 2) / 7 AS dec
FROM range({rows}) ORDER BY range
"""


@pytest.fixture
def client(server):
    with DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=600)) as c:
        yield c


def _expected(sql: str) -> pa.Table:
    import duckdb

    return duckdb.connect().execute(sql).fetch_arrow_table()


def test_large_result_arrives_in_large_batches_complete_and_in_order(client):
    rows = 1_000_000
    sql = MIXED.format(rows=rows)
    batches = list(client.sql(sql).to_reader())
    assert sum(b.num_rows for b in batches) == rows
    # Large batches (64k rows or a few MiB), not DuckDB's 2,048-row chunks; the
    # last one may be short.
    assert len(batches) > 1
    assert all(b.num_rows >= 65_536 or b.nbytes >= 2 << 20 for b in batches[:-1]), \
        [(b.num_rows, b.nbytes) for b in batches]
    got = pa.Table.from_batches(batches)
    want = _expected(sql)
    assert got.schema.names == want.schema.names
    for name in want.schema.names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_to_arrow_equals_to_reader_and_bytes(client):
    sql = MIXED.format(rows=300_000)
    result = client.sql(sql)
    table = result.to_arrow()
    assert table.num_rows == 300_000
    assert result.to_reader().read_all().equals(table)
    assert pa.ipc.open_stream(result.to_bytes()).read_all().equals(table)
    assert table.column("i").to_pylist() == list(range(300_000))


def test_filtered_result_with_odd_chunk_sizes(client):
    # A filter leaves DuckDB chunks of every size: bitmaps are joined at odd bit offsets.
    sql = ("SELECT range AS i, range % 3 = 0 AS b, CASE WHEN range % 7 = 0 THEN NULL ELSE range END AS n "
           "FROM range(3000000) WHERE hash(range) % 5 <> 0 ORDER BY range")
    got = client.sql(sql).to_arrow()
    want = _expected(sql)
    assert got.num_rows == want.num_rows
    for name in ("i", "b", "n"):
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_empty_result_keeps_its_schema(client):
    result = client.sql(MIXED.format(rows=0))
    table = result.to_arrow()
    assert table.num_rows == 0
    assert table.schema.names == ["i", "n", "b", "s", "l", "st", "d", "dec"]
    assert table.schema.field("l").type == pa.list_(pa.int64())
    reader = client.sql(MIXED.format(rows=0)).to_reader()
    assert reader.schema == table.schema
    assert reader.read_all().num_rows == 0


def test_huge_rows_larger_than_a_transport_message(tmp_path):
    # 3 rows of 90 MB in one DuckDB chunk: one 270 MB batch, over gRPC's 256 MiB
    # message limit; the server sends it in 64 MiB pieces and the client joins them.
    from conftest import ServerProcess

    srv = ServerProcess(tmp_path / "data", args=["--max-value-bytes", "100MiB"])
    try:
        with DatasetClient(GrpcConfig(server_uri=srv.uri, timeout_secs=600)) as c:
            table = c.sql("SELECT range AS i, repeat(chr(65 + range::INT), 90000000) AS s FROM range(3)").to_arrow()
            assert table.column("i").to_pylist() == [0, 1, 2]
            values = table.column("s").to_pylist()
            assert [len(v) for v in values] == [90_000_000] * 3
            assert [v[0] + v[-1] for v in values] == ["AA", "BB", "CC"]
            one = c.sql("SELECT repeat('x', 50000000) AS s").to_arrow()
            assert one.column("s")[0].as_py() == "x" * 50_000_000
            assert c.sql("SELECT 1 AS x").to_arrow().column("x").to_pylist() == [1]
    finally:
        srv.stop()


def _server_rss_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def test_server_streams_without_holding_the_whole_result(tmp_path):
    # ~360 MB of IPC; read slowly. A server that ran the query to a complete result
    # before sending would hold all of it; a streaming one holds a few batches.
    from conftest import ServerProcess

    srv = ServerProcess(tmp_path / "data", args=["--threads", "1"])
    try:
        with DatasetClient(GrpcConfig(server_uri=srv.uri, timeout_secs=600)) as c:
            c.sql("SELECT count(*) FROM range(1000)").to_arrow()  # warm up
            base = _server_rss_kb(srv.proc.pid, "VmRSS")
            reader = c.sql("SELECT range AS i, range * 2 AS j, printf('%016d', range) AS s "
                           "FROM range(10000000)").to_reader()
            rows = 0
            peak = 0
            for k, batch in enumerate(reader):
                rows += batch.num_rows
                if k % 10 == 0:
                    peak = max(peak, _server_rss_kb(srv.proc.pid, "VmRSS"))
            assert rows == 10_000_000
            growth_mb = (peak - base) / 1024
            assert growth_mb < 150, f"server RSS grew {growth_mb:.0f} MB while streaming a 360 MB result"
    finally:
        srv.stop()


def test_half_read_stream_cancelled_leaves_the_server_healthy(server, client):
    sql = "SELECT range AS i, printf('%016d', range) AS s FROM range(20000000)"
    for how in ("close", "drop"):
        result = client.sql(sql)
        reader = result.to_reader()
        first = reader.read_next_batch()
        assert first.column("i")[0].as_py() == 0
        if how == "close":
            reader.close()
        del reader, result, first
        deadline = time.monotonic() + 20
        while client.server_stats()["queries_running"] > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.server_stats()["queries_running"] == 0
    assert client.sql("SELECT sum(range) AS s FROM range(1000)").to_arrow().column("s")[0].as_py() == 499500


_MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys
    from bifrost import DatasetClient, GrpcConfig

    def peak_rss():  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across exec)
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))

    client = DatasetClient(GrpcConfig(server_uri=sys.argv[1], timeout_secs=600))
    client.sql("SELECT range AS i, printf('%016d', range) AS s FROM range(100000)").to_arrow()  # warm up
    base = peak_rss()
    table = client.sql("SELECT range AS i, range * 2 AS j, printf('%016d', range) AS s FROM range(5000000)").to_arrow()
    print(json.dumps({"rows": table.num_rows, "arrow_bytes": table.nbytes, "growth": peak_rss() - base}))
""")


def test_to_arrow_decodes_over_the_received_bytes(server, tmp_path):
    # The pieces are copied once out of gRPC and pyarrow decodes over them: peak
    # client memory is about the table, not the table plus a joined copy.
    script = tmp_path / "to_arrow_rss.py"
    script.write_text(_MEMORY_SCRIPT)
    out = subprocess.run([sys.executable, str(script), server.uri], capture_output=True, text=True,
                         timeout=600, env={**os.environ})
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 5_000_000
    assert figures["growth"] < 1.5 * figures["arrow_bytes"], figures


def test_clients_that_never_read_or_never_send_do_not_hold_the_workers(tmp_path):
    """Two workers, two clients that read the first message of a large result and
    then nothing, and one that opens a call and never sends its request: past
    --client-stall-timeout each call ends with DEADLINE_EXCEEDED naming the option
    (logged as a WARN), and the server answers other queries again."""
    import re
    import threading

    import grpc

    import raw_grpc
    from conftest import ServerProcess

    server = ServerProcess(tmp_path / "data", args=["--workers", "2", "--client-stall-timeout", "2"])
    channel = grpc.insecure_channel(server.uri)
    try:
        query = channel.unary_stream("/bifrost.v1.Bifrost/Query")
        sql = "SELECT range AS i, printf('%016d', range) AS s FROM range(50000000)"
        streams = [query(raw_grpc.query_request(sql)) for _ in range(2)]
        for stream in streams:
            next(stream)  # the query runs; its worker now waits for the client to read
        never = threading.Event()

        def no_request():
            never.wait(60)
            yield raw_grpc.query_request("SELECT 1")

        silent = channel.stream_stream("/bifrost.v1.Bifrost/Query")(no_request())
        # Without the stall timeout both workers stay taken and this never answers.
        with DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=60)) as client:
            assert client.sql("SELECT 42 AS x").to_arrow().column("x")[0].as_py() == 42
        for stream in streams:
            with pytest.raises(grpc.RpcError) as info:
                for _ in stream:
                    pass
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "--client-stall-timeout" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            next(silent)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "did not send its whole request" in info.value.details()
        never.set()
        assert len(re.findall(r"WARN .*Query from .* the client took nothing", server.log())) >= 2
        # Nothing of the cancelled calls is left on the workers' queues for the
        # calls that come next on them.
        errors = []

        def queries() -> None:
            try:
                with DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=60)) as c:
                    for k in range(10):
                        assert c.sql(f"SELECT {k} AS x FROM range(50000)").to_arrow().num_rows == 50000
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        runners = [threading.Thread(target=queries) for _ in range(2)]
        for t in runners:
            t.start()
        for t in runners:
            t.join(120)
        assert not errors, errors
    finally:
        channel.close()
        server.stop()
