"""DatasetClient: the read side. SQL goes to the server over gRPC and comes back as
an Arrow IPC stream read as it arrives (QueryResult); read() turns a table's rows
back into validated model instances. Thread-safe: the underlying channel serves
concurrent calls. ``sql_async`` / ``read_async`` are the asyncio face (_async.py)."""
from __future__ import annotations

import json
from typing import Any, Dict, Generic, List, Optional, Sequence

from . import _core
from ._async import read_result_async, run_blocking, run_query
from ._config import GrpcConfig, ModelT, TableConfig, register_merged
from ._errors import ClientClosedError, FingerprintMismatchError
from ._logical import model_rows
from ._producer import flush_local_producers
from ._result import QueryResult
from ._schema_diff import format_differences, schema_differences, server_fields
from ._sql import check_condition, encode_params, quote_identifier

__all__ = ["DatasetClient"]


class DatasetClient(Generic[ModelT]):
    """Queries bifrost tables. With a ``table_config`` the table must exist on the
    server with the same fingerprint (checked on construction; a mismatch raises
    FingerprintMismatchError listing the columns that differ).

    Queries see everything this process inserted before them: open producers in
    this process that write to the same server are flushed first (for read(), only
    the bound table's producers).

    ``DatasetClient[Model]`` is generic in the table's model: ``read()`` returns
    ``list[Model]``. Use it as a context manager or call ``close()``."""

    def __init__(self, transport: GrpcConfig, table_config: Optional[TableConfig[ModelT]] = None):
        if not isinstance(transport, GrpcConfig):
            raise TypeError(f"transport must be a GrpcConfig, not {type(transport).__name__}")
        if table_config is not None and not isinstance(table_config, TableConfig):
            raise TypeError(f"table_config must be a TableConfig or None, not {type(table_config).__name__}")
        self._transport = transport
        self._table_config = table_config
        self._timeout = transport.timeout_secs
        self._channel: Any = _core.Channel(transport.server_uri, tls=transport.tls,
                                           authorization=transport.authorization,
                                           **transport.tls_files())
        if table_config is not None:
            try:
                self._check_fingerprint(table_config)
            except BaseException:
                self.close()
                raise

    def _check_fingerprint(self, config: TableConfig[ModelT]) -> None:
        if config.schema_mode == "merge":
            register_merged(config, self._transport)
        info = self.describe_dataset(config.catalog, config.schema_name, config.table)
        server_fp = info.get("fingerprint")
        # Any schema version the table has had reads (extra columns are not selected).
        if config.fingerprint_str not in info.get("schema_fingerprints", [server_fp]):
            diff = schema_differences(config.fields, server_fields(info))
            error = FingerprintMismatchError(
                f"table {config.fqn} on the server does not match the model {config.model.__name__} "
                f"(table fingerprint {server_fp}, model fingerprint {config.fingerprint_str}):\n"
                f"{format_differences(diff)}",
                "BF_EMISMATCH",
            )
            error.differences = diff
            raise error

    def _require_config(self, what: str) -> TableConfig[ModelT]:
        if self._table_config is None:
            raise ValueError(f"{what}() needs a DatasetClient created with a table_config")
        return self._table_config

    def _live_channel(self) -> Any:
        if self._channel is None:
            raise ClientClosedError("this DatasetClient is closed")
        return self._channel

    def _read_query(self, limit: Optional[int], where: Optional[str], params: Optional[Sequence[Any]],
                    columns: Optional[Sequence[str]], version: Optional[int] = None) -> str:
        config = self._require_config("read")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
            raise ValueError(f"version must be a non-negative int or None, got {version!r}")
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
        table_name = config.table if version is None else f"{config.table}@v{version}"
        table = ".".join(quote_identifier(p) for p in (config.catalog, config.schema_name, table_name))
        query = f"SELECT {column_sql} FROM {table}"
        if where is not None:
            query += f" WHERE ({where})"
        if limit is not None:
            query += f" LIMIT {limit}"
        return query

    def _validate_rows(self, result: QueryResult) -> List[ModelT]:
        config = self._require_config("read")
        validate = config.model.model_validate
        # time / timedelta columns come back from Int64 microseconds, maps as dicts
        return [validate(row) for row in model_rows(result.to_arrow(), config.json_schema)]

    def read(self, limit: Optional[int] = None, where: Optional[str] = None,
             params: Optional[Sequence[Any]] = None, columns: Optional[Sequence[str]] = None,
             version: Optional[int] = None) -> List[ModelT]:
        """Rows of the bound table as validated model instances.

        ``where`` is one SQL condition (``"confidence > ? AND model_name = ?"``) whose
        placeholders are bound server-side from ``params``; it is checked on the client
        and refused with InvalidConditionError when it could change the statement
        (unbalanced parentheses, a comment, a ``;``). ``columns`` limits the fields
        read (fields left out take their model defaults, so every required field must
        be listed); ``limit`` caps the number of rows. ``version`` reads the table as
        it was at that Delta version (see ``history()``; rows acknowledged but not yet
        committed are never part of an old version): the query names the table
        ``catalog.schema."table@v<version>"``, which ``sql()`` accepts too."""
        query = self._read_query(limit, where, params, columns, version)
        config = self._require_config("read")
        return self._validate_rows(self._query(query, config.fqn, encode_params(params)))

    async def read_async(self, limit: Optional[int] = None, where: Optional[str] = None,
                         params: Optional[Sequence[Any]] = None,
                         columns: Optional[Sequence[str]] = None,
                         version: Optional[int] = None) -> List[ModelT]:
        """``read()`` as a coroutine that does not block the event loop; cancelling
        the awaiting task cancels the server query."""
        query = self._read_query(limit, where, params, columns, version)
        config = self._require_config("read")
        result = await self._query_async(query, config.fqn, encode_params(params))
        return await read_result_async(result, self._validate_rows)

    def sql(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        """Runs one read-only statement (SELECT / WITH / VALUES / DESCRIBE / SUMMARIZE /
        SHOW). ``params`` are bound by the server to ``?`` or ``$1`` placeholders through
        a prepared statement (never spliced into the SQL text).

        Returns once the first pieces of the result arrived (errors the server reports
        at once are raised here); a large result streams: ``to_reader()`` reads it in
        bounded memory. A write statement raises QueryPermissionError (queries are
        read-only), bad SQL QueryError, Ctrl-C cancels the server query."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        return self._query(query, params=encode_params(params))

    async def sql_async(self, query: str, params: Optional[Sequence[Any]] = None) -> QueryResult:
        """``sql()`` as a coroutine that does not block the event loop: the query is
        read in a worker thread, and cancelling the awaiting task cancels the server
        query. Reading a large result further (``to_arrow()``) blocks; run it with
        ``asyncio.to_thread`` or use ``to_reader()`` in a thread."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        return await self._query_async(query, params=encode_params(params))

    def _query(self, query: str, fqn: Optional[str] = None, params: Optional[List[Any]] = None) -> QueryResult:
        channel = self._live_channel()
        # Records this process inserted before the query are visible to it.
        flush_local_producers(self._transport.server_uri, fqn, self._timeout)
        return QueryResult._from_stream(_core.QueryStream(channel, query, self._timeout, params))

    async def _query_async(self, query: str, fqn: Optional[str] = None,
                           params: Optional[List[Any]] = None) -> QueryResult:
        channel = self._live_channel()
        await run_blocking(flush_local_producers, self._transport.server_uri, fqn, self._timeout)
        # Starting the call does not block; reading it does (in a thread).
        return await run_query(_core.QueryStream(channel, query, self._timeout, params))

    def list_datasets(self) -> List[Dict[str, Any]]:
        """Every registered table with its metadata (fingerprint, schema, location, ...)."""
        tables: List[Dict[str, Any]] = json.loads(self._live_channel().list_tables(self._timeout))
        return tables

    def describe_dataset(self, catalog: str, schema_name: str, table: str) -> Dict[str, Any]:
        """One table's metadata (keys: catalog, schema_name, table, fingerprint,
        partition_columns, json_schema, arrow_schema, location, delta_version,
        num_files, num_rows, tail_rows, size_bytes, created_at_ms); NotFoundError if
        it is not registered."""
        info: Dict[str, Any] = json.loads(self._live_channel().describe_table(catalog, schema_name, table,
                                                                             self._timeout))
        return info

    def server_stats(self) -> Dict[str, Any]:
        """The server's uptime and versions, and per table (those this user may read)
        the backlog and throughput counters since the server started: keys version,
        duckdb_version, uptime_secs, started_at_ms, tail_bytes, queries_running,
        rpcs_total and tables, a list of dicts with catalog, schema_name, table,
        num_rows, tail_rows, tail_bytes (the backlog not yet in Parquet), num_files,
        size_bytes, delta_version, rows_acknowledged, bytes_acknowledged,
        inserts_refused, duplicates_skipped, flushes, last_flush_at_ms, compactions."""
        stats: Dict[str, Any] = json.loads(self._live_channel().server_stats(self._timeout))
        return stats

    def maintain_dataset(self, catalog: str, schema_name: str, table: str,
                         operations: Sequence[str] = ("flush",),
                         retention_hours: Optional[float] = None) -> Dict[str, Any]:
        """Runs table upkeep on the server now, in this order: "flush" (write the
        acknowledged tail to Parquet and commit it, so Delta readers see it),
        "optimize" (compact small files), "checkpoint", "verify" (check every live
        data file's size and recorded checksum; damaged ones are listed in
        "bad_files"), "vacuum" (delete files no
        version references, older than retention_hours), "cleanup_log" (delete log
        files before the newest checkpoint, older than retention_hours). The server
        also runs all of them on its own; retention_hours=None uses its settings.
        Returns what was done (rows_flushed, files_added, files_removed,
        files_deleted, log_files_deleted, checkpoint_version, delta_version,
        files_verified, bad_files)."""
        if isinstance(operations, str):
            operations = [operations]
        done: Dict[str, Any] = json.loads(self._live_channel().maintain_table(
            catalog, schema_name, table, list(operations), retention_hours, self._timeout))
        return done

    def history(self, catalog: str, schema_name: str, table: str) -> List[Dict[str, Any]]:
        """The table's Delta versions still in its log, oldest first: dicts with
        version, timestamp_ms, operation ("CREATE TABLE", "WRITE", "OPTIMIZE",
        "DELETE" for a truncate), rows_added, rows_removed, files_added,
        files_removed, schema_version (-1 when the log's start was cleaned up) and
        data_change (False for a compaction). Needs the read grant."""
        versions: List[Dict[str, Any]] = json.loads(self._live_channel().table_lifecycle(
            "history", catalog, schema_name, table, timeout=self._timeout))
        return versions

    def truncate_dataset(self, catalog: str, schema_name: str, table: str, *,
                         confirm: str) -> Dict[str, Any]:
        """Removes every row: the acknowledged tail is flushed, then one commit
        removes every live file (operation DELETE). History stays (older versions
        are still readable with ``read(version=...)``) until vacuum deletes the
        files after its retention. ``confirm`` must be the full name
        "catalog.schema_name.table". Needs the admin grant. Returns delta_version,
        files_removed, rows_removed."""
        flush_local_producers(self._transport.server_uri, f"{catalog}.{schema_name}.{table}", self._timeout)
        done: Dict[str, Any] = json.loads(self._live_channel().table_lifecycle(
            "truncate", catalog, schema_name, table, confirm=_confirm_text(confirm),
            timeout=self._timeout))
        return done

    def drop_dataset(self, catalog: str, schema_name: str, table: str, *, confirm: str,
                     discard_wal: bool = False) -> Dict[str, Any]:
        """Removes the table from the server: registry entry, view, WAL and every
        file of its directory (history included). Acknowledged rows not yet in
        Parquet are flushed first (a failing flush aborts the drop) unless
        ``discard_wal=True``. Afterwards the name can be registered again, with any
        schema, and starts empty at version 0. ``confirm`` must be the full name
        "catalog.schema_name.table". Needs the admin grant. Returns rows_discarded,
        files_deleted."""
        if not isinstance(discard_wal, bool):
            raise TypeError("discard_wal must be a bool")
        if not discard_wal:
            flush_local_producers(self._transport.server_uri, f"{catalog}.{schema_name}.{table}",
                                  self._timeout)
        done: Dict[str, Any] = json.loads(self._live_channel().table_lifecycle(
            "drop", catalog, schema_name, table, confirm=_confirm_text(confirm),
            discard_wal=discard_wal, timeout=self._timeout))
        return done

    @property
    def table_config(self) -> Optional[TableConfig[ModelT]]:
        """The bound table's config, or None."""
        return self._table_config

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._channel is None

    def close(self) -> None:
        """Releases the connection. Later calls raise ClientClosedError; results
        already returned stay readable (a streaming one keeps its own reference to the
        connection until it is consumed or closed). Idempotent."""
        self._channel = None

    def __enter__(self) -> "DatasetClient[ModelT]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        bound = f", table={self._table_config.fqn!r}" if self._table_config else ""
        closed = ", closed" if self._channel is None else ""
        return f"DatasetClient(server={self._transport.server_uri!r}{bound}{closed})"


def _confirm_text(confirm: Any) -> str:
    if not isinstance(confirm, str):
        raise TypeError(f"confirm must be the table's full name as a str, not {type(confirm).__name__}")
    return confirm
