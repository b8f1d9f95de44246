"""DatasetProducer: the write side. insert() is one C call: it checks the record's
type and, for flat models (str, int, float, bool, datetime fields, optional or not),
reads the field values straight from the instance into a binary row; other models
are serialized with the model's pydantic-core serializer (the JSON of
``model_dump_json()``). The C producer's background thread batches, encodes Arrow
IPC, sends and retries without the GIL. insert_arrow() hands whole Arrow batches to
that thread without touching rows in Python."""
from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Any, Dict, Iterable, Optional

from . import _core
from ._async import AsyncFlushMixin
from ._config import GrpcConfig, TableConfig, WriteConfig, register_merged
from ._errors import FingerprintMismatchError, SchemaError
from ._schema_diff import explain_mismatch

__all__ = ["DatasetProducer"]

_log = logging.getLogger("bifrost")

# Producers not shut down yet; flushed and stopped at interpreter exit.
_LIVE: "weakref.WeakSet[DatasetProducer]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()
_ATEXIT_TIMEOUT_SECS = 30.0


def _shutdown_live_producers() -> None:
    with _LIVE_LOCK:
        producers = list(_LIVE)
    for producer in producers:
        try:
            producer.shutdown(timeout=_ATEXIT_TIMEOUT_SECS)
        except Exception as exc:  # noqa: BLE001 - exit must go on; the loss is logged
            _log.error("bifrost: producer for %s lost data at exit: %s (stats: %s)",
                       producer.table_config.fqn, exc, producer.stats())


atexit.register(_shutdown_live_producers)


def _forget_producers_in_child() -> None:
    # A forked child inherits the producers' memory but not their threads: they
    # refuse every call there (the C layer checks), and exit must not wait for them.
    with _LIVE_LOCK:
        for producer in list(_LIVE):
            producer._forked = True
        _LIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_producers_in_child)

# Arrow types the binary row path reads straight from a model instance.
_ROW_KINDS = {
    "Utf8View": "str",
    "Utf8": "str",
    "Int64": "int",
    "Float64": "float",
    "Boolean": "bool",
    'Timestamp(Microsecond, Some("UTC"))': "datetime",
}


def _record_plan(table_config: TableConfig):
    """[(field, kind)] when every field of the model can be read directly, else None
    (records then go through the model's JSON serializer)."""
    model = table_config.model
    decorators = getattr(model, "__pydantic_decorators__", None)
    if decorators is None or decorators.field_serializers or decorators.model_serializers:
        return None
    if model.model_config.get("extra") == "allow":
        return None
    plan = []
    for name in table_config.user_columns:
        field = model.model_fields.get(name)
        kind = _ROW_KINDS.get(table_config.fields[name]["arrow_type"])
        if field is None or kind is None or field.exclude:
            return None
        if field.serialization_alias not in (None, name) or field.alias not in (None, name):
            return None
        plan.append((name, kind))
    return plan


def _convert(column: Any, target: Any) -> Any:
    """Casts an Arrow column to the table's type; ISO 8601 strings convert to dates
    and datetimes (naive ones taken as UTC, like insert())."""
    import pyarrow as pa

    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                or pa.types.is_string_view(column.type)):
            raise
    import pyarrow.compute as pc

    text = column.cast(pa.string())
    if pa.types.is_timestamp(target) and target.tz is not None:
        # Values without a zone offset are naive: UTC, like insert() takes them.
        zoned = pc.match_substring_regex(text, r"([Zz]|[+-]\d\d(:?\d\d)?)$")
        text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    return text.cast(target)


def _arrow_target_schema(core: Any):
    import pyarrow as pa

    class _Schema:
        def __init__(self, capsule):
            self._capsule = capsule

        def __arrow_c_schema__(self):
            return self._capsule

    return pa.schema(_Schema(core.arrow_schema()))

_LOCAL_FLUSH_TIMEOUT_SECS = 30.0


