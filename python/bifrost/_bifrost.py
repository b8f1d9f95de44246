"""Bifrost: one object for both sides of a table (a DatasetProducer and a
DatasetClient sharing one TableConfig and GrpcConfig)."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from ._client import DatasetClient
from ._config import GrpcConfig, TableConfig, WriteConfig
from ._producer import DatasetProducer
from ._result import QueryResult

__all__ = ["Bifrost"]


class Bifrost:
    """Unified read/write client. The producer registers the table first, then the
    client checks its fingerprint. Use as a context manager or call shutdown()."""

    def __init__(self, table_config: TableConfig, transport: GrpcConfig, write_config: Optional[WriteConfig] = None):
        self._producer = DatasetProducer(table_config=table_config, transport=transport, write_config=write_config)
        try:
            self._client = DatasetClient(transport=transport, table_config=table_config)
        except BaseException:
            self._producer.shutdown()
            raise

    @property
    def producer(self) -> DatasetProducer:
        return self._producer

    @property
    def client(self) -> DatasetClient:
        return self._client

    @property
    def table_config(self) -> TableConfig:
        return self._producer.table_config

    def insert(self, record: Any) -> None:
        self._producer.insert(record)

    def insert_many(self, records: Iterable[Any]) -> int:
        return self._producer.insert_many(records)

    def insert_arrow(self, data: Any) -> int:
        return self._producer.insert_arrow(data)

    def flush(self, timeout: Optional[float] = None) -> int:
        return self._producer.flush(timeout)

    def register(self) -> str:
        return self._producer.register()

    def read(self, limit: Optional[int] = None, where: Optional[str] = None,
             params: Optional[Sequence[Any]] = None, columns: Optional[Sequence[str]] = None) -> List[Any]:
        return self._client.read(limit=limit, where=where, params=params, columns=columns)

    def sql(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        return self._client.sql(query, params)

    def list_datasets(self) -> List[Dict[str, Any]]:
        return self._client.list_datasets()

    def describe_dataset(self, catalog: str, schema_name: str, table: str) -> Dict[str, Any]:
        return self._client.describe_dataset(catalog, schema_name, table)

    def maintain_dataset(self, catalog: str, schema_name: str, table: str,
                         operations: Sequence[str] = ("flush",),
                         retention_hours: Optional[float] = None) -> Dict[str, Any]:
        return self._client.maintain_dataset(catalog, schema_name, table, operations, retention_hours)

    def stats(self) -> Dict[str, Any]:
        return self._producer.stats()

    def shutdown(self, timeout: Optional[float] = None) -> None:
        self._producer.shutdown(timeout)

    def __enter__(self) -> "Bifrost":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"Bifrost({self.table_config.fqn!r})"
