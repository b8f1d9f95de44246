"""scouter.grpc.v1 on bifrost-server, at the wire: what the published 0.25.0
client sends, plus the requests it sends only when things go wrong (a batch
resent after a lost reply, a batch missing a column). Batches are built with
pyarrow the way the client builds them: user columns in alphabetical order, then
scouter_created_at, scouter_partition_date and scouter_batch_id (one UUIDv7 per
batch). Runs under .venv-scouter (make test-scouter)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from scouter_wire import Wire, encode, require_real_scouter

require_real_scouter()

import grpc  # noqa: E402
import pyarrow as pa  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from conftest import ServerProcess  # noqa: E402
from scouter import GrpcConfig  # noqa: E402
from scouter.bifrost import DatasetClient, TableConfig  # noqa: E402


class Inner(BaseModel):
    z: int
    y: str


class Row(BaseModel):
    name: str
    amount: int
    score: float
    inner: Inner


SCHEMA = json.dumps(Row.model_json_schema())
FP = TableConfig.compute_fingerprint(Row.model_json_schema())
UTC = dt.timezone.utc


def batch_uuid() -> str:
    return str(uuid.uuid7()) if hasattr(uuid, "uuid7") else str(uuid.uuid4())


def client_batch(rows: list[dict], *, batch_id: str | None = None, drop=(), extra=None,
                 order=None) -> bytes:
    """An IPC stream as the client writes it (alphabetical user columns)."""
    n = len(rows)
    batch_id = batch_id or batch_uuid()
    now = dt.datetime.now(UTC)
    cols = {
        "amount": pa.array([r["amount"] for r in rows], pa.int64()),
        "inner": pa.array([r["inner"] for r in rows],
                          pa.struct([("y", pa.string_view()), ("z", pa.int64())])),
        "name": pa.array([r["name"] for r in rows], pa.string_view()),
        "score": pa.array([r["score"] for r in rows], pa.float64()),
    }
    cols.update(extra or {})
    for name in drop:
        cols.pop(name)
    names = order or sorted(cols)
    fields = [pa.field(k, cols[k].type, nullable=False) for k in names]
    arrays = [cols[k] for k in names]
    fields += [pa.field("scouter_created_at", pa.timestamp("us", "UTC"), nullable=False),
               pa.field("scouter_partition_date", pa.date32(), nullable=False),
               pa.field("scouter_batch_id", pa.string(), nullable=False)]
    arrays += [pa.array([now] * n, pa.timestamp("us", "UTC")),
               pa.array([now.date()] * n, pa.date32()),
               pa.array([batch_id] * n, pa.string())]
    batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"name": f"n{i}", "amount": i, "score": i / 2, "inner": {"z": i * 10, "y": f"y{i}"}}
            for i in range(start, start + n)]


def count(wire: Wire, table: str) -> int:
    data = wire.query(f"SELECT count(*) AS n FROM c.s.{table}")
    return pa.ipc.open_stream(data).read_all().column("n")[0].as_py()


@pytest.fixture
def wire(server):
    w = Wire(server.uri)
    yield w
    w.close()


def rpc_error(fn, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kw)
    return info.value


def test_login_in_open_mode_accepts_any_credentials(server, wire):
    for user, password in (("guest", "guest"), ("someone", "anything"), ("", "")):
        reply = wire.login(user, password)
        assert reply[2] == [b"success"] and len(reply[1][0]) > 20
    refreshed = wire.call("/scouter.grpc.v1.AuthService/RefreshToken", encode([]),
                          metadata=[("authorization", "Bearer " + reply[1][0].decode())])
    assert refreshed[2] == [b"success"]
    valid = wire.call("/scouter.grpc.v1.AuthService/ValidateToken", encode([(1, reply[1][0])]))
    assert valid[1] == [1]
    # the published client with made-up credentials
    client = DatasetClient(transport=GrpcConfig(server_uri=f"http://{server.uri}",
                                                username="nobody", password="x"))
    assert isinstance(client.list_datasets(), list)


def test_health_names_the_served_services_and_other_scouter_services_are_unimplemented(wire):
    check = wire.channel.unary_unary("/grpc.health.v1.Health/Check")
    for service in ("", "bifrost.v1.Bifrost", "scouter.grpc.v1.DatasetService",
                    "scouter.grpc.v1.AuthService"):
        assert check(encode([(1, service)])) == encode([(1, 1)])  # SERVING
    err = rpc_error(wire.call, "/scouter.grpc.v1.MessageService/InsertMessage", b"")
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    err = rpc_error(wire.call, "/scouter.grpc.v1.DatasetService/DropDataset", b"")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "not served" in err.details()


def test_columns_are_matched_by_name_at_every_level(wire, unique_table):
    reply = wire.register("c", "s", unique_table, SCHEMA)
    assert reply[1] == [b"created"] and reply[2] == [FP.encode()]
    assert wire.register("c", "s", unique_table, SCHEMA)[1] == [b"already_exists"]
    wire.insert("c", "s", unique_table, client_batch(rows(3)), FP)
    # any other order is fine too
    reply = wire.insert("c", "s", unique_table,
                        client_batch(rows(2, 3), order=["score", "name", "inner", "amount"]), FP)
    assert reply[1] == [2]
    table = pa.ipc.open_stream(wire.query(
        'SELECT name, amount, score, "inner" FROM c.s.' + unique_table + ' ORDER BY amount')).read_all()
    assert table.column("name").to_pylist() == [f"n{i}" for i in range(5)]
    assert table.column("amount").to_pylist() == list(range(5))
    assert table.column("score").to_pylist() == [i / 2 for i in range(5)]
    assert table.column("inner").to_pylist() == [{"z": i * 10, "y": f"y{i}"} for i in range(5)]


def test_a_batch_missing_or_adding_a_column_is_refused_naming_it(wire, unique_table):
    wire.register("c", "s", unique_table, SCHEMA)
    err = rpc_error(wire.insert, "c", "s", unique_table, client_batch(rows(2), drop=["score"]), FP)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "column 'score' is missing" in err.details()
    extra = {"zeta": pa.array([1, 2], pa.int64())}
    err = rpc_error(wire.insert, "c", "s", unique_table, client_batch(rows(2), extra=extra), FP)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "column 'zeta' that the table does not have" in err.details()
    inner = {"inner": pa.array([{"y": "a"}, {"y": "b"}], pa.struct([("y", pa.string_view())]))}
    err = rpc_error(wire.insert, "c", "s", unique_table, client_batch(rows(2), extra=inner), FP)
    assert "column 'inner.z' is missing" in err.details()
    wrong = {"amount": pa.array(["1", "2"], pa.string_view())}
    err = rpc_error(wire.insert, "c", "s", unique_table, client_batch(rows(2), extra=wrong), FP)
    assert "column 'amount' has Arrow type" in err.details()
    err = rpc_error(wire.insert, "c", "s", unique_table, client_batch(rows(2)), "0" * 32)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "fingerprint" in err.details()
    assert count(wire, unique_table) == 0


def test_a_resent_batch_is_stored_once_even_after_a_restart(tmp_path):
    server = ServerProcess(tmp_path / "data")
    wire = Wire(server.uri)
    wire.register("c", "s", "t", SCHEMA)
    batch = client_batch(rows(10))
    for _ in range(3):  # the reply was lost twice: the client sends the same batch again
        assert wire.insert("c", "s", "t", batch, FP)[1] == [10]
    assert count(wire, "t") == 10
    other = client_batch(rows(10))  # same rows, a new batch id: a new batch
    wire.insert("c", "s", "t", other, FP)
    assert count(wire, "t") == 20
    wire.close()
    server.stop()  # flushes: the batch ids are in the Delta log now
    server = ServerProcess(tmp_path / "data")
    wire = Wire(server.uri)
    wire.insert("c", "s", "t", batch, FP)
    wire.insert("c", "s", "t", other, FP)
    assert count(wire, "t") == 20
    wire.close()
    server.stop()


def test_batches_without_one_batch_id_cannot_be_deduplicated(wire, unique_table):
    """Documented limit: without a producer id the batch id is the only identity."""
    wire.register("c", "s", unique_table, SCHEMA)
    batch = client_batch(rows(2), batch_id="not a uuid")
    wire.insert("c", "s", unique_table, batch, FP)
    wire.insert("c", "s", unique_table, batch, FP)
    assert count(wire, unique_table) == 4


def test_an_acknowledged_insert_survives_a_crash(tmp_path):
    server = ServerProcess(tmp_path / "data")
    wire = Wire(server.uri)
    wire.register("c", "s", "t", SCHEMA)
    assert wire.insert("c", "s", "t", client_batch(rows(25)), FP)[1] == [25]
    wire.close()
    server.kill()  # SIGKILL right after the acknowledgement
    server = ServerProcess(tmp_path / "data")
    wire = Wire(server.uri)
    assert count(wire, "t") == 25
    wire.close()
    server.stop()


def test_results_spell_the_utc_zone_the_client_can_read(wire, unique_table):
    wire.register("c", "s", unique_table, SCHEMA)
    wire.insert("c", "s", unique_table, client_batch(rows(1)), FP)
    table = pa.ipc.open_stream(wire.query(
        f"SELECT scouter_created_at, [scouter_created_at] AS l FROM c.s.{unique_table}")).read_all()
    assert table.schema.field("scouter_created_at").type.tz == "+00:00"
    assert table.schema.field("l").type.value_type.tz == "+00:00"


def test_a_result_over_the_client_limit_is_refused_never_cut(server, wire, unique_table):
    wire.register("c", "s", unique_table, SCHEMA)
    big = [{"name": "x" * 1000 + str(i), "amount": i, "score": 0.0, "inner": {"z": 0, "y": ""}}
           for i in range(5000)]  # about 5 MB of names
    for start in range(0, 5000, 1000):
        wire.insert("c", "s", unique_table, client_batch(big[start:start + 1000]), FP)
    err = rpc_error(wire.query, f"SELECT name FROM c.s.{unique_table}")
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4 MiB" in err.details() and "LIMIT" in err.details() and "bifrost client" in err.details()
    client = DatasetClient(transport=GrpcConfig(server_uri=f"http://{server.uri}"))
    with pytest.raises(Exception) as info:
        client.sql(f"SELECT name FROM c.s.{unique_table}")
    assert "LIMIT" in str(info.value)
    # just under the limit: answered whole
    result = client.sql(f"SELECT name FROM c.s.{unique_table} ORDER BY amount LIMIT 3900")
    assert len(result.to_arrow()) == 3900
