"""Authentication, per-table authorization and TLS against the real server: users and
grants from an auth file (hashes made by `bifrost-server hash-password`), bearer
tokens from Login renewed by the client, refusals with clear errors, SIGHUP reload,
TLS and mTLS with certificates generated here, and safe defaults in open mode."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc as grpcio
import pytest
from pydantic import BaseModel

from bifrost import (AuthenticationError, BifrostConnectionError, BifrostError, DatasetClient,
                     DatasetProducer, GrpcConfig, PermissionDeniedError, TableConfig, WriteConfig)

import raw_grpc
from conftest import ServerProcess, server_binary


class Score(BaseModel):
    id: int
    user: str


def hash_password(password: str) -> str:
    done = subprocess.run([str(server_binary()), "hash-password"], input=password, text=True,
                          capture_output=True, check=True)
    return done.stdout.strip()


USERS = {
    "ingest": ("ingest-pw", [{"on": "prod.ml.*", "allow": ["write"]}]),
    "analyst": ("analyst-pw", [{"on": "prod.*.*", "allow": ["read"]}]),
    "admin": ("admin-pw", [{"on": "*.*.*", "allow": ["read", "write", "admin"]}]),
    "narrow": ("narrow-pw", [{"on": "prod.ml.public", "allow": ["read"]}]),
}


def write_auth_file(path: Path, users=USERS) -> None:
    path.write_text(json.dumps({"users": [
        {"name": name, "password_hash": hash_password(pw), "grants": grants}
        for name, (pw, grants) in users.items()]}))
    path.chmod(0o600)


def as_user(server: ServerProcess, name: str, **kw) -> GrpcConfig:
    return GrpcConfig(server_uri=server.uri, username=name, password=USERS[name][0], **kw)


def cfg(table: str, catalog: str = "prod") -> TableConfig:
    return TableConfig(Score, catalog=catalog, schema_name="ml", table=table)


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users.json"
    write_auth_file(path)
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory, auth_file):
    server = ServerProcess(tmp_path_factory.mktemp("secured") / "data", args=["--auth-file", auth_file])
    # Tables the tests read: public, secret (prod.ml) and other.ml.t (outside prod).
    admin = as_user(server, "admin")
    for table_cfg in (cfg("public"), cfg("secret"), cfg("t", catalog="other")):
        with DatasetProducer(table_cfg, admin) as producer:
            producer.insert_many([Score(id=i, user=f"u{i}") for i in range(10)])
            assert producer.flush(timeout=60) == 10
    yield server
    server.stop()


def test_no_credentials_is_unauthenticated_on_every_rpc(secured):
    name = raw_grpc.table_name("prod", "ml", "public")
    for method, request in [
        ("RegisterTable", raw_grpc.register_request(name, json.dumps(Score.model_json_schema()))),
        ("InsertBatch", raw_grpc.insert_request(name, "f" * 32, b"x" * 1000)),
        ("ListTables", b""), ("DescribeTable", raw_grpc.table_name("prod", "ml", "public")),
        ("MaintainTable", name),
    ]:
        _, error = raw_grpc.call(secured.uri, method, request)
        assert error is not None and error.code() == grpcio.StatusCode.UNAUTHENTICATED, method
    with grpcio.insecure_channel(secured.uri) as channel:
        stream = channel.unary_stream("/bifrost.v1.Bifrost/Query")(raw_grpc.query_request("select 1"))
        with pytest.raises(grpcio.RpcError) as caught:
            list(stream)
        assert caught.value.code() == grpcio.StatusCode.UNAUTHENTICATED
    with pytest.raises(AuthenticationError):
        DatasetClient(GrpcConfig(server_uri=secured.uri)).list_datasets()


def test_wrong_password_and_unknown_user_are_refused_alike(secured):
    for user, password in [("analyst", "nope"), ("nobody", "whatever")]:
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            DatasetClient(GrpcConfig(server_uri=secured.uri, username=user, password=password)).list_datasets()
    log = secured.log()
    assert "login refused" in log and "nope" not in log and "whatever" not in log


def test_each_verb_is_allowed_and_refused_by_grants(secured):
    ingest = as_user(secured, "ingest")
    with DatasetProducer(cfg("public"), ingest) as producer:   # write: register + insert
        producer.insert(Score(id=100, user="x"))
        assert producer.flush(timeout=30) == 1
    with pytest.raises(PermissionDeniedError, match="may not read table prod.ml.public"):
        DatasetClient(ingest).sql("SELECT count(*) FROM prod.ml.public")
    with pytest.raises(PermissionDeniedError, match="may not admin"):
        DatasetClient(ingest).maintain_dataset("prod", "ml", "public", ["flush"])
    with pytest.raises(PermissionDeniedError, match="may not write"):
        with DatasetProducer(cfg("t", catalog="other"), ingest) as producer:
            producer.register()
    analyst = DatasetClient(as_user(secured, "analyst"))
    assert analyst.sql("SELECT count(*) AS n FROM prod.ml.public").to_arrow().column("n")[0].as_py() == 11
    assert analyst.describe_dataset("prod", "ml", "secret")["table"] == "secret"
    with pytest.raises(PermissionDeniedError):
        analyst.sql("SELECT * FROM other.ml.t")
    with pytest.raises(PermissionDeniedError, match="may not write"):
        with DatasetProducer(cfg("public"), as_user(secured, "analyst")) as producer:
            producer.register()
    admin = DatasetClient(as_user(secured, "admin"))
    assert admin.maintain_dataset("prod", "ml", "public", ["flush"])["rows_flushed"] >= 0


def test_a_query_touching_one_forbidden_table_is_refused_naming_it(secured):
    narrow = DatasetClient(as_user(secured, "narrow"))
    assert narrow.sql("SELECT count(*) AS n FROM prod.ml.public").to_arrow().column("n")[0].as_py() >= 10
    for sql in ["SELECT * FROM prod.ml.public p JOIN prod.ml.secret s ON p.id = s.id",
                "SELECT * FROM prod.ml.public WHERE id IN (SELECT id FROM PROD.ML.SECRET)",
                "WITH x AS (SELECT * FROM prod.ml.secret) SELECT * FROM x",
                "DESCRIBE prod.ml.secret"]:
        with pytest.raises(PermissionDeniedError, match="prod.ml.secret"):
            narrow.sql(sql)
    with pytest.raises(PermissionDeniedError):
        narrow.describe_dataset("prod", "ml", "secret")
    names = {d["table"] for d in narrow.list_datasets()}
    assert names == {"public"}
    assert {d["table"] for d in DatasetClient(as_user(secured, "admin")).list_datasets()} >= {"public", "secret", "t"}
    assert "user 'narrow'" in secured.log()


def test_the_same_query_text_is_checked_for_every_caller_every_time(secured):
    # The server keeps the syntax tree of recent query texts: grants, the file and
    # catalog bans must still be checked on every query, whoever sends it.
    analyst = DatasetClient(as_user(secured, "analyst"))
    narrow = DatasetClient(as_user(secured, "narrow"))
    secret = "SELECT count(*) AS n FROM prod.ml.secret"
    for _ in range(3):
        assert analyst.sql(secret).to_arrow().column("n")[0].as_py() == 10
        with pytest.raises(PermissionDeniedError, match="prod.ml.secret"):
            narrow.sql(secret)
        with pytest.raises(PermissionDeniedError, match="reading files directly"):
            analyst.sql("SELECT * FROM 'prod/ml/secret/x.parquet'")
        with pytest.raises(PermissionDeniedError, match="read-only"):
            analyst.sql("INSERT INTO prod.ml.secret VALUES (1, 'x')")


def test_a_grant_removed_by_reload_refuses_a_query_text_it_allowed_before(tmp_path):
    path = tmp_path / "users.json"
    write_auth_file(path, {"admin": USERS["admin"], "analyst": USERS["analyst"]})
    server = ServerProcess(tmp_path / "data", args=["--auth-file", path])
    try:
        with DatasetProducer(cfg("kept"), as_user(server, "admin")) as producer:
            producer.insert_many([Score(id=i, user="k") for i in range(5)])
            assert producer.flush(timeout=60) == 5
        analyst = DatasetClient(as_user(server, "analyst"))
        sql = "SELECT count(*) AS n FROM prod.ml.kept"
        assert analyst.sql(sql).to_arrow().column("n")[0].as_py() == 5
        write_auth_file(path, {"admin": USERS["admin"],
                               "analyst": ("analyst-pw", [{"on": "other.*.*", "allow": ["read"]}])})
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloaded" not in server.log():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with pytest.raises(PermissionDeniedError, match="prod.ml.kept"):
            analyst.sql(sql)
    finally:
        server.stop()


def test_expired_tokens_are_renewed_without_losing_a_record(tmp_path, auth_file):
    server = ServerProcess(tmp_path / "data", args=["--auth-file", auth_file, "--token-ttl", "2"])
    try:
        admin = as_user(server, "admin")
        with DatasetProducer(cfg("renewed"), admin, WriteConfig(batch_size=50, scheduled_delay_secs=0.2)) as producer:
            for i in range(300):  # about 6 s: the token is renewed a few times
                producer.insert(Score(id=i, user="r"))
                time.sleep(0.02)
            assert producer.flush(timeout=60) == 300
            assert producer.stats()["failed"] == 0
        client = DatasetClient(admin)
        time.sleep(2.5)  # the client's token has expired by now
        assert client.sql("SELECT count(DISTINCT id) AS n FROM prod.ml.renewed").to_arrow().column("n")[0].as_py() == 300
    finally:
        server.stop()


def test_sighup_reloads_the_auth_file_and_a_bad_file_keeps_the_old_users(tmp_path):
    path = tmp_path / "users.json"
    write_auth_file(path, {"admin": USERS["admin"]})
    server = ServerProcess(tmp_path / "data", args=["--auth-file", path])
    try:
        with pytest.raises(AuthenticationError):
            DatasetClient(as_user(server, "analyst")).list_datasets()
        write_auth_file(path, {"admin": USERS["admin"], "analyst": USERS["analyst"]})
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloaded" not in server.log():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert DatasetClient(as_user(server, "analyst")).list_datasets() == []
        path.write_text('{"users": [{"name": "x", "password_hash": "plain-text", "grants": []}]}')
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "not reloaded" not in server.log():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert DatasetClient(as_user(server, "admin")).list_datasets() == []
    finally:
        server.stop()


def run_server(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), "--port", "0", *map(str, args)], capture_output=True,
                          text=True, timeout=30)


def test_bad_auth_files_and_open_mode_on_a_public_address_stop_the_server(tmp_path):
    for content, needle in [
        ('{"users": [{"name": "a", "password_hash": "secret", "grants": []}]}', "plain-text"),
        ('{"users": [{"name": "a", "password_hash": "HASH", "grants": [], "role": "x"}]}', "unknown key 'role'"),
        ('{"users": [{"name": "a", "password_hash": "HASH", "grants": [{"on": "a.b", "allow": ["read"]}]}]}', "catalog.schema.table"),
        ('{"users": [{"name": "a", "password_hash": "HASH", "grants": [{"on": "a.b.c", "allow": ["fly"]}]}]}', "unknown verb 'fly'"),
        ("not json", "not valid JSON"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(content.replace("HASH", hash_password("pw")))
        done = run_server("--data-dir", tmp_path / "d", "--auth-file", path)
        assert done.returncode == 2 and needle in done.stderr, (needle, done.stderr)
    done = run_server("--data-dir", tmp_path / "d", "--host", "0.0.0.0")
    assert done.returncode == 2 and "--insecure" in done.stderr
    assert done.stderr.strip().count("\n") == 0


# ---- TLS -----------------------------------------------------------------------------


def openssl(*args, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "2", "-subj", f"/CN={ca}", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *extra, cwd=d)
    return d


def test_tls_serves_trusted_clients_and_refuses_plaintext_and_wrong_ca(tmp_path, certs, monkeypatch):
    server = ServerProcess(tmp_path / "data", args=["--tls-cert", certs / "server.pem", "--tls-key", certs / "server.key"])
    try:
        monkeypatch.setenv("BIFROST_TLS_CA_FILE", str(certs / "ca.pem"))
        secure = GrpcConfig(server_uri=f"https://localhost:{server.port}")
        with DatasetProducer(cfg("tls"), secure) as producer:
            producer.insert(Score(id=1, user="t"))
            assert producer.flush(timeout=30) == 1
        assert DatasetClient(secure).sql("SELECT count(*) AS n FROM prod.ml.tls").to_arrow().column("n")[0].as_py() == 1
        started = time.monotonic()
        with pytest.raises(BifrostConnectionError):
            DatasetClient(GrpcConfig(server_uri=server.uri, timeout_secs=5)).list_datasets()
        assert time.monotonic() - started < 10
        monkeypatch.setenv("BIFROST_TLS_CA_FILE", str(certs / "other-ca.pem"))
        with pytest.raises(BifrostConnectionError):
            DatasetClient(GrpcConfig(server_uri=f"https://localhost:{server.port}", timeout_secs=5)).list_datasets()
    finally:
        server.stop()


def test_mtls_requires_a_client_certificate(tmp_path, certs, monkeypatch):
    server = ServerProcess(tmp_path / "data", args=["--tls-cert", certs / "server.pem", "--tls-key", certs / "server.key",
                                                    "--tls-client-ca", certs / "ca.pem"])
    try:
        monkeypatch.setenv("BIFROST_TLS_CA_FILE", str(certs / "ca.pem"))
        uri = f"https://localhost:{server.port}"
        with pytest.raises(BifrostConnectionError):
            DatasetClient(GrpcConfig(server_uri=uri, timeout_secs=5)).list_datasets()
        with_cert = GrpcConfig(server_uri=uri, timeout_secs=5, tls_ca_file=certs / "ca.pem",
                               tls_cert_file=certs / "client.pem", tls_key_file=certs / "client.key")
        assert DatasetClient(with_cert).list_datasets() == []
        with DatasetProducer(cfg("mtls"), with_cert) as producer:
            producer.insert(Score(id=1, user="m"))
            assert producer.flush(timeout=30) == 1
        monkeypatch.setenv("BIFROST_TLS_CERT_FILE", str(certs / "client.pem"))
        monkeypatch.setenv("BIFROST_TLS_KEY_FILE", str(certs / "client.key"))
        assert DatasetClient(GrpcConfig(server_uri=uri, timeout_secs=5)).list_datasets()[0]["table"] == "mtls"
    finally:
        server.stop()


def test_producer_under_tls_and_auth_keeps_exactly_once_through_a_restart(tmp_path, certs, auth_file, monkeypatch):
    monkeypatch.setenv("BIFROST_TLS_CA_FILE", str(certs / "ca.pem"))
    args = ["--auth-file", auth_file, "--tls-cert", certs / "server.pem", "--tls-key", certs / "server.key"]
    server = ServerProcess(tmp_path / "data", args=args)
    port = server.port
    total = 3000
    admin = GrpcConfig(server_uri=f"https://localhost:{port}", username="admin", password=USERS["admin"][0])
    try:
        with DatasetProducer(cfg("restarted"), admin, WriteConfig(batch_size=100, scheduled_delay_secs=0.1)) as producer:
            for i in range(total):
                producer.insert(Score(id=i, user="x"))
                if i == total // 2:
                    server.kill()
                    server = ServerProcess(tmp_path / "data", port=port, args=args)
            assert producer.flush(timeout=120) == total
        client = DatasetClient(admin)
        row = client.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM prod.ml.restarted").to_arrow().to_pylist()[0]
        assert row == {"n": total, "d": total}
    finally:
        server.stop()


def test_a_flood_of_failing_logins_never_holds_every_worker(tmp_path, auth_file):
    """Failed logins are delayed (0.1 s doubling), but at most two sleep at once:
    the rest of a flood is refused at once with a clear message, so the workers
    stay free and a user with a token is served meanwhile."""
    server = ServerProcess(tmp_path / "data", args=["--auth-file", auth_file, "--workers", "3"])
    try:
        analyst = DatasetClient(as_user(server, "analyst"))
        analyst.list_datasets()  # logged in before the flood
        bad = GrpcConfig(server_uri=server.uri, username="analyst", password="wrong", timeout_secs=60)
        for _ in range(5):  # delays 0 + 0.1 + 0.2 + 0.4 + 0.8 s; the next one waits 1.6 s
            with pytest.raises(AuthenticationError, match="wrong user name or password"):
                DatasetClient(bad).list_datasets()
        messages = []

        def attempt() -> None:
            try:
                DatasetClient(bad).list_datasets()
            except AuthenticationError as e:
                messages.append(str(e))

        flood = [threading.Thread(target=attempt) for _ in range(8)]
        for t in flood:
            t.start()
        # Without the limit the flood holds all three workers for seconds at a time.
        assert isinstance(analyst.list_datasets(), list)
        for t in flood:
            t.join(60)
        assert len(messages) == 8
        refused_at_once = [m for m in messages if "too many failed logins" in m]
        # two sleep out their delay (and fail), the rest are refused at once (all six of
        # them unless a thread starts after a delay ended)
        assert 1 <= len(refused_at_once) <= 6, messages
        assert "try again in" in refused_at_once[0]
        assert "delayed logins are waiting already" in server.log()
    finally:
        server.stop()
