"""Fixtures for the end-to-end tests: the real bifrost-server binary started on a free
port (or on a fixed one for the documented examples, which hard-code
localhost:50051) with a temporary data directory, stopped with SIGTERM at teardown.
The binary is build/bifrost-server unless BIFROST_SERVER_BIN says otherwise.
For tables on S3: `s3` (one moto server for the session behind a fault-injecting
proxy, started by the first test that asks for it) and `s3_bucket` (a fresh bucket)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Optional, Union

import pytest

REPO = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"^bifrost-server listening on (\S+):(\d+)\b")


def server_binary() -> Path:
    return Path(os.environ.get("BIFROST_SERVER_BIN", REPO / "build" / "bifrost-server"))


class ServerProcess:
    """A running bifrost-server; ``uri`` is "localhost:<port>". data_dir is a local
    path or an "s3://bucket/prefix" string; the log goes next to a local data dir,
    else (or when given) into log_dir as <log_name>.server.log (a restarted server
    appends). env replaces the environment (AWS_* settings for S3)."""

    def __init__(self, data_dir: Union[Path, str], port: int = 0, args=(), preexec_fn=None,
                 log_dir: Optional[Path] = None, log_name: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None):
        binary = server_binary()
        if not binary.exists():
            pytest.fail(f"bifrost-server binary not found at {binary} (build it or set BIFROST_SERVER_BIN)")
        self.data_dir = data_dir
        remote = isinstance(data_dir, str) and data_dir.startswith("s3://")
        if remote and log_dir is None:
            raise ValueError("a server with an s3:// data dir needs a log_dir for its log")
        if log_dir is None:
            data_dir = Path(data_dir)
            log_dir = data_dir.parent
        if log_name is None:
            log_name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(data_dir)[5:]) if remote else Path(data_dir).name
        self.log_path = Path(log_dir) / f"{log_name}.server.log"
        self._log = open(self.log_path, "ab")  # a restarted server appends
        self.proc = subprocess.Popen(
            [str(binary), "--port", str(port), "--data-dir", str(data_dir), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            preexec_fn=preexec_fn,
            env=env,
        )
        first_line = self._read_first_line(timeout=30)
        match = LISTEN_RE.match(first_line)
        if not match:
            self.stop()
            pytest.fail(f"bifrost-server did not report its port; first stdout line: {first_line!r}; log:\n{self.log()}")
        self.port = int(match.group(2))
        self.uri = f"localhost:{self.port}"
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _read_first_line(self, timeout: float) -> str:
        result = {}

        def read():
            result["line"] = self.proc.stdout.readline().decode(errors="replace").strip()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        return result.get("line", "")

    def _drain(self) -> None:
        for _ in iter(self.proc.stdout.readline, b""):
            pass

    def log(self) -> str:
        return self.full_log()[-4000:]

    def full_log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, as far as the data is concerned)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the session, on a free port."""
    data_dir = tmp_path_factory.mktemp("bifrost") / "data"
    srv = ServerProcess(data_dir)
    yield srv
    srv.stop()
    assert srv.proc.returncode == 0, f"server exited with {srv.proc.returncode}; log:\n{srv.log()}"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def server_50051(tmp_path):
    """A fresh server on localhost:50051, for documented examples that hard-code it."""
    deadline = time.monotonic() + 10
    while not _port_free(50051):
        if time.monotonic() > deadline:
            pytest.fail("port 50051 is busy; the documented examples connect to localhost:50051")
        time.sleep(0.2)
    srv = ServerProcess(tmp_path / "data", port=50051)
    yield srv
    srv.stop()


@pytest.fixture
def grpc(server):
    from bifrost import GrpcConfig

    return GrpcConfig(server_uri=server.uri)


_counter = 0


@pytest.fixture
def unique_table(request):
    """A table name unique within the session (tests share one server)."""
    global _counter
    _counter += 1
    base = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:80]
    return f"{base}_{_counter}"


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A local S3 endpoint for the session (moto behind a FaultProxy; see
    s3_support.S3Env), started by the first test that uses it."""
    from s3_support import S3Env

    env = S3Env(tmp_path_factory.mktemp("s3"))
    yield env
    env.close()


@pytest.fixture
def s3_bucket(s3, request):
    """A fresh, empty bucket for this test; the proxy is up, its counts reset, no hook."""
    s3.proxy.up()
    s3.proxy.reset_counts()
    s3.proxy.on_request = None
    s3.proxy.hook_errors.clear()
    yield s3.new_bucket(request.node.name.replace("_", "-")[:30])
    s3.proxy.on_request = None
