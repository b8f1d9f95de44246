"""QueryResult: the Arrow IPC stream a query returned, with conversions to pyarrow,
Polars and pandas (each decoded once, lazily)."""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["QueryResult"]


class QueryResult:
    """Wraps one Arrow IPC stream. ``to_arrow()`` keeps the schema even for zero rows."""

    __slots__ = ("_ipc", "_table")

    def __init__(self, ipc_bytes: bytes):
        if not isinstance(ipc_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f"QueryResult needs Arrow IPC bytes, not {type(ipc_bytes).__name__}")
        self._ipc = bytes(ipc_bytes)
        self._table = None

    def to_arrow(self):
        """The result as a ``pyarrow.Table``."""
        if self._table is None:
            import pyarrow as pa

            self._table = pa.ipc.open_stream(self._ipc).read_all()
        return self._table

    def to_polars(self):
        """The result as a ``polars.DataFrame``."""
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    def to_pandas(self):
        """The result as a ``pandas.DataFrame``."""
        return self.to_arrow().to_pandas()

    def to_bytes(self) -> bytes:
        """The raw Arrow IPC stream."""
        return self._ipc

    @property
    def num_rows(self) -> int:
        return self.to_arrow().num_rows

    @property
    def schema(self):
        return self.to_arrow().schema

    def __len__(self) -> int:
        return self.num_rows

    def __arrow_c_stream__(self, requested_schema: Optional[Any] = None):
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        try:
            table = self.to_arrow()
            columns = ", ".join(f"{f.name}: {f.type}" for f in table.schema)
            return f"QueryResult(num_rows={table.num_rows}, columns=[{columns}], ipc_bytes={len(self._ipc)})"
        except Exception:  # noqa: BLE001 - repr must not raise (e.g. pyarrow missing)
            return f"QueryResult(ipc_bytes={len(self._ipc)})"
