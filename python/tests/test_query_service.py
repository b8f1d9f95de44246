"""The query service beyond single-table reads: joins across tables, quantiles,
partition pruning, quoted names, statements the sandbox refuses (and the server
staying healthy), large streamed results and the server-side timeout."""
from __future__ import annotations

import datetime as dt
import os
import statistics
import time

import pytest

from bifrost import QueryPermissionError
from pydantic import BaseModel

from bifrost import (BifrostTimeoutError, DatasetClient, DatasetProducer, GrpcConfig, QueryError,
                     TableConfig, WriteConfig)


class Order(BaseModel):
    order_id: int
    customer: str
    amount: float
    region: str


class Customer(BaseModel):
    name: str
    tier: str


@pytest.fixture(scope="module")
def shop(server):
    grpc = GrpcConfig(server_uri=server.uri)
    orders = [Order(order_id=i, customer=f"c{i % 7}", amount=float(i % 50) + 0.25,
                    region=["north", "south", "east"][i % 3]) for i in range(900)]
    customers = [Customer(name=f"c{i}", tier="gold" if i % 2 else "basic") for i in range(7)]
    order_cfg = TableConfig(Order, "shop", "sales", "orders", partition_columns=["region"])
    customer_cfg = TableConfig(Customer, "shop", "crm", "Customer-List")  # needs quoting in SQL
    for cfg, rows in ((order_cfg, orders), (customer_cfg, customers)):
        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=300)) as producer:
            producer.insert_many(rows)
            producer.flush()
        DatasetClient(grpc).maintain_dataset(cfg.catalog, cfg.schema_name, cfg.table, ["flush"])
    return DatasetClient(grpc), orders, customers


def test_join_across_tables_with_quoted_name(shop):
    client, orders, customers = shop
    got = client.sql(
        'SELECT c.tier, sum(o.amount) AS total FROM shop.sales.orders o '
        'JOIN shop.crm."Customer-List" c ON o.customer = c.name GROUP BY c.tier ORDER BY c.tier'
    ).to_arrow().to_pylist()
    tier = {c.name: c.tier for c in customers}
    want = {}
    for o in orders:
        want[tier[o.customer]] = want.get(tier[o.customer], 0.0) + o.amount
    assert [(r["tier"], r["total"]) for r in got] == [(k, pytest.approx(v)) for k, v in sorted(want.items())]


def test_quantiles(shop):
    client, orders, _ = shop
    got = client.sql("SELECT quantile_cont(amount, 0.5) AS med, quantile_disc(amount, 0.9) AS p90 "
                     "FROM shop.sales.orders").to_arrow().to_pylist()[0]
    amounts = sorted(o.amount for o in orders)
    assert got["med"] == pytest.approx(statistics.median(amounts))
    assert got["p90"] in amounts


def test_partition_filter_prunes_files(server):
    """A filter on a partition column must not open other partitions' files: with a
    'south' file made unreadable on disk, 'north' queries still work."""
    from pathlib import Path

    grpc = GrpcConfig(server_uri=server.uri)
    cfg = TableConfig(Order, "shop", "pruning", "orders", partition_columns=["region"])
    orders = [Order(order_id=i, customer="c", amount=1.0, region=["north", "south"][i % 2]) for i in range(100)]
    with DatasetProducer(cfg, grpc, WriteConfig(batch_size=100)) as producer:
        producer.insert_many(orders)
        producer.flush()
    client = DatasetClient(grpc, cfg)
    client.maintain_dataset("shop", "pruning", "orders", ["flush"])
    location = Path(server.data_dir) / client.describe_dataset("shop", "pruning", "orders")["location"]
    south = list(location.rglob("region=south/*.parquet"))
    assert len(south) == 1
    south[0].write_bytes(b"not a parquet file")
    n = client.sql("SELECT count(*) AS n FROM shop.pruning.orders WHERE region = 'north'").to_arrow()
    assert n.column("n")[0].as_py() == 50
    today = dt.datetime.now(dt.timezone.utc).date()
    n = client.sql("SELECT count(*) AS n FROM shop.pruning.orders WHERE region = 'north' AND "
                   "scouter_partition_date = ?", [today]).to_arrow()
    assert n.column("n")[0].as_py() == 50
    with pytest.raises(QueryError):
        client.sql("SELECT count(*) AS n FROM shop.pruning.orders WHERE region = 'south'")


