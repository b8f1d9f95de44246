"""A table flushed for its size (a busy one) gets its next generation made in the
flush, off the acknowledgement path of the next insert; rows go on being durable,
counted and read at once; inserts that outrun the writer wait for it."""
from __future__ import annotations

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, WriteConfig

from conftest import ServerProcess
from test_count_from_log import Row, config, count, counts_agree, maintain, table_dir


def test_a_busy_table_keeps_every_row_across_flushes_and_a_crash(tmp_path):
    """A table flushed for its size gets its next generation (WAL segment, tail) in
    the flush, before the next insert needs it: rows acknowledged into it are
    counted and read at once, and a kill -9 right after such flushes (an empty
    segment among them) replays every acknowledged row exactly once."""
    data = tmp_path / "data"
    server = ServerProcess(data, args=["--flush-rows", "200", "--flush-interval", "30"])
    cfg = config("busy")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=100)) as producer:
            for k in range(30):
                producer.insert_many([Row(id=k * 100 + i, value=1.0) for i in range(100)])
                producer.flush(timeout=60)
                assert count(client, cfg) == (k + 1) * 100  # read-your-writes
        wal = table_dir(data, cfg) / "_bifrost" / "wal"
        assert list(wal.glob("*.wal"))  # the generation made ahead (or one not yet flushed)
    finally:
        server.kill()
    server = ServerProcess(data)
    try:
        client = DatasetClient(GrpcConfig(server_uri=server.uri))
        ids = client.sql(f"SELECT id FROM {cfg.fqn}").to_arrow()["id"].to_pylist()
        assert sorted(ids) == list(range(3000))
        counts_agree(client, cfg, 3000)
        maintain(client, cfg, "flush")
    finally:
        server.stop()
    from deltalake import DeltaTable
    assert sorted(DeltaTable(str(table_dir(data, cfg))).to_pyarrow_table()["id"].to_pylist()) == list(range(3000))


def test_inserts_wait_for_a_writer_that_is_behind(tmp_path):
    """Ingest faster than Parquet can be written: once a flush is running and the
    generation taking inserts is due for the next one, inserts wait for the flush
    instead of piling up unflushed rows, so the rows held in memory stay within a
    few generations (without the wait: 480k-900k rows here); every row arrives
    exactly once."""
    import threading

    import pyarrow as pa

    data = tmp_path / "data"
    flush_rows, batch, batches = 20_000, 10_000, 120
    server = ServerProcess(data, args=["--flush-rows", flush_rows, "--flush-interval", "60"])
    cfg = config("behind")
    try:
        grpc = GrpcConfig(server_uri=server.uri)
        client = DatasetClient(grpc)
        most, done = [0], threading.Event()

        def sample() -> None:
            watcher = DatasetClient(grpc)
            while not done.is_set():
                held = watcher.describe_dataset(cfg.catalog, cfg.schema_name, cfg.table)["tail_rows"]
                most[0] = max(most[0], held)

        with DatasetProducer(cfg, grpc, WriteConfig(batch_size=batch, max_in_flight=4)) as producer:
            producer.register()
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                for k in range(batches):
                    ids = pa.array(range(k * batch, (k + 1) * batch), pa.int64())
                    producer.insert_arrow(pa.table({"id": ids, "value": pa.array([1.0] * batch)}))
                producer.flush(timeout=120)
            finally:
                done.set()
                sampler.join(30)
        # the generations a running flush has sealed and the one taking inserts
        # (measured: 110k-120k rows)
        assert 0 < most[0] <= 10 * flush_rows, most[0]
        counts_agree(client, cfg, batches * batch)
        maintain(client, cfg, "flush")
        ids = client.sql(f"SELECT id FROM {cfg.fqn}").to_arrow()["id"].to_pylist()
        assert sorted(ids) == list(range(batches * batch))
    finally:
        server.stop()
