"""A local S3 endpoint for the tests and benches: moto's standalone server
(`moto_server` from the virtualenv's bin dir) on a free loopback port, a
fault-injecting TCP proxy in front of it (down() refuses connections, up() listens
again on the same port; it also counts the HTTP requests that pass), and the
reader-side settings: boto3 clients, delta-rs/polars storage_options and DuckDB's
delta_scan over s3:// (delta + httpfs extensions loaded offline)."""
from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
ACCESS_KEY = "bifrost-test-access-key"
# Distinctive, so that a test can assert it never appears in a log.
SECRET_KEY = "bifrost-test-SECRET-9f3c2a7e"
REGION = "us-east-1"
HTTPFS_EXTENSION = REPO / ".deps" / "duckdb-ext" / "httpfs.duckdb_extension"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(endpoint: str, timeout: float = 30.0, proc: Optional[subprocess.Popen] = None) -> None:
    """Waits until an HTTP server answers at endpoint (any status counts)."""
    deadline = time.monotonic() + timeout
    last: Exception = TimeoutError(endpoint)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the S3 endpoint process exited with {proc.returncode}")
        try:
            urllib.request.urlopen(endpoint + "/", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {endpoint} within {timeout} s: {last}")


class MotoServer:
    """moto's S3 server on a free loopback port; its output goes to log_path."""

    def __init__(self, log_path: Path):
        binary = Path(sys.executable).parent / "moto_server"
        if not binary.exists():
            raise RuntimeError(f"{binary} not found: install python/requirements-dev.txt (moto[server])")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=clean_env())
        try:
            wait_http(self.endpoint, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


DROP_RESPONSE = "drop-response"


def error_response(status: int, code: str) -> bytes:
    """What on_request may return instead of forwarding: an S3 error answer
    (e.g. 503 SlowDown), sent with Connection: close; the request never reaches S3."""
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>injected by the test proxy</Message></Error>").encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body
_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]$")


class _RequestCounter:
    """Follows one client->server byte stream of HTTP/1.1 requests (headers, then a
    Content-Length or chunked body) and records each request line."""

    def __init__(self, record):
        self._record = record
        self._buf = b""
        self._body_left = 0      # bytes of a Content-Length body still to skip
        self._chunked = False    # inside a chunked body
        self._broken = False     # not HTTP as we know it: stop counting this stream

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        self._buf += data
        while True:
            if self._body_left:
                take = min(self._body_left, len(self._buf))
                self._buf = self._buf[take:]
                self._body_left -= take
                if self._body_left:
                    return
            if self._chunked:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(self._buf[:end].split(b";")[0] or b"0", 16)
                if size == 0:  # last chunk, then (no trailers from our clients) CRLF
                    if len(self._buf) < end + 4:
                        return
                    self._buf = self._buf[end + 4:]
                    self._chunked = False
                    continue
                if len(self._buf) < end + 2 + size + 2:
                    return
                self._buf = self._buf[end + 2 + size + 2:]
                continue
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self._buf = self._buf[:end].split(b"\r\n"), self._buf[end + 4:]
            match = _REQUEST_LINE.match(head[0])
            if not match:
                self._broken = True
                return
            agent = ""
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"user-agent":
                    agent = value.strip().decode(errors="replace")
                elif name == b"content-length":
                    self._body_left = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    self._chunked = True
            self._record(match.group(1).decode(), match.group(2).decode(), agent)