def test_partition_columns_filter_correctly(shop):
    client, orders, _ = shop
    got = client.sql("SELECT region, count(*) AS n FROM shop.sales.orders "
                     "WHERE region IN ('north', 'east') GROUP BY region ORDER BY region").to_arrow().to_pylist()
    assert got == [{"region": r, "n": sum(1 for o in orders if o.region == r)} for r in ("east", "north")]
    today = dt.datetime.now(dt.timezone.utc).date()
    n = client.sql("SELECT count(*) AS n FROM shop.sales.orders WHERE scouter_partition_date = ?",
                   [today]).to_arrow().column("n")[0].as_py()
    assert n == len(orders)


@pytest.mark.parametrize("statement", [
    "EXPORT DATABASE '/tmp/bifrost_export'",
    "CALL pragma_version()",
    "EXPLAIN SELECT 1",
    "DETACH shop",
    "USE shop",
    "SET VARIABLE x = 1",
    "SELECT 1; DROP VIEW shop.sales.orders",
    "/* comment */ COPY shop.sales.orders TO '/tmp/bifrost_copy.parquet'",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_parquet('../../../../etc/passwd')",
])
def test_more_refusals_and_the_server_stays_healthy(shop, statement):
    client, orders, _ = shop
    with pytest.raises(QueryError):
        client.sql(statement)
    n = client.sql("SELECT count(*) AS n FROM shop.sales.orders").to_arrow().column("n")[0].as_py()
    assert n == len(orders)


def test_large_result_streams_intact(server):
    client = DatasetClient(GrpcConfig(server_uri=server.uri))
    # two int64 columns + a 16-byte string: ~64 MiB of Arrow data, or ~1 GiB with BIFROST_LONG_TESTS=1
    rows = 32_000_000 if os.environ.get("BIFROST_LONG_TESTS") == "1" else 2_000_000
    result = client.sql(f"SELECT range AS i, range * 2 AS j, printf('%016d', range) AS s FROM range({rows})")
    table = result.to_arrow()
    assert table.num_rows == rows
    assert table.column("j")[rows - 1].as_py() == 2 * (rows - 1)
    assert table.column("s")[12345].as_py() == "0000000000012345"
    assert len(result.to_bytes()) > rows * 32


def test_query_timeout_interrupts_and_frees_the_server(tmp_path):
    import subprocess

    from conftest import server_binary

    log = open(tmp_path / "timeout.log", "wb")
    proc = subprocess.Popen([str(server_binary()), "--port", "0", "--data-dir", str(tmp_path / "data"),
                             "--query-timeout", "1"], stdout=subprocess.PIPE, stderr=log)
    try:
        port = int(proc.stdout.readline().decode().split(":")[-1].split()[0])
        client = DatasetClient(GrpcConfig(server_uri=f"localhost:{port}"))
        # The same text twice: the second run (parse tree from the cache, a kept
        # connection) is interrupted too, and the connections serve queries after.
        for _ in range(2):
            with pytest.raises(BifrostTimeoutError):
                client.sql("SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b")
            assert client.sql("SELECT 42 AS x").to_arrow().column("x")[0].as_py() == 42
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        log.close()


def test_one_client_from_many_threads(shop):
    from concurrent.futures import ThreadPoolExecutor

    client, orders, _ = shop
    regions = ["north", "south", "east"] * 8

    def count(region):
        return region, client.sql("SELECT count(*) AS n FROM shop.sales.orders WHERE region = ?",
                                  [region]).to_arrow().column("n")[0].as_py()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(count, regions))
    for region, n in results:
        assert n == sum(1 for o in orders if o.region == region)


def test_result_size_limits(tmp_path):
    import subprocess

    from conftest import server_binary

    log = open(tmp_path / "limits.log", "wb")
    proc = subprocess.Popen([str(server_binary()), "--port", "0", "--data-dir", str(tmp_path / "data"),
                             "--max-result-rows", "50000", "--max-result-bytes", "1000000"],
                            stdout=subprocess.PIPE, stderr=log)
    try:
        port = int(proc.stdout.readline().decode().split(":")[-1].split()[0])
        client = DatasetClient(GrpcConfig(server_uri=f"localhost:{port}"))
        # 25 chunks of DuckDB's 2,048 rows: past the first 8 a fetcher thread runs,
        # which the limit stops mid-result
        assert client.sql("SELECT range AS i FROM range(50000)").num_rows == 50000
        for _ in range(3):
            with pytest.raises(QueryError, match="max-result-rows"):
                client.sql("SELECT range AS i FROM range(1000000)")
        with pytest.raises(QueryError, match="max-result-rows"):
            client.sql("SELECT range AS i FROM range(50001)")
        with pytest.raises(QueryError, match="max-result-bytes"):
            client.sql("SELECT repeat('x', 1000) AS s FROM range(2000)")
        assert client.sql("SELECT 1 AS x").num_rows == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        log.close()