def flush_local_producers(server_uri: str, fqn: Optional[str] = None, timeout: Optional[float] = None) -> None:
    """In-process read-your-writes: before a query, flush this process's open
    producers that write to the same server (and table, when ``fqn`` is given), so a
    query sees every record this process inserted before it. Failures are logged,
    not raised: they belong to the producer (its stats and its own flush report
    them), and the query still runs."""
    with _LIVE_LOCK:
        producers = [
            p for p in _LIVE
            if p._transport.server_uri == server_uri and (fqn is None or p.table_config.fqn == fqn)
        ]
    for producer in producers:
        try:
            producer._core.flush(timeout or _LOCAL_FLUSH_TIMEOUT_SECS)
        except Exception as exc:  # noqa: BLE001
            _log.warning("bifrost: flushing producer for %s before a query failed: %s",
                         producer.table_config.fqn, exc)


def _check_types(table_config: Any, transport: Any, write_config: Any) -> WriteConfig:
    if not isinstance(table_config, TableConfig):
        raise TypeError(f"table_config must be a TableConfig, not {type(table_config).__name__}")
    if not isinstance(transport, GrpcConfig):
        raise TypeError(f"transport must be a GrpcConfig, not {type(transport).__name__}")
    if write_config is None:
        return WriteConfig()
    if not isinstance(write_config, WriteConfig):
        raise TypeError(f"write_config must be a WriteConfig, not {type(write_config).__name__}")
    return write_config


