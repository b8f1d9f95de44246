"""Helpers for the scouter-ml compatibility suite (test_scouter_*.py): deciding
whether the published client is the one imported, and a small hand-written
protobuf codec so tests can send the scouter.grpc.v1 messages the client sends
(field numbers from proto/scouter/grpc/v1/scouter.proto) when they need bytes
the client would never produce (a resent batch, a missing column)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_real_scouter() -> None:
    """Skip the module under .venv, where `scouter` is our compatibility
    namespace; fail when the suite was started to test the real client
    (BIFROST_SCOUTER_REAL=1, make test-scouter) and it is not installed."""
    try:
        import scouter._scouter  # noqa: F401  (only the published package has it)
    except ImportError:
        if os.environ.get("BIFROST_SCOUTER_REAL"):
            pytest.fail("the published scouter-ml client is not importable: run make setup "
                        "(it creates .venv-scouter) and use .venv-scouter/bin/python")
        pytest.skip("needs the published scouter-ml client: make test-scouter",
                    allow_module_level=True)


# ---- protobuf, by hand ---------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode(fields: list[tuple[int, object]]) -> bytes:
    """fields: (number, value) with str/bytes (length-delimited) or int (varint)."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            out += _varint(number << 3) + _varint(value)
        else:
            data = value.encode() if isinstance(value, str) else bytes(value)
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def decode(data: bytes) -> dict[int, list]:
    """Field number -> values (bytes for length-delimited, int for varints)."""
    out: dict[int, list] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 2:
            n = varint()
            value = data[i:i + n]
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


class Wire:
    """Unary scouter.grpc.v1 calls with raw bytes over grpcio."""

    def __init__(self, uri: str, token: str | None = None):
        import grpc

        self._grpc = grpc
        self.channel = grpc.insecure_channel(uri)
        self.token = token

    def call(self, method: str, request: bytes, metadata=None, timeout: float = 30) -> dict[int, list]:
        fn = self.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        md = list(metadata or [])
        if self.token:
            md.append(("authorization", f"Bearer {self.token}"))
        return decode(fn(request, metadata=md or None, timeout=timeout))

    def login(self, user: str = "guest", password: str = "guest") -> dict[int, list]:
        return self.call("/scouter.grpc.v1.AuthService/Login", encode([(1, user), (2, password)]))

    def register(self, catalog, schema_name, table, json_schema: str, partitions=()) -> dict[int, list]:
        fields = [(1, catalog), (2, schema_name), (3, table), (4, json_schema)]
        fields += [(5, p) for p in partitions]
        return self.call("/scouter.grpc.v1.DatasetService/RegisterDataset", encode(fields))

    def insert(self, catalog, schema_name, table, ipc: bytes, fingerprint: str) -> dict[int, list]:
        return self.call("/scouter.grpc.v1.DatasetService/InsertBatch",
                         encode([(1, catalog), (2, schema_name), (3, table), (4, ipc), (5, fingerprint)]))

    def query(self, sql: str) -> bytes:
        reply = self.call("/scouter.grpc.v1.DatasetService/QueryDataset", encode([(1, sql)]))
        return reply.get(1, [b""])[0]

    def close(self) -> None:
        self.channel.close()


def bifrost_python(script: str, *args: str) -> str:
    """Runs a script with our own package (.venv), for rows written or read
    through bifrost.v1 next to the scouter client."""
    python = REPO / ".venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
