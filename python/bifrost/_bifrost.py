"""Bifrost: one object for both sides of a table (a DatasetProducer and a
DatasetClient sharing one TableConfig and GrpcConfig), generic in the model."""
from __future__ import annotations

from typing import Any, Dict, Generic, Iterable, List, Optional, Sequence

from ._client import DatasetClient
from ._config import GrpcConfig, ModelT, TableConfig, WriteConfig
from ._producer import DatasetProducer
from ._result import QueryResult

__all__ = ["Bifrost"]


class Bifrost(Generic[ModelT]):
    """Unified read/write client. The producer registers the table first, then the
    client checks its fingerprint. Use as a context manager or call shutdown().
    ``Bifrost[Model]``: ``read()`` returns ``list[Model]``."""

    def __init__(self, table_config: TableConfig[ModelT], transport: GrpcConfig,
                 write_config: Optional[WriteConfig] = None):
        self._producer = DatasetProducer(table_config=table_config, transport=transport, write_config=write_config)
        try:
            self._client: DatasetClient[ModelT] = DatasetClient(transport=transport, table_config=table_config)
        except BaseException:
            self._producer.shutdown()
            raise

    @property
    def producer(self) -> DatasetProducer:
        """The write side."""
        return self._producer

    @property
    def client(self) -> DatasetClient[ModelT]:
        """The read side."""
        return self._client

    @property
    def table_config(self) -> TableConfig[ModelT]:
        """The table's config."""
        return self._producer.table_config

    def insert(self, record: ModelT) -> None:
        """Queues one record (see DatasetProducer.insert)."""
        self._producer.insert(record)

    def insert_many(self, records: Iterable[ModelT]) -> int:
        """Queues records; returns how many (see DatasetProducer.insert_many)."""
        return self._producer.insert_many(records)

    def insert_arrow(self, data: Any) -> int:
        """Queues an Arrow table or batch (see DatasetProducer.insert_arrow)."""
        return self._producer.insert_arrow(data)

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits until every queued record is acknowledged or failed."""
        return self._producer.flush(timeout)

    async def flush_async(self, timeout: Optional[float] = None) -> int:
        """flush() without blocking the event loop."""
        return await self._producer.flush_async(timeout)

    def register(self) -> str:
        """Registers the table (done at construction); returns the server's status."""
        return self._producer.register()

    def read(self, limit: Optional[int] = None, where: Optional[str] = None,
             params: Optional[Sequence[Any]] = None, columns: Optional[Sequence[str]] = None,
             version: Optional[int] = None) -> List[ModelT]:
        """Rows as validated models (see DatasetClient.read); ``version`` reads an older one."""
        return self._client.read(limit=limit, where=where, params=params, columns=columns, version=version)

    async def read_async(self, limit: Optional[int] = None, where: Optional[str] = None,
                         params: Optional[Sequence[Any]] = None,
                         columns: Optional[Sequence[str]] = None,
                         version: Optional[int] = None) -> List[ModelT]:
        """read() without blocking the event loop."""
        return await self._client.read_async(limit=limit, where=where, params=params, columns=columns,
                                             version=version)

    def history(self) -> List[Dict[str, Any]]:
        """The bound table's Delta versions (see DatasetClient.history)."""
        c = self.table_config
        return self._client.history(c.catalog, c.schema_name, c.table)

    def sql(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        """One read-only SQL statement (see DatasetClient.sql)."""
        return self._client.sql(query, params)

    async def sql_async(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        """sql() without blocking the event loop."""
        return await self._client.sql_async(query, params)

    def list_datasets(self) -> List[Dict[str, Any]]:
        """Every registered table with its metadata."""
        return self._client.list_datasets()

    def describe_dataset(self, catalog: str, schema_name: str, table: str) -> Dict[str, Any]:
        """One table's metadata."""
        return self._client.describe_dataset(catalog, schema_name, table)

    def maintain_dataset(self, catalog: str, schema_name: str, table: str,
                         operations: Sequence[str] = ("flush",),
                         retention_hours: Optional[float] = None) -> Dict[str, Any]:
        """Runs table upkeep now (see DatasetClient.maintain_dataset)."""
        return self._client.maintain_dataset(catalog, schema_name, table, operations, retention_hours)

    def stats(self) -> Dict[str, Any]:
        """The producer's counters."""
        return self._producer.stats()

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Flushes and stops the producer; the client stays usable for queries."""
        self._producer.shutdown(timeout)

    def close(self) -> None:
        """shutdown(), then closes the client too."""
        try:
            self.shutdown()
        finally:
            self._client.close()

    def __enter__(self) -> "Bifrost[ModelT]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"Bifrost({self.table_config.fqn!r})"