class DatasetProducer(AsyncFlushMixin):
    """Writes records of ``table_config.model`` to the table, in the background.

    The table is registered on construction (``register()`` may be called again; it
    is idempotent). ``insert`` never waits for the network; ``flush`` waits until
    everything inserted before it is stored and queryable; ``shutdown`` flushes and
    stops (it also runs at interpreter exit for producers still open).
    """

    def __init__(self, table_config: TableConfig, transport: GrpcConfig, write_config: Optional[WriteConfig] = None):
        write_config = _check_types(table_config, transport, write_config)
        self._table_config = table_config
        self._transport = transport
        self._write_config = write_config
        self._model = table_config.model
        self._core = _core.Producer(
            transport.server_uri,
            table_config.catalog,
            table_config.schema_name,
            table_config.table,
            table_config.json_schema,
            table_config.partition_columns,
            tls=transport.tls,
            authorization=transport.authorization,
            batch_size=write_config.batch_size,
            scheduled_delay_secs=write_config.scheduled_delay_secs,
            max_queue_rows=write_config.max_queue_rows,
            backpressure=write_config.backpressure,
            block_timeout_secs=write_config.block_timeout_secs,
            rpc_timeout_secs=write_config.rpc_timeout_secs,
            max_retries=write_config.max_retries,
            max_queue_bytes=write_config.max_queue_bytes or 0,
        )
        self._to_json = table_config.model.__pydantic_serializer__.to_json
        self._core.set_record_plan(table_config.model, self._to_json, _record_plan(table_config))
        # insert() is the C method itself: no Python frame on the hot path.
        self.insert = self._core.insert_record
        self._arrow_schema = None
        self._closed = False
        self._forked = False
        try:
            if table_config.schema_mode == "merge":
                register_merged(table_config, transport)  # may add the model's new fields
            self.register()
        except BaseException as exc:
            self._core.shutdown(1.0)
            if isinstance(exc, FingerprintMismatchError):
                explain_mismatch(exc, table_config, transport)  # lists the differing columns
            raise
        with _LIVE_LOCK:
            _LIVE.add(self)

    # -- writing ----------------------------------------------------------------
    def insert(self, record: Any) -> None:
        """Queues one record (an instance of the table's model; TypeError otherwise).
        Non-blocking unless the queue is full under the ``"block"`` policy. (Each
        producer replaces this method with its C implementation.)"""
        self._core.insert_record(record)

    def insert_many(self, records: Iterable[Any]) -> int:
        """Queues every record of an iterable; returns how many were queued."""
        return self._core.insert_records(records)

    def insert_arrow(self, data: Any) -> int:
        """Queues the rows of a pyarrow Table / RecordBatch or anything exposing
        ``__arrow_c_stream__`` (e.g. a Polars DataFrame) without converting rows in
        Python. Columns are matched by name (any order); a column the model does not
        have, a missing required column, nulls in a required column or a type that
        cannot be converted to the table's raise SchemaError naming the column.
        Optional columns may be absent (null). Returns the rows queued. Large inputs
        go in chunks; if a later chunk is refused (a full queue with the "raise"
        policy, an enum value not in the model), the exception's ``rows_queued``
        says how many rows before it were queued and will be delivered."""
        import pyarrow as pa
        import pyarrow.compute as pc  # noqa: F401 - casts below need the compute kernels

        if isinstance(data, pa.RecordBatch):
            table = pa.Table.from_batches([data])
        elif isinstance(data, pa.Table):
            table = data
        elif hasattr(data, "__arrow_c_stream__"):
            table = pa.RecordBatchReader.from_stream(data).read_all()
        else:
            raise TypeError(
                f"insert_arrow() expects a pyarrow Table/RecordBatch or an object with __arrow_c_stream__, "
                f"got {type(data).__name__}"
            )
        if self._arrow_schema is None:
            self._arrow_schema = _arrow_target_schema(self._core)
        target = self._arrow_schema
        extra = [name for name in table.column_names if target.get_field_index(name) < 0]
        if extra:
            raise SchemaError(f"insert_arrow(): columns not in the model {self._model.__name__}: {extra}")
        n = table.num_rows
        columns = []
        for field in target:
            if field.name not in table.column_names:
                if not field.nullable:
                    raise SchemaError(f"insert_arrow(): required column '{field.name}' is missing")
                columns.append(pa.nulls(n, field.type))
                continue
            column = table.column(field.name)
            if pa.types.is_string_view(field.type) and (pa.types.is_string(column.type)
                                                        or pa.types.is_large_string(column.type)):
                pass  # plain strings go as they are: the server takes them for Utf8View
            elif column.type != field.type:
                try:
                    column = _convert(column, field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                    raise SchemaError(
                        f"insert_arrow(): column '{field.name}' has type {column.type}, "
                        f"which does not convert to the table's {field.type}: {exc}"
                    ) from None
            if not field.nullable and column.null_count:
                raise SchemaError(
                    f"insert_arrow(): column '{field.name}' is required but has {column.null_count} nulls")
            columns.append(column)
        table = pa.Table.from_arrays(
            columns, schema=pa.schema([pa.field(f.name, c.type, f.nullable) for f, c in zip(target, columns)]))
        if n == 0:
            return 0
        # One InsertBatch per chunk: large enough to be cheap, small enough for one message.
        row_bytes = max(1, table.nbytes // n)
        chunk = max(1, min(max(self._write_config.batch_size, 65536), (16 << 20) // row_bytes))
        queued = 0
        for batch in table.to_batches(max_chunksize=chunk):
            schema_capsule, array_capsule = batch.__arrow_c_array__()
            try:
                queued += self._core.insert_arrow(schema_capsule, array_capsule, batch.nbytes)
            except Exception as exc:
                # Earlier chunks are queued (and will be delivered): say how many rows.
                exc.rows_queued = queued
                if queued and hasattr(exc, "add_note"):
                    exc.add_note(f"insert_arrow(): the first {queued} of {n} rows were queued before this error")
                raise
        return queued

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits until every record inserted before the call is stored and visible to
        queries; returns how many rows this flush saw acknowledged. Raises
        BifrostTimeoutError on timeout and the batch's error if records failed."""
        return self._core.flush(timeout)

    def register(self) -> str:
        """Registers the table: ``"created"`` or ``"already_exists"``. A different
        schema under the same name raises FingerprintMismatchError naming both."""
        return self._core.register()

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Flushes and stops the background thread. Idempotent; insert() raises after."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._closed = True
        self._core.shutdown(timeout)

    def stats(self) -> Dict[str, Any]:
        """Counters accounting for every record: inserted == acknowledged + queued +
        in_flight + dropped + failed, always. Also sent (records in batches sent at
        least once), sent_batches, retried (retry attempts; also as retries),
        failed_batches and last_error. max_queue_rows bounds queued + in_flight."""
        return self._core.stats()

    # -- properties ---------------------------------------------------------------
    @property
    def table_config(self) -> TableConfig:
        return self._table_config

    @property
    def write_config(self) -> WriteConfig:
        return self._write_config

    @property
    def fingerprint(self) -> str:
        return self._core.fingerprint

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "DatasetProducer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"DatasetProducer({self._table_config.fqn!r}, server={self._transport.server_uri!r}, {state})"
