"""A server on S3 keeps its query sandbox: user SQL reaches the tables only through
their views, never an s3:// URL (not under the server's prefix, not even the
table's own files), nor a local file; the operator sees the server's own S3
requests on the metrics endpoint."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from bifrost import DatasetClient
from bifrost._errors import BifrostError

from s3_support import SECRET_KEY
from s3_tables import config, grpc, insert, maintain, readings, start_server, table_key

METRICS_RE = re.compile(r"metrics on (http://\S+/metrics)")


@pytest.fixture
def server(s3, s3_bucket, tmp_path):
    srv = start_server(s3, s3_bucket, tmp_path, args=["--metrics-port", "0"])
    yield srv
    srv.stop()


def test_user_sql_cannot_reach_the_bucket(server, s3, s3_bucket):
    cfg = config()
    insert(server, cfg, readings(0, 30))
    maintain(server, cfg, "flush")
    client = DatasetClient(transport=grpc(server), table_config=cfg)
    assert client.sql(f"SELECT count(*) AS n FROM {cfg.fqn}").to_arrow().column("n")[0].as_py() == 30
    keys = s3.keys(s3_bucket, table_key(cfg))
    own_file = next(k for k in keys if k.endswith(".parquet"))
    attempts = [
        f"SELECT * FROM 's3://{s3_bucket}/{own_file}'",
        f"SELECT * FROM read_parquet('s3://{s3_bucket}/{own_file}')",
        f"SELECT * FROM read_parquet('s3://{s3_bucket}/elsewhere/x.parquet')",
        f"SELECT * FROM read_text('s3://{s3_bucket}/{table_key(cfg)}/_delta_log/00000000000000000000.json')",
        f"SELECT * FROM glob('s3://{s3_bucket}/*')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM duckdb_secrets()",
    ]
    for sql in attempts:
        with pytest.raises(BifrostError) as info:
            client.sql(sql).to_arrow()
        assert SECRET_KEY not in str(info.value)  # the credentials are never echoed back


def test_s3_requests_are_counted_on_the_metrics_endpoint(server, s3_bucket):
    cfg = config()
    url = METRICS_RE.search(server.log()).group(1)

    def puts() -> int:
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        match = re.search(r'^bifrost_s3_requests_total\{kind="put"\} (\d+)$', text, re.M)
        assert match, text[:2000]
        return int(match.group(1))

    before = puts()
    insert(server, cfg, readings(0, 9))
    maintain(server, cfg, "flush")
    deadline = time.monotonic() + 10
    while puts() < before + 2 and time.monotonic() < deadline:  # registration + commit at least
        time.sleep(0.2)
    assert puts() >= before + 2
