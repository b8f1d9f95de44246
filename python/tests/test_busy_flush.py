"""A table flushed for its size (a busy one) gets its next generation made in the
flush, off the acknowledgement path of the next insert; rows go on being durable,
counted and read at once."""
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
