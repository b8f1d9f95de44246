"""After kill -9 and a restart of the server on the same port, the first call through
a brand-new client works (reads and registration are resent once when the
connection they were given had died), and so does the next call of an old client."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

from conftest import ServerProcess


class Item(BaseModel):
    id: int
    label: str


@pytest.fixture
def restartable(tmp_path):
    servers = [ServerProcess(tmp_path / "data")]

    def restart() -> ServerProcess:
        old = servers[-1]
        old.kill()
        servers.append(ServerProcess(tmp_path / "data", port=old.port))
        return servers[-1]

    yield servers[0], restart
    servers[-1].stop()


def test_first_calls_after_a_restart_work(restartable):
    srv, restart = restartable
    grpc = GrpcConfig(server_uri=srv.uri)
    cfg = TableConfig(Item, "test", "restart", "items")
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert_many([Item(id=i, label=str(i)) for i in range(10)])
        assert producer.flush() == 10
    old = DatasetClient(grpc, cfg)
    assert len(old.read()) == 10

    calls = {
        "sql": lambda c: c.sql("SELECT count(*) AS n FROM test.restart.items").to_arrow().column("n")[0].as_py(),
        "read": lambda c: len(c.read()),
        "list": lambda c: len([t for t in c.list_datasets() if t["table"] == "items"]),
        "describe": lambda c: c.describe_dataset("test", "restart", "items")["table"],
    }
    expected = {"sql": 10, "read": 10, "list": 1, "describe": "items"}
    for name, call in calls.items():
        restart()
        fresh = DatasetClient(GrpcConfig(server_uri=srv.uri))
        fresh._table_config = cfg  # bound without a describe call, so `call` is the first call
        assert call(fresh) == expected[name], name

    restart()
    # registration through a brand-new producer, first call after the restart
    with DatasetProducer(cfg, grpc) as producer:
        producer.insert(Item(id=10, label="after"))
        assert producer.flush() == 1
    restart()
    assert calls["sql"](old) == 11  # the old client's next call works too
