"""QueryResult: the Arrow IPC stream a query returned, read as it arrives.

A query's result travels from the server as pieces of one Arrow IPC stream.
``DatasetClient.sql()`` reads the first few pieces (up to ``PREFETCH_BYTES``) before
it returns, so errors the server reports at once are raised there and small results
are complete (the server's query is finished). A larger result stays on the wire
until it is consumed:

- ``to_reader()`` returns a ``pyarrow.RecordBatchReader`` that pulls pieces as
  batches are read, so client memory stays bounded by a few pieces;
  ``__arrow_c_stream__`` (the Arrow PyCapsule protocol) hands the same stream to
  Polars, DuckDB or pyarrow. A streamed result can be read this way once;
- ``to_arrow()`` / ``to_polars()`` / ``to_pandas()`` / ``to_bytes()`` read the
  rest and keep the whole result (any number of calls).

An unconsumed result keeps its server query open (one server worker) until it is
read, closed (``close()`` or ``with``), garbage collected, or its deadline passes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only
    import pandas
    import polars
    import pyarrow

__all__ = ["QueryResult", "PREFETCH_BYTES"]

#: Bytes of a result that sql() reads before returning (the server sends record
#: batches of about 4 MiB, one per piece).
PREFETCH_BYTES = 8 << 20


class _PieceFile:
    """A read-only file over the pieces of one IPC stream: the ones already received,
    then the query stream's. pyarrow reads it through ``pyarrow.PythonFile``, which
    asks ``read_buffer``: a read inside one piece is a view of it, so record batches
    decode over the received bytes without a copy (the server sends one batch per
    piece); only a read across pieces joins them."""

    def __init__(self, pieces: List[bytes], stream: Any):
        self._pieces = pieces
        self._next_piece = 0
        self._stream = stream
        self._current = memoryview(b"")
        self._pos = 0
        self._offset = 0
        self.closed = False

    def _advance(self) -> bool:
        while True:
            if self._next_piece < len(self._pieces):
                piece = self._pieces[self._next_piece]
                self._pieces[self._next_piece] = b""  # the reader's batches keep what they use
                self._next_piece += 1
            elif self._stream is not None:
                piece = self._stream.next()
                if piece is None:
                    self._stream = None
                    return False
            else:
                return False
            if piece:
                self._current = memoryview(piece)
                self._pos = 0
                return True

    def read_buffer(self, size: Optional[int] = -1) -> memoryview:
        if self.closed:
            raise ValueError("read from a closed query result")
        if size is not None and size >= 0:
            if self._pos >= len(self._current) and not self._advance():
                return memoryview(b"")
            if size <= len(self._current) - self._pos:
                view = self._current[self._pos:self._pos + size]
                self._pos += size
                self._offset += size
                return view
        return memoryview(self.read(size))

    def read(self, size: Optional[int] = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed query result")
        if size is None or size < 0:
            size = 1 << 62
        out = []
        while size > 0:
            if self._pos >= len(self._current) and not self._advance():
                break
            take = min(size, len(self._current) - self._pos)
            out.append(self._current[self._pos:self._pos + take])
            self._pos += take
            size -= take
        data = out[0].tobytes() if len(out) == 1 else b"".join(out)
        self._offset += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._offset

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._pieces = []
            self._current = memoryview(b"")
            if self._stream is not None:
                self._stream.close()  # cancels the server query if unfinished
                self._stream = None


def _open_pieces(pieces: List[bytes], stream: Any = None) -> "pyarrow.RecordBatchReader":
    import pyarrow as pa

    source = _PieceFile(pieces, stream)
    try:
        return pa.ipc.open_stream(pa.PythonFile(source, mode="r"))
    except BaseException:
        source.close()
        raise


class QueryResult:
    """The result of one query: an Arrow IPC stream, read lazily.

    ``to_arrow()`` keeps the schema even for zero rows. ``QueryResult(ipc_bytes)``
    wraps a complete IPC stream held in memory."""

    __slots__ = ("_ipc", "_table", "_stream", "_pieces", "_done", "_streamed", "_closed", "__weakref__")

    def __init__(self, ipc_bytes: bytes):
        if not isinstance(ipc_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f"QueryResult needs Arrow IPC bytes, not {type(ipc_bytes).__name__}")
        self._ipc: Optional[bytes] = bytes(ipc_bytes)
        self._table: Optional["pyarrow.Table"] = None
        self._stream: Any = None
        self._pieces: List[bytes] = [self._ipc]
        self._done = True
        self._streamed = False
        self._closed = False

    @classmethod
    def _from_stream(cls, stream: Any, prefetch_bytes: int = PREFETCH_BYTES) -> "QueryResult":
        """Wraps a started ``_core.QueryStream``; reads up to ``prefetch_bytes`` now
        (raising the query's error if it comes within them)."""
        self = cls.__new__(cls)
        self._ipc = None
        self._table = None
        self._stream = stream
        self._pieces = []
        self._done = False
        self._streamed = False
        self._closed = False
        received = 0
        try:
            while received < prefetch_bytes:
                piece = stream.next()
                if piece is None:
                    self._finish()
                    break
                self._pieces.append(piece)
                received += len(piece)
        except BaseException:
            stream.close()
            raise
        return self

    def _finish(self) -> None:
        self._stream = None
        self._done = True

    def _read_all_pieces(self) -> List[bytes]:
        """Every piece of the result (reads what is still on the wire)."""
        if not self._done:
            if self._closed:
                raise ValueError("this query result was closed before it was read to the end")
            if self._streamed:
                raise ValueError("this query result was already consumed as a stream (to_reader() or "
                                 "__arrow_c_stream__); run the query again to read it another way")
            try:
                while True:
                    piece = self._stream.next()
                    if piece is None:
                        break
                    self._pieces.append(piece)
            except BaseException:
                self.close()
                raise
            self._finish()
        return self._pieces

    def _read_all(self) -> bytes:
        if self._ipc is None:
            pieces = self._read_all_pieces()
            self._ipc = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return self._ipc

    @property
    def is_complete(self) -> bool:
        """True when the whole result is in client memory (the server query is done)."""
        return self._done

    def to_reader(self) -> "pyarrow.RecordBatchReader":
        """The result as a ``pyarrow.RecordBatchReader`` yielding batches as they
        arrive from the server (bounded client memory). A result that is not
        complete yet can be streamed once; afterwards to_arrow() and friends raise."""
        if self._table is not None:
            return self._table.to_reader()
        if self._done:
            return _open_pieces(list(self._pieces))
        if self._closed:
            raise ValueError("this query result was closed before it was read to the end")
        if self._streamed:
            raise ValueError("this query result was already consumed as a stream")
        self._streamed = True
        pieces, stream = self._pieces, self._stream
        self._pieces = []
        self._stream = None
        return _open_pieces(pieces, stream)

    def __arrow_c_stream__(self, requested_schema: Optional[Any] = None) -> Any:
        """Arrow PyCapsule protocol: ``pl.from_arrow(result)``, ``pa.table(result)``,
        ``duckdb.sql("SELECT ... FROM result")`` read the result as a stream."""
        if self._table is not None:
            return self._table.__arrow_c_stream__(requested_schema)
        return self.to_reader().__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> "pyarrow.Table":
        """The whole result as a ``pyarrow.Table``."""
        if self._table is None:
            self._table = _open_pieces(list(self._read_all_pieces())).read_all()
        return self._table

    def to_polars(self) -> "polars.DataFrame":
        """The whole result as a ``polars.DataFrame``."""
        import polars as pl

        return pl.from_arrow(self.to_arrow())  # type: ignore[return-value]

    def to_pandas(self) -> "pandas.DataFrame":
        """The whole result as a ``pandas.DataFrame``."""
        return self.to_arrow().to_pandas()

    def to_bytes(self) -> bytes:
        """The raw Arrow IPC stream (the whole result)."""
        return self._read_all()

    def close(self) -> None:
        """Cancels the server query if the result was not read to the end, and drops
        what was received. A complete result stays readable."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._pieces = []
            self._closed = True  # nothing left to read
            stream.close()

    def __enter__(self) -> "QueryResult":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def num_rows(self) -> int:
        """Rows in the result (reads the whole result)."""
        rows: int = self.to_arrow().num_rows
        return rows

    @property
    def schema(self) -> "pyarrow.Schema":
        """The result's Arrow schema (reads the whole result)."""
        return self.to_arrow().schema

    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        received = sum(len(p) for p in self._pieces)
        if not self._done:
            state = "closed" if self._closed else "streamed" if self._streamed else "streaming"
            return f"QueryResult({state}, ipc_bytes_received={received})"
        try:
            table = self.to_arrow()
            columns = ", ".join(f"{f.name}: {f.type}" for f in table.schema)
            return f"QueryResult(num_rows={table.num_rows}, columns=[{columns}], ipc_bytes={received})"
        except Exception:  # noqa: BLE001 - repr must not raise (e.g. pyarrow missing)
            return f"QueryResult(ipc_bytes={received})"
