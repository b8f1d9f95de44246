"""Raw bifrost.v1 requests for tests that must send what our own client never
would (a NUL byte in a name, bytes after the IPC end marker, a dictionary bomb):
protobuf messages encoded by hand (field numbers from proto/bifrost/v1/bifrost.proto)
and sent with grpcio's generic unary call, so nothing in between checks them."""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import grpc


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _uint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _text(value) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def table_name(catalog, schema_name, table) -> bytes:
    return _field(1, _text(catalog)) + _field(2, _text(schema_name)) + _field(3, _text(table))


def register_request(name: bytes, json_schema: str, partition_columns: Iterable[str] = ()) -> bytes:
    out = _field(1, name) + _field(2, _text(json_schema))
    for column in partition_columns:
        out += _field(3, _text(column))
    return out


def insert_request(name: bytes, fingerprint: str, ipc: bytes, producer_id: str = "",
                   sequence: int = 0, after_sequence: int = 0) -> bytes:
    out = _field(1, name) + _field(2, _text(fingerprint)) + _field(3, ipc)
    if producer_id:
        out += _field(4, _text(producer_id)) + _uint(5, sequence)
    if after_sequence:
        out += _uint(6, after_sequence)
    return out


def query_request(sql) -> bytes:
    return _field(1, _text(sql))


def call(uri: str, method: str, request: bytes, timeout: float = 60) -> Tuple[Optional[bytes], Optional[grpc.RpcError]]:
    """(response bytes, None) or (None, the error) for /bifrost.v1.Bifrost/<method>."""
    with grpc.insecure_channel(uri, options=[("grpc.max_send_message_length", -1),
                                             ("grpc.max_receive_message_length", -1)]) as channel:
        stub = channel.unary_unary(f"/bifrost.v1.Bifrost/{method}")
        try:
            return stub(request, timeout=timeout), None
        except grpc.RpcError as error:
            return None, error
