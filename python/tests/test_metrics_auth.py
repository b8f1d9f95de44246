"""Operating a server with --auth-file: authentication failures are counted in the
metrics, ServerStats and `bifrost tables` / `bifrost top` show only the tables the
user may read, and the CLI takes its credentials from BIFROST_USERNAME /
BIFROST_PASSWORD like GrpcConfig."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from bifrost import AuthenticationError, DatasetClient, DatasetProducer, GrpcConfig, TableConfig

from conftest import ServerProcess
from test_security import USERS, write_auth_file

BIN = Path(sys.executable).parent / "bifrost"


class Row(BaseModel):
    id: int


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    auth = tmp_path_factory.mktemp("auth") / "users.json"
    write_auth_file(auth)
    srv = ServerProcess(tmp_path_factory.mktemp("ops") / "data", args=["--auth-file", auth, "--metrics-port", "0"])
    admin = GrpcConfig(srv.uri, username="admin", password=USERS["admin"][0])
    for table in ("public", "secret"):
        with DatasetProducer(TableConfig(Row, "prod", "ml", table), admin) as producer:
            producer.insert_many([Row(id=i) for i in range(7)])
            producer.flush()
    url = re.search(r"metrics on (http://\S+/metrics)", srv.log()).group(1)
    yield srv, url
    srv.stop()


def auth_failures(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        for family in text_string_to_metric_families(resp.read().decode()):
            if family.name == "bifrost_auth_failures":
                return family.samples[0].value
    raise AssertionError("bifrost_auth_failures_total missing")


def test_auth_failures_are_counted(secured):
    srv, url = secured
    before = auth_failures(url)
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            with DatasetClient(GrpcConfig(srv.uri, username="admin", password="wrong")) as client:
                client.list_datasets()
    with pytest.raises(AuthenticationError):
        with DatasetClient(GrpcConfig(srv.uri)) as client:  # no credentials at all
            client.server_stats()
    assert auth_failures(url) >= before + 3


def test_server_stats_and_cli_show_only_readable_tables(secured):
    srv, _ = secured
    with DatasetClient(GrpcConfig(srv.uri, username="narrow", password=USERS["narrow"][0])) as client:
        names = [t["table"] for t in client.server_stats()["tables"]]
    assert names == ["public"]
    env = {**os.environ, "BIFROST_GRPC_URI": srv.uri, "BIFROST_USERNAME": "narrow",
           "BIFROST_PASSWORD": USERS["narrow"][0], "COLUMNS": "200"}
    out = subprocess.run([str(BIN), "tables"], capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    assert "prod.ml.public" in out and "secret" not in out
    raw = json.loads(subprocess.run([str(BIN), "top", "--json"], capture_output=True, text=True, env=env,
                                    timeout=60, check=True).stdout)
    assert [t["table"] for t in raw["tables"]] == ["public"]
    denied = subprocess.run([str(BIN), "sql", "SELECT * FROM prod.ml.secret"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert denied.returncode == 1 and "secret" in denied.stderr and "Traceback" not in denied.stderr
    env["BIFROST_PASSWORD"] = "wrong"
    bad = subprocess.run([str(BIN), "health"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("bifrost: ")
    ok = subprocess.run([str(BIN), "--user", "admin", "--password", USERS["admin"][0], "tables", "--json"],
                        capture_output=True, text=True, env=env, timeout=60, check=True)
    assert sorted(t["table"] for t in json.loads(ok.stdout)) == ["public", "secret"]
