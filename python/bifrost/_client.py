"""DatasetClient: the read side. SQL goes to the server over gRPC and comes back as
one Arrow IPC stream (QueryResult); read() turns a table's rows back into validated
model instances. Thread-safe: the underlying channel serves concurrent calls."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from . import _core
from ._config import GrpcConfig, TableConfig
from ._errors import FingerprintMismatchError
from ._producer import flush_local_producers
from ._result import QueryResult
from ._sql import check_condition, encode_params, quote_identifier

__all__ = ["DatasetClient"]


class DatasetClient:
    """Queries bifrost tables. With a ``table_config`` the table must exist on the
    server with the same fingerprint (checked on construction).

    Queries see everything this process inserted before them: open producers in
    this process that write to the same server are flushed first (for read(), only
    the bound table's producers)."""

    def __init__(self, transport: GrpcConfig, table_config: Optional[TableConfig] = None):
        if not isinstance(transport, GrpcConfig):
            raise TypeError(f"transport must be a GrpcConfig, not {type(transport).__name__}")
        if table_config is not None and not isinstance(table_config, TableConfig):
            raise TypeError(f"table_config must be a TableConfig or None, not {type(table_config).__name__}")
        self._transport = transport
        self._table_config = table_config
        self._timeout = transport.timeout_secs
        self._channel = _core.Channel(transport.server_uri, tls=transport.tls, authorization=transport.authorization)
        if table_config is not None:
            self._check_fingerprint(table_config)

    def _check_fingerprint(self, config: TableConfig) -> None:
        info = self.describe_dataset(config.catalog, config.schema_name, config.table)
        server_fp = info.get("fingerprint")
        if server_fp != config.fingerprint_str:
            raise FingerprintMismatchError(
                f"table {config.fqn} on the server has fingerprint {server_fp} but the local model "
                f"{config.model.__name__} has fingerprint {config.fingerprint_str}",
                "BF_EMISMATCH",
            )

    def _require_config(self, what: str) -> TableConfig:
        if self._table_config is None:
            raise ValueError(f"{what}() needs a DatasetClient created with a table_config")
        return self._table_config

    def read(self, limit: Optional[int] = None, where: Optional[str] = None,
             params: Optional[Sequence[Any]] = None, columns: Optional[Sequence[str]] = None) -> List[Any]:
        """Rows of the bound table as validated model instances.

        ``where`` is an SQL condition (``"confidence > ? AND model_name = ?"``) whose
        placeholders are bound server-side from ``params``; ``columns`` limits the
        fields read (fields left out take their model defaults, so every required
        field must be listed); ``limit`` caps the number of rows."""
        config = self._require_config("read")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
        selected = list(config.user_columns)
        if columns is not None:
            if isinstance(columns, str):
                raise TypeError("columns must be a list of field names")
            unknown = [c for c in columns if c not in selected]
            if unknown:
                raise ValueError(f"columns {unknown} are not fields of {config.model.__name__}")
            required = [n for n, f in config.model.model_fields.items() if f.is_required() and n not in columns]
            if required:
                raise ValueError(f"columns must include the required fields {required}")
            selected = list(columns)
        if where is not None:
            where = check_condition(where)
        if params is not None and where is None:
            raise ValueError("params are only used with where=")
        column_sql = ", ".join(quote_identifier(c) for c in selected)
        table = ".".join(quote_identifier(p) for p in (config.catalog, config.schema_name, config.table))
        query = f"SELECT {column_sql} FROM {table}"
        if where is not None:
            query += f" WHERE ({where})"
        if limit is not None:
            query += f" LIMIT {limit}"
        rows = self._query(query, config.fqn, encode_params(params)).to_arrow().to_pylist()
        validate = config.model.model_validate
        return [validate(row) for row in rows]

    def sql(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        """Runs one SELECT / WITH / VALUES statement. ``params`` are bound by the server
        to ``?`` or ``$1`` placeholders through a prepared statement (never spliced into
        the SQL text)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        return self._query(query, params=encode_params(params))

    def _query(self, query: str, fqn: Optional[str] = None, params: Optional[list] = None) -> QueryResult:
        # Records this process inserted before the query are visible to it.
        flush_local_producers(self._transport.server_uri, fqn, self._timeout)
        return QueryResult(self._channel.query(query, self._timeout, params))

    def list_datasets(self) -> List[Dict[str, Any]]:
        """Every registered table with its metadata (fingerprint, schema, location, ...)."""
        return json.loads(self._channel.list_tables(self._timeout))

    def describe_dataset(self, catalog: str, schema_name: str, table: str) -> Dict[str, Any]:
        """One table's metadata; NotFoundError if it is not registered."""
        return json.loads(self._channel.describe_table(catalog, schema_name, table, self._timeout))

    def maintain_dataset(self, catalog: str, schema_name: str, table: str,
                         operations: Sequence[str] = ("flush",),
                         retention_hours: Optional[float] = None) -> Dict[str, Any]:
        """Runs table upkeep on the server now, in this order: "flush" (write the
        acknowledged tail to Parquet and commit it, so Delta readers see it),
        "optimize" (compact small files), "checkpoint", "vacuum" (delete files no
        version references, older than retention_hours), "cleanup_log" (delete log
        files before the newest checkpoint, older than retention_hours). The server
        also runs all of them on its own; retention_hours=None uses its settings.
        Returns what was done (rows_flushed, files_added, files_removed,
        files_deleted, log_files_deleted, checkpoint_version, delta_version)."""
        if isinstance(operations, str):
            operations = [operations]
        return json.loads(self._channel.maintain_table(catalog, schema_name, table, list(operations),
                                                       retention_hours, self._timeout))

    @property
    def table_config(self) -> Optional[TableConfig]:
        return self._table_config

    def __repr__(self) -> str:
        bound = f", table={self._table_config.fqn!r}" if self._table_config else ""
        return f"DatasetClient(server={self._transport.server_uri!r}{bound})"
