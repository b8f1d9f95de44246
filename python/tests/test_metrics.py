"""Prometheus endpoint: scraped during a real ingest and parsed with the
prometheus_client text parser; per-table counters move by exactly the rows sent,
a refused insert is counted by its reason, flushes fill the duration histogram,
RPCs are counted by method and code; only GET /metrics is served; names follow
the conventions (``_total`` counters, ``_seconds`` / ``_bytes`` units)."""
from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

import raw_grpc
from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig

from conftest import ServerProcess

METRICS_RE = re.compile(r"metrics on (http://\S+/metrics)")


class Sample(BaseModel):
    id: int
    name: str


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("metrics") / "data", args=["--metrics-port", "0"])
    url = METRICS_RE.search(srv.log()).group(1)
    yield srv, url
    srv.stop()
    assert srv.proc.returncode == 0


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_by_exactly_the_rows_sent(metrics_server):
    srv, url = metrics_server
    fqn = "metrics.ingest.samples"
    cfg = TableConfig(Sample, "metrics", "ingest", "samples")
    with DatasetProducer(cfg, GrpcConfig(srv.uri)) as producer:
        _, before = scrape(url)
        assert value(before, "bifrost_table_rows_acknowledged_total", table=fqn) == 0
        sent = 0
        for batch in range(5):
            producer.insert_many([Sample(id=i, name="n") for i in range(1000 + batch)])
            producer.flush()
            sent += 1000 + batch
            _, mid = scrape(url)  # scraped while the ingest goes on
            assert value(mid, "bifrost_table_rows_acknowledged_total", table=fqn) == sent
            assert value(mid, "bifrost_table_tail_rows", table=fqn) == sent
        assert value(mid, "bifrost_table_bytes_acknowledged_total", table=fqn) > 0
        assert value(mid, "bifrost_table_wal_bytes", table=fqn) > 0
        assert value(mid, "bifrost_table_tail_bytes", table=fqn) > 0
    with DatasetClient(GrpcConfig(srv.uri)) as client:
        client.maintain_dataset("metrics", "ingest", "samples", ["flush", "checkpoint"])
        assert client.sql(f"SELECT count(*) FROM {fqn}").to_arrow().column(0)[0].as_py() == sent
    # The Query RPC is counted when its handler returns, just after the last
    # result message left (the client may have it all before that): poll.
    deadline = time.monotonic() + 10
    while True:
        families, after = scrape(url)
        if (value(after, "bifrost_rpcs_total", method="Query", code="OK") >= 1
                and value(after, "bifrost_queries_running") == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert value(after, "bifrost_table_rows_acknowledged_total", table=fqn) == sent
    assert value(after, "bifrost_table_tail_rows", table=fqn) == 0
    assert value(after, "bifrost_table_wal_bytes", table=fqn) == 0
    assert value(after, "bifrost_table_flushes_total", table=fqn) == 1
    assert value(after, "bifrost_table_commits_total", table=fqn) == 1
    assert value(after, "bifrost_table_checkpoints_total", table=fqn) == 1
    assert value(after, "bifrost_table_files", table=fqn) >= 1
    assert value(after, "bifrost_table_live_bytes", table=fqn) > 0
    assert value(after, "bifrost_table_last_flush_timestamp_seconds", table=fqn) > 1.7e9
    assert value(after, "bifrost_table_flush_duration_seconds_count", table=fqn) == 1
    assert value(after, "bifrost_table_flush_duration_seconds_bucket", table=fqn, le="+Inf") == 1
    assert families["bifrost_table_flush_duration_seconds"].type == "histogram"
    assert value(after, "bifrost_rpcs_total", method="InsertBatch", code="OK") >= 5
    assert value(after, "bifrost_rpcs_total", method="Query", code="OK") >= 1
    assert value(after, "bifrost_rpc_duration_seconds_count", method="Query") >= 1
    assert value(after, "bifrost_query_duration_seconds_count") >= 1
    assert value(after, "bifrost_query_result_bytes_total") > 0
    assert value(after, "bifrost_queries_running") == 0
    assert value(after, "bifrost_process_resident_memory_bytes") > 0


def test_refused_and_duplicate_inserts_are_counted_by_reason(metrics_server):
    srv, url = metrics_server
    fqn = "metrics.refused.samples"
    cfg = TableConfig(Sample, "metrics", "refused", "samples")
    DatasetProducer(cfg, GrpcConfig(srv.uri)).shutdown()
    name = raw_grpc.table_name("metrics", "refused", "samples")
    for _ in range(3):
        _, error = raw_grpc.call(srv.uri, "InsertBatch", raw_grpc.insert_request(name, "f" * 32, b"x"))
        assert error is not None
    _, s = scrape(url)
    assert value(s, "bifrost_table_inserts_refused_total", table=fqn, reason="schema") == 3
    assert value(s, "bifrost_table_inserts_refused_total", table=fqn, reason="memory_full") == 0
    assert value(s, "bifrost_table_rows_acknowledged_total", table=fqn) == 0
    # RPCs are counted when the handler returns, just after the reply left: poll.
    import time
    deadline = time.monotonic() + 10
    while True:
        refused = value(s, "bifrost_rpcs_total", method="InsertBatch", code="FAILED_PRECONDITION") + \
            value(s, "bifrost_rpcs_total", method="InsertBatch", code="INVALID_ARGUMENT")
        if refused >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
        _, s = scrape(url)
    assert refused == 3


def test_names_follow_prometheus_conventions(metrics_server):
    _, url = metrics_server
    families, _ = scrape(url)
    assert families
    for name, family in families.items():
        assert name.startswith("bifrost_")
        if family.type == "counter":
            assert any(s.name == name + "_total" for s in family.samples) or not family.samples
        assert not name.endswith("_ms") and "millis" not in name


def test_only_get_metrics_is_served(metrics_server):
    _, url = metrics_server
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=10)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as post:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=10)
    assert post.value.code == 405


def test_metrics_off_by_default_and_bad_values_refused(tmp_path):
    srv = ServerProcess(tmp_path / "data")
    srv.stop()
    assert "metrics on" not in srv.log_path.read_text()
    import subprocess

    from conftest import server_binary

    for args in (["--metrics-port", "70000"], ["--metrics-port", "x"], ["--metrics-host", ""]):
        proc = subprocess.run([str(server_binary()), "--port", "0", "--data-dir", str(tmp_path / "d"), *args],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and "invalid value" in proc.stderr
    proc = subprocess.run([str(server_binary()), "--port", "0", "--data-dir", str(tmp_path / "d"),
                           "--metrics-port", "0", "--metrics-host", "no-such-host.invalid"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--metrics-host" in proc.stderr
