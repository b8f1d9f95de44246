"""Fixtures for the end-to-end tests: the real bifrost-server binary started on a free
port (or on a fixed one for the documented examples, which hard-code
localhost:50051) with a temporary data directory, stopped with SIGTERM at teardown.
The binary is build/bifrost-server unless BIFROST_SERVER_BIN says otherwise."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"^bifrost-server listening on (\S+):(\d+)\b")


def server_binary() -> Path:
    return Path(os.environ.get("BIFROST_SERVER_BIN", REPO / "build" / "bifrost-server"))


class ServerProcess:
    """A running bifrost-server; ``uri`` is "localhost:<port>"."""

    def __init__(self, data_dir: Path, port: int = 0, args=(), preexec_fn=None):
        binary = server_binary()
        if not binary.exists():
            pytest.fail(f"bifrost-server binary not found at {binary} (build it or set BIFROST_SERVER_BIN)")
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}.server.log"
        self._log = open(self.log_path, "ab")  # a restarted server appends
        self.proc = subprocess.Popen(
            [str(binary), "--port", str(port), "--data-dir", str(data_dir), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            preexec_fn=preexec_fn,
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
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

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
