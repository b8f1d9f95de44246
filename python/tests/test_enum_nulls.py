"""A null in an enum column stays null: through insert() and insert_arrow(), in the
unflushed tail and in Parquet, sorted and grouped, and after a restart replays the
WAL. (A null enum used to come back as the enum's first value, and a column of
nulls sent as an empty dictionary crashed the server on ORDER BY.)"""
from __future__ import annotations

import enum
from typing import Optional

import pyarrow as pa
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig
from conftest import ServerProcess


class Kind(str, enum.Enum):
    A = "a"
    B = "b"


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


class Tagged(BaseModel):
    id: int
    kind: Optional[Kind] = None
    shade: Optional[Shade] = None


EXPECTED = [
    {"id": 0, "kind": None, "shade": None},
    {"id": 1, "kind": "b", "shade": "dark"},
    {"id": 2, "kind": None, "shade": "light"},
    {"id": 3, "kind": "a", "shade": None},
    {"id": 5, "kind": None, "shade": None},
    {"id": 6, "kind": "b", "shade": None},
]


def rows(client: DatasetClient, fqn: str, order: str = "ORDER BY id"):
    return client.sql(f"SELECT id, kind, shade FROM {fqn} {order}").to_arrow().to_pylist()


def test_null_enums_stay_null_everywhere(tmp_path):
    srv = ServerProcess(tmp_path / "data")
    try:
        grpc = GrpcConfig(server_uri=srv.uri)
        cfg = TableConfig(Tagged, catalog="t", schema_name="enums", table="nulls")
        fqn = "t.enums.nulls"
        with DatasetProducer(cfg, grpc) as producer:
            producer.register()
            producer.insert(Tagged(id=0))
            producer.insert(Tagged(id=1, kind=Kind.B, shade=Shade.DARK))
            producer.insert(Tagged(id=2, shade=Shade.LIGHT))
            producer.insert(Tagged(id=3, kind=Kind.A))
            producer.flush()
            # all-null enum columns from Arrow: pyarrow casts them to an empty dictionary
            producer.insert_arrow(pa.table({"id": pa.array([5], pa.int64()), "kind": pa.array([None], pa.string()),
                                            "shade": pa.array([None], pa.string())}))
            producer.insert_arrow(pa.table({"id": pa.array([6], pa.int64()), "kind": pa.array(["b"]),
                                            "shade": pa.array([None], pa.string())}))
            producer.flush()
        client = DatasetClient(grpc)
        assert rows(client, fqn) == EXPECTED  # unflushed, sorted
        groups = client.sql(f"SELECT kind, count(*) AS n FROM {fqn} GROUP BY kind ORDER BY kind NULLS FIRST")
        assert groups.to_arrow().to_pylist() == [{"kind": None, "n": 3}, {"kind": "a", "n": 1}, {"kind": "b", "n": 2}]
        srv.proc.kill()  # no flush at exit: the restart replays the WAL's batches
        srv.proc.wait()
        srv = ServerProcess(tmp_path / "data")
        client = DatasetClient(GrpcConfig(server_uri=srv.uri))
        assert rows(client, fqn) == EXPECTED
        client.maintain_dataset("t", "enums", "nulls", ["flush"])
        assert rows(client, fqn) == EXPECTED  # from Parquet
        assert client.sql(f"SELECT count(*) AS n FROM {fqn} WHERE kind IS NULL").to_arrow()["n"][0].as_py() == 3
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, srv.log()