def test_client_deadline_interrupts_the_server_query(server):
    slow = "SELECT sum(a.range * b.range) FROM range(300000) a, range(300000) b"
    client = DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=1))
    with pytest.raises(BifrostTimeoutError):
        client.sql(slow)
    # The interrupted query released the engine: a fresh query on the same server works.
    fresh = DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=30))
    assert fresh.sql("SELECT 7 AS x").to_arrow().column("x")[0].as_py() == 7


def test_queries_running_at_once_are_each_interrupted_at_their_own_deadline(tmp_path):
    # One watchdog thread serves every running query: two slow queries (minutes of
    # work) with different client deadlines are both interrupted on the server,
    # while other queries go on being answered.
    from concurrent.futures import ThreadPoolExecutor

    from conftest import ServerProcess

    server = ServerProcess(tmp_path / "data", args=["--workers", "4"])
    try:
        slow = "SELECT sum(a.range * b.range) FROM range(300000) a, range(300000) b"
        short = DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=1))
        longer = DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=2.5))
        plain = DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=120))
        with ThreadPoolExecutor(2) as pool:
            running = [pool.submit(short.sql, slow), pool.submit(longer.sql, slow)]
            for _ in range(5):
                assert plain.sql("SELECT count(*) AS n FROM range(100000)").to_arrow().column("n")[0].as_py() == 100000
            for future in running:
                with pytest.raises(BifrostTimeoutError):
                    future.result(timeout=120)
        deadline = time.monotonic() + 30
        while plain.server_stats()["queries_running"] > 0:
            assert time.monotonic() < deadline, "a query past its client's deadline still runs"
            time.sleep(0.1)
        assert plain.sql("SELECT 5 AS x").to_arrow().column("x")[0].as_py() == 5
    finally:
        server.stop()


def test_files_are_reachable_only_through_tables(shop, server):
    """Even inside the data directory, files (and symlinks planted there) cannot be
    read directly; only the tables' views reach data."""
    from bifrost import QueryPermissionError

    client, orders, _ = shop
    data_dir = server.data_dir
    link = data_dir / "passwd_link.csv"
    if not link.exists():
        link.symlink_to("/etc/passwd")
    parquet = next(data_dir.rglob("*.parquet"))
    for sql in [f"SELECT * FROM read_csv('{link}')",
                f"SELECT * FROM '{link}'",
                f"SELECT count(*) FROM read_parquet('{parquet}')",
                f"SELECT count(*) FROM '{parquet}'",
                f"SELECT * FROM glob('{data_dir}/*')",
                f"SELECT * FROM parquet_metadata('{parquet}')",
                f"WITH x AS (SELECT * FROM read_text('{link}')) SELECT * FROM x"]:
        with pytest.raises(QueryPermissionError):
            client.sql(sql)
    assert client.sql("SELECT count(*) AS n FROM shop.sales.orders").to_arrow().column("n")[0].as_py() == len(orders)
    assert client.sql("SELECT count(*) AS n FROM range(10)").to_arrow().column("n")[0].as_py() == 10


def test_keyboard_interrupt_cancels_a_running_query(tmp_path):
    import _thread
    import subprocess
    import threading

    from conftest import server_binary

    log = open(tmp_path / "interrupt.log", "wb")
    proc = subprocess.Popen([str(server_binary()), "--port", "0", "--data-dir", str(tmp_path / "data"),
                             "--query-timeout", "60"], stdout=subprocess.PIPE, stderr=log)
    try:
        port = int(proc.stdout.readline().decode().split(":")[-1].split()[0])
        client = DatasetClient(GrpcConfig(server_uri=f"localhost:{port}"))
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.sql("SELECT sum(a.range * b.range) FROM range(300000) a, range(300000) b")
        timer.join()
        # The client is still usable, and so is the server.
        assert client.sql("SELECT 3 AS x").to_arrow().column("x")[0].as_py() == 3
    finally:
        proc.terminate()
        assert proc.wait(timeout=90) == 0
        log.close()


def test_describe_summarize_and_show_are_allowed(shop):
    client, orders, _ = shop
    described = client.sql("DESCRIBE shop.sales.orders").to_arrow().to_pylist()
    assert [r["column_name"] for r in described][:4] == ["order_id", "customer", "amount", "region"]
    summary = client.sql("SUMMARIZE shop.sales.orders").to_arrow().to_pylist()
    assert {r["column_name"]: r["count"] for r in summary}["amount"] == len(orders)
    # SHOW ALL TABLES would list every table and the server's internal ones:
    # tables are listed by list_datasets(), which says only what a caller may see.
    with pytest.raises(QueryPermissionError, match="list_datasets"):
        client.sql("SHOW ALL TABLES")
    assert {"orders", "Customer-List"} <= {d["table"] for d in client.list_datasets()}