class FaultProxy:
    """A TCP proxy on a fixed loopback port in front of an upstream host:port.
    down() closes the listener and every open connection (new clients get
    "connection refused"); up() listens again on the same port. Counts the HTTP
    requests that pass (requests(), reset_counts()); on_request can act on one
    before it is forwarded."""

    def __init__(self, upstream_port: int, port: int = 0):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._conns: List[socket.socket] = []
        self._requests: List[Tuple[str, str]] = []
        self._agents: List[str] = []  # the User-Agent of each of _requests
        self._listener: Optional[socket.socket] = None
        self._accepting: Optional[threading.Thread] = None
        self._stop = threading.Event()
        # Called with (method, target) for each request before its head is forwarded
        # (the request waits for it): lets a test act at an exact moment. Returning
        # DROP_RESPONSE forwards the request but cuts the connection instead of
        # passing its response back (the client cannot know whether it happened);
        # error_response(...) answers it with an S3 error without forwarding it.
        self.on_request: Optional[Callable[[str, str], object]] = None
        self.hook_errors: List[Exception] = []
        self.up()

    def up(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.1)
        listener.listen(128)
        self._stop = threading.Event()
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept_loop, args=(listener, self._stop),
                                           name="s3-proxy-accept", daemon=True)
        self._accepting.start()

    def down(self) -> None:
        """Closes the listener and all connections; returns once the port refuses."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stop.set()
        if self._accepting is not None:
            self._accepting.join(5)
        listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _close(conn)

    def close(self) -> None:
        self.down()

    def requests(self) -> List[Tuple[str, str]]:
        """(method, path-and-query) of every HTTP request seen since reset_counts()."""
        with self._lock:
            return list(self._requests)

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()
            self._agents.clear()

    def requests_with_agent(self) -> List[Tuple[str, str, str]]:
        """(method, target, User-Agent header) of every request seen since reset_counts()."""
        with self._lock:
            return [(m, t, a) for (m, t), a in zip(self._requests, self._agents)]

    def _record(self, method: str, target: str, agent: str, pair: "_Pair") -> None:
        with self._lock:
            self._requests.append((method, target))
            self._agents.append(agent)
        hook = self.on_request
        if hook is not None:
            try:
                action = hook(method, target)
                if action == DROP_RESPONSE:
                    pair.drop_response = True
                elif isinstance(action, bytes):
                    pair.answer_instead = action
            except Exception as exc:  # noqa: BLE001 - kept for the test to raise
                self.hook_errors.append(exc)

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.05)
            if not ready or stop.is_set():
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if stop.is_set():
                    _close(client)
                    _close(upstream)
                    return
                self._conns += [client, upstream]
            pair = _Pair(client, upstream, self._forget)
            counter = _RequestCounter(
                lambda method, target, agent, pair=pair: self._record(method, target, agent, pair))
            threading.Thread(target=pair.pump, args=(client, upstream, counter), daemon=True).start()
            threading.Thread(target=pair.pump, args=(upstream, client, None), daemon=True).start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns = [c for c in self._conns if c not in socks]


class _Pair:
    """One proxied connection: two pumps; the sockets close when both are done."""

    def __init__(self, client: socket.socket, upstream: socket.socket, forget):
        self._socks = (client, upstream)
        self._forget = forget
        self._lock = threading.Lock()
        self._running = 2
        # Set by on_request returning DROP_RESPONSE: the request reaches S3, its
        # response never reaches the client (the connection is cut instead).
        self.drop_response = False
        # Set by on_request returning bytes: sent to the client instead of forwarding
        # the request (which must start the chunk being forwarded), then closed.
        self.answer_instead: Optional[bytes] = None

    def pump(self, src: socket.socket, dst: socket.socket, counter: Optional[_RequestCounter]) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if counter is not None:
                    counter.feed(data)
                    if self.answer_instead is not None:
                        src.sendall(self.answer_instead)
                        for sock in self._socks:
                            _close(sock)
                        break
                elif self.drop_response:
                    # An interim "100 Continue" goes through (the body follows it);
                    # the final answer is dropped and the connection cut.
                    while data.startswith(b"HTTP/1.1 100") and b"\r\n\r\n" in data:
                        end = data.index(b"\r\n\r\n") + 4
                        dst.sendall(data[:end])
                        data = data[end:]
                    if data:
                        for sock in self._socks:
                            _close(sock)
                        break
                    continue
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self._forget(*self._socks)
            for sock in self._socks:
                _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def clean_env() -> Dict[str, str]:
    """This process's environment without any AWS_* setting (no profile or real
    credentials can leak into a test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def server_env(endpoint: str, **overrides: Optional[str]) -> Dict[str, str]:
    """Environment for a bifrost-server talking to the endpoint; an override of
    None removes that variable."""
    env = clean_env()
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=REGION,
               AWS_ENDPOINT_URL=endpoint)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def storage_options(endpoint: str) -> Dict[str, str]:
    """delta-rs / polars storage_options for the endpoint."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true"}


def boto_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def list_keys(client, bucket: str, prefix: str = "") -> List[str]:
    keys: List[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return sorted(keys)


def duckdb_s3(endpoint: str):
    """A DuckDB connection (Python duckdb 1.4.4) with the delta and httpfs extensions
    loaded from local files (no download) and an S3 secret for the endpoint."""
    import duckdb
    import duckdb_ext

    delta = (Path(list(duckdb_ext.__path__)[0]) / "extensions" / f"v{duckdb.__version__}" / "linux_amd64"
             / "delta.duckdb_extension")
    for ext in (delta, HTTPFS_EXTENSION):
        if not ext.is_file():
            raise RuntimeError(f"DuckDB extension missing: {ext} (run scripts/bootstrap.sh)")
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute(f"LOAD '{HTTPFS_EXTENSION}'")
    con.execute(f"LOAD '{delta}'")
    con.execute("SET TimeZone = 'UTC'")
    host = endpoint.split("://", 1)[1]
    con.execute(f"CREATE SECRET bifrost_test (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', "
                f"REGION '{REGION}', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)")
    return con


def delta_scan(endpoint: str, uri: str, columns: str = "*"):
    """The table at uri (s3://bucket/prefix/...) read by DuckDB's delta_scan, as Arrow."""
    con = duckdb_s3(endpoint)
    try:
        return con.execute(f"SELECT {columns} FROM delta_scan(?)", [uri]).fetch_arrow_table()
    finally:
        con.close()


class S3Env:
    """One moto server for a test session, reached through a FaultProxy.
    `endpoint` (the proxy) is for servers under test; `direct_endpoint` (moto
    itself) is for readers and checks, unaffected by injected faults."""

    def __init__(self, log_dir: Path):
        self.moto = MotoServer(log_dir / "moto.log")
        self.proxy = FaultProxy(self.moto.port)
        self.endpoint = self.proxy.endpoint
        self.direct_endpoint = self.moto.endpoint
        self.client = boto_client(self.direct_endpoint)
        self._buckets = 0

    def new_bucket(self, stem: str = "bf") -> str:
        self._buckets += 1
        name = f"{re.sub(r'[^a-z0-9-]', '-', stem.lower())[:40].strip('-') or 'bf'}-{self._buckets}-{os.getpid()}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        return list_keys(self.client, bucket, prefix)

    def storage_options(self) -> Dict[str, str]:
        return storage_options(self.direct_endpoint)

    def server_env(self, **overrides: Optional[str]) -> Dict[str, str]:
        return server_env(self.endpoint, **overrides)

    def close(self) -> None:
        self.proxy.close()
        self.moto.stop()
