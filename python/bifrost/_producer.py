"""DatasetProducer: the write side. insert() is one C call: it checks the record's
type and reads the field values straight from the instance (nested models, lists
and enums included) into a binary row guided by the table's schema, so what is
stored is exactly the instance's values: NaN, ±inf and -0.0 stay themselves,
datetimes keep their full UTC offset, and a value the table cannot hold (an int
beyond 64 bits, an instant outside years 1-9999 UTC, a value of another type) is
refused at insert() naming the field. Columns are named as in the model's JSON
schema (aliases included) and values are read by attribute name, so both always
agree. The C producer's background thread batches (by rows and bytes), encodes
Arrow IPC, sends and retries without the GIL. insert_arrow() hands Arrow batches
to that thread without touching rows in Python.

Events of the C producer (batch failed, retrying during an outage, recovered,
records dropped, record too large) reach the ``"bifrost"`` logger and the
``WriteConfig.on_error`` callbacks through one daemon thread (``_EventThread``),
never through the producer's own thread."""
from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Any, Dict, Iterable, List, Optional

from . import _core
from ._async import AsyncFlushMixin
from ._config import GrpcConfig, TableConfig, WriteConfig, register_merged
from ._errors import FingerprintMismatchError, RecordTooLargeError, SchemaError, error_from_status
from ._logical import check_int_enum, int_enum_columns, logical_schema, to_storage
from ._schema_diff import explain_mismatch

__all__ = ["DatasetProducer"]

_log = logging.getLogger("bifrost")
_grpc_log = logging.getLogger("bifrost.grpc")

