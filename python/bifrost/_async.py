"""The asyncio face of the client: coroutines that never block the event loop.

Blocking C calls run in the loop's default thread pool with the GIL released. A
query is started from the loop (sending it does not block) and read in a thread;
when the awaiting task is cancelled, the server query is cancelled too (the
thread's wait ends at once and the server stops the query).

``AsyncDatasetClient`` wraps a ``DatasetClient``; ``DatasetClient.sql_async`` /
``read_async`` and ``DatasetProducer.flush_async`` (via ``AsyncFlushMixin``) are
the same coroutines on the synchronous objects."""
from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, List, Optional, Sequence, TypeVar

from ._config import GrpcConfig, ModelT, TableConfig
from ._result import QueryResult

if TYPE_CHECKING:  # pragma: no cover
    from ._client import DatasetClient

__all__ = ["AsyncDatasetClient", "AsyncFlushMixin", "run_blocking", "run_query"]

T = TypeVar("T")


def _consume(future: "asyncio.Future[Any]") -> None:
    # The awaiting task may be gone (cancelled): fetch the outcome so asyncio does not
    # log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Runs ``fn(*args)`` in the loop's default executor and awaits it."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, functools.partial(fn, *args))
    future.add_done_callback(_consume)
    return await future


async def run_query(stream: Any) -> QueryResult:
    """Reads the first pieces of a started ``_core.QueryStream`` in a thread; a
    cancelled task cancels the server query."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, QueryResult._from_stream, stream)
    future.add_done_callback(_consume)
    try:
        return await future
    except asyncio.CancelledError:
        stream.cancel()  # the thread's wait ends; _from_stream closes the stream
        raise


async def read_result_async(result: QueryResult, convert: Callable[[QueryResult], T]) -> T:
    """``convert(result)`` in a thread (it reads the rest of the result); a cancelled
    task closes the result, which cancels the server query."""
    try:
        return await run_blocking(convert, result)
    except asyncio.CancelledError:
        result.close()
        raise


class AsyncFlushMixin:
    """Adds ``await producer.flush_async()`` to a class with a blocking ``flush``."""

    flush: Callable[..., int]

    async def flush_async(self, timeout: Optional[float] = None) -> int:
        """``flush(timeout)`` in a worker thread: waits until every record inserted so
        far is acknowledged or failed, without blocking the event loop. Returns the
        number of records acknowledged by this flush."""
        return await run_blocking(self.flush, timeout)


class AsyncDatasetClient(Generic[ModelT]):
    """A ``DatasetClient`` whose calls are coroutines.

    ``AsyncDatasetClient(transport, table_config)`` checks the table's fingerprint
    while constructing (a blocking call, as at application start-up);
    ``await AsyncDatasetClient.connect(...)`` does it in a thread. Use ``async with``
    or ``close()`` to release the connection."""

    def __init__(self, transport: GrpcConfig, table_config: Optional[TableConfig[ModelT]] = None,
                 *, client: "Optional[DatasetClient[ModelT]]" = None):
        from ._client import DatasetClient

        self._client: DatasetClient[ModelT] = client if client is not None else DatasetClient(transport, table_config)

    @classmethod
    async def connect(cls, transport: GrpcConfig,
                      table_config: Optional[TableConfig[ModelT]] = None) -> "AsyncDatasetClient[ModelT]":
        """Creates the client without blocking the loop (the fingerprint check runs in
        a thread)."""
        from ._client import DatasetClient

        client = await run_blocking(DatasetClient, transport, table_config)
        return cls(transport, table_config, client=client)

    @property
    def sync(self) -> "DatasetClient[ModelT]":
        """The underlying blocking DatasetClient."""
        return self._client

    async def sql(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        """``DatasetClient.sql`` as a coroutine (see ``DatasetClient.sql_async``)."""
        return await self._client.sql_async(query, params)

    async def read(self, limit: Optional[int] = None, where: Optional[str] = None,
                   params: Optional[Sequence[Any]] = None,
                   columns: Optional[Sequence[str]] = None) -> List[ModelT]:
        """``DatasetClient.read`` as a coroutine: rows of the bound table as models."""
        return await self._client.read_async(limit=limit, where=where, params=params, columns=columns)

    async def list_datasets(self) -> List[Dict[str, Any]]:
        """``DatasetClient.list_datasets`` in a thread."""
        return await run_blocking(self._client.list_datasets)

    async def describe_dataset(self, catalog: str, schema_name: str, table: str) -> Dict[str, Any]:
        """``DatasetClient.describe_dataset`` in a thread."""
        return await run_blocking(self._client.describe_dataset, catalog, schema_name, table)

    async def maintain_dataset(self, catalog: str, schema_name: str, table: str,
                               operations: Sequence[str] = ("flush",),
                               retention_hours: Optional[float] = None) -> Dict[str, Any]:
        """``DatasetClient.maintain_dataset`` in a thread."""
        return await run_blocking(self._client.maintain_dataset, catalog, schema_name, table,
                                  operations, retention_hours)

    def close(self) -> None:
        """Closes the underlying client (results already returned stay readable)."""
        self._client.close()

    async def __aenter__(self) -> "AsyncDatasetClient[ModelT]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Async{self._client!r}"
