"""DatasetProducer: the write side. insert() validates the record's type, serializes
it with ``model_dump_json()`` and hands the JSON to the C producer, whose background
thread batches, encodes Arrow IPC, sends and retries without the GIL."""
from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Any, Dict, Iterable, Optional

from . import _core
from ._config import GrpcConfig, TableConfig, WriteConfig
from ._errors import SchemaError

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


class DatasetProducer:
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
        )
        self._enqueue = self._core.insert
        self._to_json = table_config.model.__pydantic_serializer__.to_json
        self._closed = False
        try:
            self.register()
        except BaseException:
            self._core.shutdown(1.0)
            raise
        with _LIVE_LOCK:
            _LIVE.add(self)

    # -- writing ----------------------------------------------------------------
    def insert(self, record: Any) -> None:
        """Queues one record (an instance of the table's model). Non-blocking unless
        the queue is full under the ``"block"`` policy."""
        if not isinstance(record, self._model):
            raise TypeError(
                f"insert() expects a {self._model.__name__} instance, got {type(record).__name__}"
            )
        # The model class's pydantic-core serializer gives the same JSON as
        # model_dump_json() at about 60% of its cost (bench/producer_bench.py), and
        # serializes subclass instances by the table's fields only.
        self._enqueue(self._to_json(record))

    def insert_many(self, records: Iterable[Any]) -> int:
        """Queues every record of an iterable; returns how many were queued."""
        model = self._model
        enqueue = self._enqueue
        to_json = self._to_json
        n = 0
        for record in records:
            if not isinstance(record, model):
                raise TypeError(
                    f"insert_many() expects {model.__name__} instances, got {type(record).__name__} at index {n}"
                )
            enqueue(to_json(record))
            n += 1
        return n

    def insert_arrow(self, data: Any) -> int:
        """Queues the rows of a pyarrow Table / RecordBatch or anything exposing
        ``__arrow_c_stream__`` (e.g. a Polars DataFrame). Columns must be the model's
        fields; each row is validated through the model. Returns rows queued."""
        import pyarrow as pa

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
        expected = set(self._table_config.user_columns)
        got = set(table.column_names)
        if got - expected:
            raise SchemaError(f"insert_arrow(): columns not in the model: {sorted(got - expected)}")
        missing_required = [
            name for name in expected - got if not self._table_config.fields[name]["nullable"]
        ]
        if missing_required:
            raise SchemaError(f"insert_arrow(): required columns missing: {sorted(missing_required)}")
        rows = [self._model.model_validate(row) for row in table.to_pylist()]
        return self.insert_many(rows)

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
        in_flight + dropped + failed. Also sent_batches, failed_batches, retries and
        last_error."""
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
