"""Configuration and startup errors of a server on an s3:// data dir: no --wal-dir,
no credentials, a malformed URL, an unknown ack mode, an endpoint nobody answers,
S3 going away with rows in the WAL. Each exits non-zero with a message that names
the problem (or, for an endpoint that is down, waits for it and then serves), and
no output ever contains the secret key."""
from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import pytest

from conftest import LISTEN_RE, server_binary
from s3_support import SECRET_KEY, free_port, server_env
from s3_tables import assert_exactly_once, config, data_uri, ids_in, insert, maintain, readings, start_server


def run_server(args: List[str], env, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs a server expected to exit by itself; fails the test if it keeps running."""
    binary = server_binary()
    if not binary.exists():
        pytest.fail(f"bifrost-server binary not found at {binary}")
    try:
        return subprocess.run([str(binary), "--port", "0", *map(str, args)], env=env, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the server did not exit within {timeout} s; stderr so far: {exc.stderr!r}")


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")


def assert_refused(result: subprocess.CompletedProcess, *patterns: str) -> str:
    text = output(result)
    assert result.returncode != 0, f"server accepted the configuration:\n{text}"
    assert not LISTEN_RE.search(text), text
    for pattern in patterns:
        assert re.search(pattern, text, re.I), f"message does not match {pattern!r}:\n{text}"
    assert SECRET_KEY not in text, "the secret key appears in the output"
    return text


def test_s3_data_dir_without_wal_dir_is_refused(s3, s3_bucket):
    result = run_server(["--data-dir", data_uri(s3_bucket)], s3.server_env())
    assert_refused(result, r"--wal-dir")


@pytest.mark.parametrize("missing", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_missing_credentials_are_named(s3, s3_bucket, tmp_path, missing):
    env = s3.server_env(**{missing: None})
    result = run_server(["--data-dir", data_uri(s3_bucket), "--wal-dir", tmp_path / "wal"], env)
    assert_refused(result, r"credential|" + missing)


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "s3://UPPER_bucket!/x"])
def test_malformed_s3_url_is_refused(s3, tmp_path, uri):
    result = run_server(["--data-dir", uri, "--wal-dir", tmp_path / "wal"], s3.server_env())
    assert_refused(result, r"s3://|bucket")


def test_unknown_ack_mode_is_refused(s3, s3_bucket, tmp_path):
    result = run_server(["--data-dir", data_uri(s3_bucket), "--wal-dir", tmp_path / "wal", "--ack-mode", "sometimes"],
                        s3.server_env())
    assert_refused(result, r"ack-mode|ack mode", r"wal|commit")


def test_missing_bucket_is_named(s3, tmp_path):
    result = run_server(["--data-dir", "s3://no-such-bucket-bifrost/x", "--wal-dir", tmp_path / "wal"],
                        s3.server_env())
    assert_refused(result, r"no-such-bucket-bifrost")


def test_help_mentions_the_s3_options():
    result = subprocess.run([str(server_binary()), "--help"], capture_output=True, timeout=30)
    text = output(result)
    for option in ("--wal-dir", "--ack-mode", "--extension-dir"):
        assert option in text, f"{option} missing from --help:\n{text}"


class Started:
    """A server process whose stdout is read in the background: the first line
    tells whether (and where) it listens."""

    def __init__(self, args: List[str], env):
        self.proc = subprocess.Popen([str(server_binary()), "--port", "0", *map(str, args)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.first_line: Optional[str] = None
        self._got_line = threading.Event()
        self._stderr: List[bytes] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(
            target=lambda: self._stderr.extend(iter(self.proc.stderr.readline, b"")), daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        line = self.proc.stdout.readline()
        self.first_line = line.decode(errors="replace").strip()
        self._got_line.set()
        for _ in iter(self.proc.stdout.readline, b""):
            pass

    def wait_listening(self, timeout: float) -> Optional[int]:
        self._got_line.wait(timeout)
        match = LISTEN_RE.match(self.first_line or "")
        return int(match.group(2)) if match else None

    def stderr(self) -> str:
        if self.proc.poll() is not None:  # exited: everything it wrote is read once the pipe ends
            self._stderr_reader.join(10)
        return b"".join(self._stderr).decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_unreachable_endpoint_at_start(s3_bucket, tmp_path):
    """Nothing listens at AWS_ENDPOINT_URL: the server exits with a message naming
    the endpoint, or keeps trying (then it must not claim to serve tables); the
    secret never appears."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    srv = Started(["--data-dir", data_uri(s3_bucket), "--wal-dir", tmp_path / "wal"], server_env(endpoint))
    try:
        try:
            srv.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        text = srv.stderr() + (srv.first_line or "")
        assert SECRET_KEY not in text
        if srv.proc.returncode is not None:
            assert srv.proc.returncode != 0, text
            assert endpoint.split("//")[1] in text, f"the message does not name the endpoint:\n{text}"
        else:
            assert re.search(r"retry|retrying|unreachable|connect", text, re.I), \
                f"a waiting server should say what it waits for:\n{text}"
    finally:
        srv.stop()


def test_s3_down_at_restart_with_rows_in_wal(s3, s3_bucket, tmp_path):
    """Killed with 500 rows in its WAL, restarted while S3 refuses connections: the
    server exits naming the problem, or waits and serves once S3 is back; either
    way every acknowledged row is there exactly once afterwards."""
    cfg = config("down_at_start")
    server = start_server(s3, s3_bucket, tmp_path)
    insert(server, cfg, readings(0, 500))
    server.kill()
    s3.proxy.down()
    srv = Started(["--data-dir", data_uri(s3_bucket), "--wal-dir", tmp_path / "wal-a"], s3.server_env())
    try:
        port = srv.wait_listening(15)
        if port is None:  # stdout closed: the process is exiting (or still waiting for S3)
            try:
                srv.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if srv.proc.poll() is not None:  # gave up: the message names S3, then a restart works
            text = srv.stderr()
            assert srv.proc.returncode != 0, text
            assert f"127.0.0.1:{s3.proxy.port}" in text, f"the message does not name the endpoint:\n{text}"
            assert SECRET_KEY not in text
            s3.proxy.up()
            server = start_server(s3, s3_bucket, tmp_path)
            try:
                assert_exactly_once(ids_in(server, cfg), list(range(500)), "after a restart with S3 back")
            finally:
                server.stop()
            return
        s3.proxy.up()
        port = port or srv.wait_listening(60)
        assert port is not None, f"no listening line after S3 came back: {srv.first_line!r}\n{srv.stderr()}"
        waited = SimpleNamespace(uri=f"localhost:{port}")
        assert_exactly_once(ids_in(waited, cfg), list(range(500)), "server that waited for S3")
        assert SECRET_KEY not in srv.stderr()
    finally:
        s3.proxy.up()
        srv.stop()


def test_secret_key_never_logged_even_at_debug(s3, s3_bucket, tmp_path):
    server = start_server(s3, s3_bucket, tmp_path, args=["--log-level", "debug"])
    try:
        insert(server, config("debug_log"), readings(0, 30))
        maintain(server, config("debug_log"), "flush")
    finally:
        server.stop()
    log = Path(server.log_path).read_text(errors="replace")
    assert log, "the debug log is empty"
    assert SECRET_KEY not in log