# Producers not shut down yet; flushed and stopped at interpreter exit.
_LIVE: "weakref.WeakSet[DatasetProducer]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _shutdown_live_producers() -> None:
    with _LIVE_LOCK:
        producers = list(_LIVE)
    for producer in producers:
        stats = producer.stats()
        pending = stats["queued"] + stats["in_flight"]
        timeout = producer.write_config.shutdown_timeout_secs
        if pending:
            _log.warning("bifrost: producer for %s: %d record(s) not yet delivered at exit; waiting up "
                         "to %.3g s (WriteConfig.shutdown_timeout_secs)", producer.table_config.fqn,
                         pending, timeout)
        try:
            producer.shutdown(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - exit must go on; the loss is logged
            _log.error("bifrost: producer for %s lost data at exit: %s (stats: %s)",
                       producer.table_config.fqn, exc, producer.stats())
    _EVENTS.drain()


atexit.register(_shutdown_live_producers)


class _EventThread:
    """Routes the C producers' events (and gRPC core's log lines) to logging and
    on_error callbacks, on one daemon thread started at import (and with the first
    producer of a forked child)."""

    _LEVELS = {
        "batch_failed": logging.ERROR,
        "record_too_large": logging.ERROR,
        "retrying": logging.WARNING,
        "dropped": logging.WARNING,
        "recovered": logging.INFO,
    }
    _FAILURES = ("batch_failed", "record_too_large", "dropped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._producers: "weakref.WeakValueDictionary[int, DatasetProducer]" = weakref.WeakValueDictionary()

    def add(self, producer: "DatasetProducer") -> None:
        with self._lock:
            self._producers[producer._core.id()] = producer
        self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="bifrost-events", daemon=True)
                self._thread.start()

    def reset_in_child(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self._producers = weakref.WeakValueDictionary()

    def _run(self) -> None:
        while True:
            try:
                event = _core.next_event(0.5)
            except BaseException:  # noqa: BLE001 - interpreter shutting down
                return
            if event is not None:
                self._dispatch(event)

    def drain(self) -> None:
        """Delivers the events already queued (at exit, before the interpreter stops)."""
        while True:
            event = _core.next_event(0.0)
            if event is None:
                return
            self._dispatch(event)

    def _dispatch(self, event: Any) -> None:
        producer_id, kind, table, count, status, message, lost = event
        if kind == "grpc_log":  # gRPC core's own lines; table is "file:line"
            level = {"ERROR": logging.ERROR, "INFO": logging.INFO}.get(status, logging.DEBUG)
            _grpc_log.log(level, "gRPC: %s (%s)", message, table)
            return
        try:
            if lost:
                _log.warning("bifrost: %d producer event(s) were discarded (event queue full)", lost)
            _log.log(self._LEVELS.get(kind, logging.WARNING), "bifrost: producer for %s: %s", table, message,
                     extra={"bifrost_event": kind, "bifrost_table": table, "bifrost_count": count})
            producer = self._producers.get(producer_id)
            callback = producer.write_config.on_error if producer is not None else None
            if callback is not None and kind in self._FAILURES:
                error = error_from_status(status, message, "record_too_large" if kind == "record_too_large" else None)
                try:
                    callback(count, error, table)
                except Exception:  # noqa: BLE001 - a callback never kills the dispatcher
                    _log.exception("bifrost: on_error callback for %s raised", table)
        except Exception:  # noqa: BLE001
            pass


_EVENTS = _EventThread()
_EVENTS.start()


def _forget_producers_in_child() -> None:
    # A forked child inherits the producers' memory but not their threads: they
    # refuse every call there (the C layer checks), and exit must not wait for them.
    with _LIVE_LOCK:
        for producer in list(_LIVE):
            producer._forked = True
        _LIVE.clear()
    _EVENTS.reset_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_producers_in_child)

def _column_name(name: str, field: Any) -> str:
    """The column (JSON schema property) of a model field: its validation alias, else
    its alias, else its name (as model_json_schema() names it)."""
    alias = getattr(field, "validation_alias", None)
    if isinstance(alias, str):
        return alias
    choices = getattr(alias, "choices", None)
    if choices:
        first = choices[0]
        if isinstance(first, str):
            return first
        path = getattr(first, "path", None)
        if path and isinstance(path[0], str):
            return path[0]
    path = getattr(alias, "path", None)
    if path and isinstance(path[0], str):
        return path[0]
    if isinstance(getattr(field, "alias", None), str):
        return field.alias
    return name


def _column_map(cls: type) -> Optional[Dict[str, str]]:
    """{column: attribute} of a pydantic model class (None for other classes: their
    attributes are read by the column's name)."""
    fields = getattr(cls, "model_fields", None)
    if not isinstance(fields, dict):
        return None
    return {_column_name(name, field): name for name, field in fields.items()}


def _to_text(value: Any) -> Any:
    """The text pydantic's JSON gives a non-str value of a string column (UUID, URL, ...)."""
    import pydantic_core

    return pydantic_core.to_jsonable_python(value)


def _record_attrs(table_config: TableConfig) -> List[str]:
    """The instance attribute of each user column, in column order."""
    mapping = _column_map(table_config.model) or {}
    return [mapping.get(column, column) for column in table_config.user_columns]


def _column_default(table_config: TableConfig, column: str) -> Any:
    """(True, default) when the model gives the column a default, else (False, None)."""
    from pydantic_core import PydanticUndefined

    model = getattr(table_config, "model", None)
    if model is None:  # a table known only by its stored schema (the CLI's load)
        return False, None
    attr = (_column_map(model) or {}).get(column, column)
    field = model.model_fields.get(attr)
    if field is None:
        return False, None
    if field.default_factory is not None:
        try:
            return True, field.default_factory()
        except TypeError:  # factories taking the validated data
            return False, None
    if field.default is PydanticUndefined:
        return False, None
    return True, field.default


def _jsonable(value: Any) -> Any:
    """A default value as pyarrow takes it (models as dicts, enums as values)."""
    import enum

    from pydantic import BaseModel

    if isinstance(value, BaseModel):  # keyed by column (alias) names, like the table
        columns = {attr: column for column, attr in (_column_map(type(value)) or {}).items()}
        return {columns.get(k, k): _jsonable(v) for k, v in value.__dict__.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# Microseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the instants
# a datetime (and so read()) can hold.
_MIN_US, _MAX_US = -62135596800000000, 253402300799999999


def _check_instants(name: str, column: Any) -> None:
    """Refuses timestamps outside years 1-9999 in UTC, naming the column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bounds = pc.min_max(column.cast(pa.int64()))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low < _MIN_US or high > _MAX_US:
        raise SchemaError(f"insert_arrow(): column '{name}' has instants outside years 1-9999 in UTC, "
                          "which the table cannot hold")


def _split_by_bytes(batch: Any, limit: int) -> Iterable[Any]:
    """Slices of batch whose estimated size (buffers + 64 bytes a row for the system
    columns) is under limit; a single row over it is yielded alone."""
    if batch.nbytes + 64 * batch.num_rows <= limit or batch.num_rows <= 1:
        yield batch
        return
    half = batch.num_rows // 2
    yield from _split_by_bytes(batch.slice(0, half), limit)
    yield from _split_by_bytes(batch.slice(half), limit)


def _convert(column: Any, target: Any) -> Any:
    """Casts an Arrow column to the table's type; ISO 8601 strings convert to dates
    and datetimes (naive ones taken as UTC, like insert())."""
    import pyarrow as pa

    if pa.types.is_decimal(target) and pa.types.is_floating(column.type):
        # pyarrow rounds floats to the scale; through their shortest text a value
        # with more decimal places than the column holds is refused instead.
        column = column.cast(pa.string())
    if isinstance(column.type, pa.BaseExtensionType) and column.type.extension_name == "arrow.uuid":
        # UUID columns are stored as their canonical text (lowercase, 36 characters).
        column = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
    if pa.types.is_dictionary(column.type) and not pa.types.is_dictionary(target):
        # Dictionary-encoded values (pandas categoricals, Parquet dictionary reads)
        # are decoded first: pyarrow casts a dictionary to its value type only.
        column = column.cast(column.type.value_type)
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
            **transport.tls_files(),
            batch_size=write_config.batch_size,
            scheduled_delay_secs=write_config.scheduled_delay_secs,
            max_queue_rows=write_config.max_queue_rows,
            backpressure=write_config.backpressure,
            block_timeout_secs=write_config.block_timeout_secs,
            rpc_timeout_secs=write_config.rpc_timeout_secs,
            max_retries=write_config.max_retries,
            max_queue_bytes=write_config.max_queue_bytes or 0,
            max_batch_bytes=write_config.max_batch_bytes,
            max_in_flight=write_config.max_in_flight,
            events=True,
        )
        self._core.set_record_plan(table_config.model, _record_attrs(table_config), _column_map, _to_text)
        _EVENTS.add(self)
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
        Its values are read from the instance exactly; a value the table cannot hold
        raises SchemaError naming the field, a record larger than
        ``max_batch_bytes`` raises RecordTooLargeError. Non-blocking unless a bound
        is full under the ``"block"`` policy (then at most ``block_timeout_secs``;
        Ctrl-C interrupts). (Each producer replaces this method with its C
        implementation.)"""
        self._core.insert_record(record)

    def insert_many(self, records: Iterable[Any]) -> int:
        """Queues every record of an iterable; returns how many were queued. A record
        refused as too large does not stop the others: RecordTooLargeError is raised
        at the end, its ``rows_queued`` saying how many were queued. Any other error
        stops at the record that caused it (those before it are queued)."""
        return self._core.insert_records(records)

    def insert_arrow(self, data: Any) -> int:
        """Queues the rows of a pyarrow Table / RecordBatch or anything exposing
        ``__arrow_c_stream__`` (e.g. a Polars DataFrame) without converting rows in
        Python. Columns are matched by name (any order); a column the model does not
        have, a missing column without a default, nulls in a required column or a
        type that cannot be converted to the table's raise SchemaError naming the
        column. A missing column with a default in the model is filled with it;
        a missing optional column without one is null. Returns the rows queued.
        Large inputs go in chunks under ``max_batch_bytes``; a single row larger
        than that is refused (RecordTooLargeError, raised after the other rows are
        queued). If a chunk is refused (a full queue with the "raise" policy, an
        enum value not in the model), the exception's ``rows_queued`` says how many
        rows were queued and will be delivered."""
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
        json_schema = getattr(self._table_config, "json_schema", None)
        logical = logical_schema(json_schema) if json_schema else target
        int_enums = int_enum_columns(json_schema) if json_schema else {}
        extra = [name for name in table.column_names if target.get_field_index(name) < 0]
        if extra:
            raise SchemaError(f"insert_arrow(): columns not in the model {self._model.__name__}: {extra}")
        n = table.num_rows
        columns = []
        for field in target:
            if field.name not in table.column_names:
                has_default, default = _column_default(self._table_config, field.name)
                if has_default:
                    try:
                        logical_type = logical.field(field.name).type
                        filled = pa.array([_jsonable(default)] * n, type=logical_type)
                        if logical_type != field.type:  # time / timedelta: Int64 microseconds
                            filled = to_storage(field.name, filled, field.type, logical_type, _convert)
                        columns.append(filled)
                    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                        raise SchemaError(
                            f"insert_arrow(): column '{field.name}' is missing and its default "
                            f"{default!r} does not convert to {field.type}: {exc}") from None
                    continue
                if not field.nullable:
                    raise SchemaError(f"insert_arrow(): required column '{field.name}' is missing")
                columns.append(pa.nulls(n, field.type))
                continue
            column = table.column(field.name)
            logical_type = logical.field(field.name).type
            if pa.types.is_string_view(field.type) and (pa.types.is_string(column.type)
                                                        or pa.types.is_large_string(column.type)):
                pass  # plain strings go as they are: the server takes them for Utf8View
            elif logical_type != field.type:  # time / timedelta parts: Int64 microseconds
                try:
                    column = to_storage(field.name, column, field.type, logical_type, _convert)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                    raise SchemaError(
                        f"insert_arrow(): column '{field.name}' has type {column.type}, "
                        f"which does not convert to the table's {logical_type}: {exc}"
                    ) from None
            elif column.type != field.type:
                try:
                    column = _convert(column, field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                    raise SchemaError(
                        f"insert_arrow(): column '{field.name}' has type {column.type}, "
                        f"which does not convert to the table's {field.type}: {exc}"
                    ) from None
            allowed = int_enums.get(field.name)
            if allowed and len(column) > column.null_count:
                check_int_enum(field.name, column, allowed)
            if not field.nullable and column.null_count:
                raise SchemaError(
                    f"insert_arrow(): column '{field.name}' is required but has {column.null_count} nulls")
            if pa.types.is_timestamp(field.type) and len(column) > column.null_count:
                _check_instants(field.name, column)
            columns.append(column)
        table = pa.Table.from_arrays(
            columns, schema=pa.schema([pa.field(f.name, c.type, f.nullable) for f, c in zip(target, columns)]))
        if n == 0:
            return 0
        # One InsertBatch per chunk: large enough to be cheap, small enough for one
        # message (max_batch_bytes, checked again per slice since rows differ in size).
        limit = self._write_config.max_batch_bytes
        row_bytes = max(1, table.nbytes // n)
        chunk = max(1, min(max(self._write_config.batch_size, 65536), min(16 << 20, limit // 2) // row_bytes))
        queued = 0
        too_large: Optional[Exception] = None
        for piece in table.to_batches(max_chunksize=chunk):
            for batch in _split_by_bytes(piece, limit):
                schema_capsule, array_capsule = batch.__arrow_c_array__()
                try:
                    queued += self._core.insert_arrow(schema_capsule, array_capsule, batch.nbytes)
                except RecordTooLargeError as exc:
                    too_large = too_large or exc  # refused alone; the other rows go on
                except Exception as exc:
                    # Earlier chunks are queued (and will be delivered): say how many rows.
                    exc.rows_queued = queued
                    if queued and hasattr(exc, "add_note"):
                        exc.add_note(f"insert_arrow(): the first {queued} of {n} rows were queued before this error")
                    raise
        if too_large is not None:
            too_large.rows_queued = queued
            if hasattr(too_large, "add_note"):
                too_large.add_note(f"insert_arrow(): the other {queued} of {n} rows were queued")
            raise too_large
        return queued

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits until every record inserted before the call is stored and visible to
        queries; returns how many rows this flush saw acknowledged (0 after
        ``shutdown()``, which is the final flush). Raises BifrostTimeoutError on
        timeout (None: ``WriteConfig.flush_timeout_secs``, 300 s by default; Ctrl-C
        interrupts either way) and the batch's error if records failed since the
        previous flush."""
        if timeout is None:
            timeout = getattr(self._write_config, "flush_timeout_secs", None)
        return self._core.flush(timeout)

    def register(self) -> str:
        """Registers the table: ``"created"`` or ``"already_exists"``. A different
        schema under the same name raises FingerprintMismatchError naming both."""
        return self._core.register()

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Flushes and stops the background thread, waiting up to ``timeout`` seconds
        (None: ``WriteConfig.shutdown_timeout_secs``, default 10 s) for undelivered
        records, then failing them (BifrostTimeoutError says how many). Idempotent;
        insert() raises after. Ctrl-C interrupts the wait (KeyboardInterrupt); the
        producer then stays closing and a later shutdown() waits again."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._closed = True
        self._core.shutdown(timeout if timeout is not None else self._write_config.shutdown_timeout_secs)

    def stats(self) -> Dict[str, Any]:
        """Counters accounting for every record: inserted == acknowledged + queued +
        in_flight + dropped + failed, always. Also sent (records in batches sent at
        least once), sent_batches, retried (retry attempts; also as retries),
        failed_batches, too_large (records refused by insert as larger than
        max_batch_bytes; not in inserted) and last_error (the newest failure; a
        retry message is cleared once the server acknowledges again).
        max_queue_rows bounds queued + in_flight."""
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
