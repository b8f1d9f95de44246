"""The published scouter-ml 0.25.0 client against a server with --auth-file: its
Login is checked against the users, its bearer token against the same key, and
the grants apply on scouter.grpc.v1 as on bifrost.v1 (write = register/insert,
read = query/list/describe). Runs under .venv-scouter (make test-scouter)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scouter_wire import Wire, encode, require_real_scouter

require_real_scouter()

import grpc  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from conftest import ServerProcess, server_binary  # noqa: E402
from scouter import GrpcConfig  # noqa: E402
from scouter.bifrost import DatasetClient, DatasetProducer, TableConfig  # noqa: E402


class Score(BaseModel):
    id: int
    user: str


USERS = {
    "ingest": ("ingest-pw", [{"on": "prod.ml.*", "allow": ["write"]}]),
    "analyst": ("analyst-pw", [{"on": "prod.ml.scores", "allow": ["read"]}]),
}


def hash_password(password: str) -> str:
    done = subprocess.run([str(server_binary()), "hash-password"], input=password, text=True,
                          capture_output=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    path: Path = tmp_path_factory.mktemp("auth") / "users.json"
    path.write_text(json.dumps({"users": [
        {"name": name, "password_hash": hash_password(pw), "grants": grants}
        for name, (pw, grants) in USERS.items()]}))
    path.chmod(0o600)
    server = ServerProcess(tmp_path_factory.mktemp("secured") / "data", args=["--auth-file", path])
    yield server
    server.stop()


def transport(server, user: str, password: str | None = None) -> GrpcConfig:
    return GrpcConfig(server_uri=f"http://{server.uri}", username=user,
                      password=USERS[user][0] if password is None else password)


def wait_for_rows(client, n: int) -> list:
    """The published client's flush() only signals its queue, and its shutdown()
    waits 250 ms at most: wait for the rows (or 60 s) before shutting down."""
    import time

    deadline = time.monotonic() + 60
    while len(rows := client.read()) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return rows


def test_login_checks_the_credentials(secured):
    wire = Wire(secured.uri)
    for user, password in (("guest", "guest"), ("ingest", "wrong"), ("nobody", "ingest-pw")):
        with pytest.raises(grpc.RpcError) as info:
            wire.login(user, password)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    token = wire.login("ingest", "ingest-pw")[1][0].decode()
    assert wire.call("/scouter.grpc.v1.AuthService/ValidateToken", encode([(1, token)]))[1] == [1]
    valid = wire.call("/scouter.grpc.v1.AuthService/ValidateToken", encode([(1, token + "x")]))
    assert valid.get(1, [0]) == [0]
    with pytest.raises(grpc.RpcError) as info:  # no token: refused before the request is read
        wire.call("/scouter.grpc.v1.DatasetService/ListDatasets", b"")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    wire.close()
    with pytest.raises(Exception):
        DatasetClient(transport=transport(secured, "ingest", "wrong")).list_datasets()


def test_grants_apply_to_the_scouter_endpoint(secured):
    scores = TableConfig(Score, catalog="prod", schema_name="ml", table="scores")
    other = TableConfig(Score, catalog="prod", schema_name="ml", table="other")
    ingest = DatasetProducer(scores, transport(secured, "ingest"))
    assert ingest.register() == "created"
    DatasetProducer(other, transport(secured, "ingest")).register()
    for i in range(5):
        ingest.insert(Score(id=i, user=f"u{i}"))
    ingest.flush()
    analyst = DatasetClient(transport=transport(secured, "analyst"), table_config=scores)
    assert sorted(r.id for r in wait_for_rows(analyst, 5)) == list(range(5))
    ingest.shutdown()
    assert [d["table"] for d in analyst.list_datasets()] == ["scores"]  # "other" is not listed
    with pytest.raises(Exception, match="may not read"):
        analyst.sql("SELECT count(*) FROM prod.ml.other")
    with pytest.raises(Exception, match="may not read"):
        analyst.describe_dataset("prod", "ml", "other")
    with pytest.raises(Exception, match="may not write"):
        DatasetProducer(TableConfig(Score, catalog="prod", schema_name="ml", table="mine"),
                        transport(secured, "analyst")).register()
    ingest_reader = DatasetClient(transport=transport(secured, "ingest"))
    with pytest.raises(Exception, match="may not read"):
        ingest_reader.sql("SELECT count(*) FROM prod.ml.scores")


def test_a_long_running_producer_gets_fresh_tokens_and_loses_nothing(tmp_path_factory):
    """The client logs in once and takes a replacement token from the
    x-refreshed-token reply header: with 2 s tokens, 6 s of inserts all arrive."""
    import time

    path: Path = tmp_path_factory.mktemp("auth-ttl") / "users.json"
    path.write_text(json.dumps({"users": [
        {"name": "ingest", "password_hash": hash_password("ingest-pw"),
         "grants": [{"on": "*.*.*", "allow": ["read", "write"]}]}]}))
    path.chmod(0o600)
    server = ServerProcess(tmp_path_factory.mktemp("ttl") / "data",
                           args=["--auth-file", path, "--token-ttl", "2"])
    config = TableConfig(Score, catalog="prod", schema_name="ml", table="long")
    from scouter.bifrost import WriteConfig

    producer = DatasetProducer(config, transport(server, "ingest"),
                               WriteConfig(batch_size=5, scheduled_delay_secs=1))
    producer.register()
    for i in range(60):  # 6 s: three token lifetimes
        producer.insert(Score(id=i, user="u"))
        time.sleep(0.1)
    producer.flush()
    client = DatasetClient(transport=transport(server, "ingest"), table_config=config)
    assert sorted(r.id for r in wait_for_rows(client, 60)) == list(range(60))
    producer.shutdown()
    server.stop()
