"""Configuration objects: TableConfig (model -> schema, fingerprint, namespace),
WriteConfig (producer batching and backpressure) and GrpcConfig (server address,
credentials, TLS). Schema work is done by the C core so client and server can never
disagree on a fingerprint."""
from __future__ import annotations

import base64
import json
import math
import os
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, Type, TypeVar

from pydantic import BaseModel

from . import _core
from ._errors import SchemaError
from ._json_schema import model_json_schema

ModelT = TypeVar("ModelT", bound=BaseModel)

__all__ = ["TableConfig", "WriteConfig", "GrpcConfig"]

SYSTEM_COLUMNS = ("scouter_created_at", "scouter_partition_date", "scouter_batch_id")


def _schema_text(json_schema: Any) -> str:
    if isinstance(json_schema, str):
        return json_schema
    if isinstance(json_schema, dict):
        return json.dumps(json_schema)
    raise TypeError(f"json_schema must be a dict (model.model_json_schema()), not {type(json_schema).__name__}")


def _arrow_schema_from_ipc(ipc: bytes):
    import pyarrow as pa

    return pa.ipc.open_stream(ipc).schema


class TableConfig(Generic[ModelT]):
    """A Pydantic model bound to a table ``catalog.schema_name.table``.

    The model's JSON Schema is converted to an Arrow schema (system columns
    appended) and fingerprinted at construction; bad namespaces, partition columns
    or field types raise :class:`~bifrost.SchemaError` (a ``ValueError``) naming the
    offending part.
    """

    __slots__ = (
        "_model",
        "_catalog",
        "_schema_name",
        "_table",
        "_partition_columns",
        "_json_schema",
        "_fingerprint",
        "_schema_mode",
        "_fields",
        "_arrow_schema",
    )

    def __init__(
        self,
        model: Type[ModelT],
        catalog: str,
        schema_name: str,
        table: str,
        partition_columns: Optional[Sequence[str]] = None,
        schema_mode: Optional[str] = None,
    ):
        if schema_mode not in (None, "merge"):
            raise ValueError(f'schema_mode must be None (strict) or "merge", got {schema_mode!r}')
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            what = f"an instance of {type(model).__name__}" if isinstance(model, BaseModel) else repr(model)
            raise TypeError(f"TableConfig(model=...) needs a pydantic BaseModel subclass (the class, not an instance); got {what}")
        for value, what in ((catalog, "catalog"), (schema_name, "schema_name"), (table, "table")):
            if not isinstance(value, str):
                raise TypeError(f"{what} must be a str, not {type(value).__name__}")
            if "\x00" in value:
                raise SchemaError(f"{what} {value!r} is invalid: contains a NUL character")
            _core.validate_namespace(value, what)
        if partition_columns is None:
            partition_columns = []
        elif isinstance(partition_columns, str) or not all(isinstance(c, str) for c in partition_columns):
            raise TypeError("partition_columns must be a list of column names (str)")
        self._model = model
        self._catalog = catalog
        self._schema_name = schema_name
        self._table = table
        self._partition_columns = list(partition_columns)
        self._schema_mode = schema_mode
        self._json_schema = json.dumps(model_json_schema(model))
        _core.validate_table(self._json_schema, self._partition_columns)
        self._fingerprint = _core.compute_fingerprint(self._json_schema)
        self._fields = json.loads(_core.parse_schema(self._json_schema))
        self._arrow_schema = None

    # -- properties ------------------------------------------------------------
    @property
    def model(self) -> Type[ModelT]:
        return self._model

    @property
    def catalog(self) -> str:
        return self._catalog

    @property
    def schema_name(self) -> str:
        return self._schema_name

    @property
    def table(self) -> str:
        return self._table

    @property
    def partition_columns(self) -> List[str]:
        return list(self._partition_columns)

    @property
    def schema_mode(self) -> Optional[str]:
        """None (strict: a changed model is refused) or "merge" (additive evolution)."""
        return self._schema_mode

    @property
    def fqn(self) -> str:
        return f"{self._catalog}.{self._schema_name}.{self._table}"

    @property
    def fingerprint_str(self) -> str:
        return self._fingerprint

    @property
    def json_schema(self) -> str:
        """The model's JSON Schema as sent to the server (JSON text)."""
        return self._json_schema

    @property
    def fields(self) -> Dict[str, Dict[str, Any]]:
        """parse_schema() of the model: ``{name: {"arrow_type", "nullable"}}``, system columns included."""
        return {name: dict(info) for name, info in self._fields.items()}

    @property
    def user_columns(self) -> List[str]:
        return [name for name in self._fields if name not in SYSTEM_COLUMNS]

    @property
    def arrow_schema(self):
        """The table's ``pyarrow.Schema`` (system columns included); needs pyarrow."""
        if self._arrow_schema is None:
            self._arrow_schema = _arrow_schema_from_ipc(_core.arrow_schema_ipc(self._json_schema))
        return self._arrow_schema

    # -- static helpers -----------------------------------------------------------
    @staticmethod
    def parse_schema(json_schema: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
        """Arrow type string and nullability of every column, system columns included."""
        return json.loads(_core.parse_schema(_schema_text(json_schema)))

    @staticmethod
    def compute_fingerprint(json_schema: Dict[str, Any]) -> str:
        """The 32-hex-char schema fingerprint (order-independent, type- and nullability-sensitive)."""
        return _core.compute_fingerprint(_schema_text(json_schema))

    def __repr__(self) -> str:
        return (
            f"TableConfig(model={self._model.__name__}, fqn={self.fqn!r}, "
            f"partition_columns={self._partition_columns!r}, fingerprint={self._fingerprint!r})"
        )


_BACKPRESSURE = ("block", "drop_newest", "raise")
# The transport's message limit (include/bifrost/rpc.h BF_RPC_MAX_MESSAGE_BYTES) and
# the producer's batch byte bounds derived from it (include/bifrost/producer.h).
TRANSPORT_MESSAGE_LIMIT = 256 * 1024 * 1024
DEFAULT_MAX_BATCH_BYTES = TRANSPORT_MESSAGE_LIMIT // 4
MAX_IN_FLIGHT_LIMIT = 64  # BF_PRODUCER_MAX_IN_FLIGHT_LIMIT
MAX_BATCH_BYTES_LIMIT = TRANSPORT_MESSAGE_LIMIT // 2


def _positive_number(value: Any, name: str, allow_none: bool = False) -> Optional[float]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not (value > 0) or math.isinf(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


class WriteConfig:
    """Producer batching and backpressure.

    - ``batch_size``: rows per batch (a batch is sent as soon as this many are queued).
    - ``scheduled_delay_secs``: send whatever is queued when this long has passed since
      the last send.
    - ``max_batch_bytes``: bound on one batch's (estimated) size; a batch is also
      sent when the next record would take it over. Default (None): 64 MiB, a
      quarter of the transport's 256 MiB message limit; at most 128 MiB. A single
      record larger than this raises RecordTooLargeError at ``insert``.
    - ``max_queue_rows``: bound on the records queued or in flight (sent, not yet
      acknowledged); ``max_queue_bytes`` (None: no byte bound) bounds their size
      (serialized records; Arrow batches by their buffers). ``backpressure`` says
      what ``insert`` does when a bound is reached: ``"block"`` (default; wait up to
      ``block_timeout_secs``, default 5 s, then raise BifrostTimeoutError; None
      waits without limit, still interruptible by Ctrl-C), ``"drop_newest"`` (drop
      the record, counted in ``stats()["dropped"]``) or ``"raise"`` (QueueFullError).
    - ``rpc_timeout_secs``: deadline of one InsertBatch attempt. ``max_retries``:
      attempts after the first for transient failures (-1: retry until shutdown).
    - ``max_in_flight``: batches sent and not yet acknowledged at once (default 4,
      at most 64; 1 sends one batch at a time). The server stores each batch only
      after the one sent before it, so order and exactly-once hold.
    - ``shutdown_timeout_secs``: how long ``shutdown()`` without a timeout, and the
      shutdown at interpreter exit, wait for undelivered records before failing
      them (and logging how many were lost). Default 10 s.
    - ``flush_timeout_secs``: how long ``flush()`` without a timeout waits before
      raising BifrostTimeoutError (nothing is lost: the records stay queued and are
      still sent). Default 300 s; None waits without limit (Ctrl-C still
      interrupts). With these defaults no call blocks an application forever.
    - ``on_error``: optional ``callable(count, error, table)`` called when records
      fail for good or are refused as too large (``error`` is a BifrostError), from
      bifrost's event thread (never the caller's, never the sending thread); an
      exception it raises is logged to the ``"bifrost"`` logger and ignored.
    """

    __slots__ = (
        "batch_size",
        "scheduled_delay_secs",
        "max_queue_rows",
        "backpressure",
        "block_timeout_secs",
        "rpc_timeout_secs",
        "max_retries",
        "max_queue_bytes",
        "max_batch_bytes",
        "max_in_flight",
        "shutdown_timeout_secs",
        "flush_timeout_secs",
        "on_error",
    )

    def __init__(
        self,
        batch_size: int = 1000,
        scheduled_delay_secs: float = 30,
        max_queue_rows: int = 1_000_000,
        backpressure: str = "block",
        block_timeout_secs: Optional[float] = 5.0,
        rpc_timeout_secs: float = 30.0,
        max_retries: int = -1,
        max_queue_bytes: Optional[int] = None,
        max_batch_bytes: Optional[int] = None,
        shutdown_timeout_secs: float = 10.0,
        on_error: Optional[Callable[[int, Exception, str], Any]] = None,
        flush_timeout_secs: Optional[float] = 300.0,
        max_in_flight: int = 4,
    ):
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.scheduled_delay_secs = _positive_number(scheduled_delay_secs, "scheduled_delay_secs")
        self.max_queue_rows = _positive_int(max_queue_rows, "max_queue_rows")
        if backpressure not in _BACKPRESSURE:
            raise ValueError(f"backpressure must be one of {_BACKPRESSURE}, got {backpressure!r}")
        self.backpressure = backpressure
        self.block_timeout_secs = _positive_number(block_timeout_secs, "block_timeout_secs", allow_none=True)
        self.rpc_timeout_secs = _positive_number(rpc_timeout_secs, "rpc_timeout_secs")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < -1:
            raise ValueError(f"max_retries must be an int >= -1, got {max_retries!r}")
        self.max_retries = max_retries
        self.max_queue_bytes = None if max_queue_bytes is None else _positive_int(max_queue_bytes, "max_queue_bytes")
        if max_batch_bytes is not None:
            _positive_int(max_batch_bytes, "max_batch_bytes")
            if max_batch_bytes > MAX_BATCH_BYTES_LIMIT:
                raise ValueError(f"max_batch_bytes must be <= {MAX_BATCH_BYTES_LIMIT} (half the transport's "
                                 f"{TRANSPORT_MESSAGE_LIMIT}-byte message limit), got {max_batch_bytes!r}")
        self.max_batch_bytes = DEFAULT_MAX_BATCH_BYTES if max_batch_bytes is None else max_batch_bytes
        self.max_in_flight = _positive_int(max_in_flight, "max_in_flight")
        if self.max_in_flight > MAX_IN_FLIGHT_LIMIT:
            raise ValueError(f"max_in_flight must be <= {MAX_IN_FLIGHT_LIMIT}, got {max_in_flight!r}")
        self.shutdown_timeout_secs = _positive_number(shutdown_timeout_secs, "shutdown_timeout_secs")
        self.flush_timeout_secs = _positive_number(flush_timeout_secs, "flush_timeout_secs", allow_none=True)
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable(count, error, table), not {type(on_error).__name__}")
        self.on_error = on_error

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"WriteConfig({fields})"


class GrpcConfig:
    """How to reach bifrost-server.

    ``server_uri`` defaults to ``$BIFROST_GRPC_URI``, then ``$SCOUTER_GRPC_URI``, then
    ``"localhost:50051"``. An ``https://`` URI or ``tls=True`` selects TLS.
    ``username``/``password`` (default ``$BIFROST_USERNAME``/``$BIFROST_PASSWORD``,
    then ``$SCOUTER_USERNAME``/``$SCOUTER_PASSWORD``) log in to a server started with
    ``--auth-file``: the client exchanges them for a bearer token on its first call
    (Login), renews it before it expires and once when the server refuses it, and
    never sends the password with other calls nor logs it.
    ``timeout_secs`` is the deadline of each read-side call (None: no deadline).
    """

    __slots__ = ("server_uri", "username", "password", "timeout_secs", "tls", "tls_ca_file",
                 "tls_cert_file", "tls_key_file")

    def __init__(
        self,
        server_uri: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        timeout_secs: Optional[float] = None,
        tls: Optional[bool] = None,
        tls_ca_file: Optional[str] = None,
        tls_cert_file: Optional[str] = None,
        tls_key_file: Optional[str] = None,
    ):
        if server_uri is None:
            server_uri = os.environ.get("BIFROST_GRPC_URI") or os.environ.get("SCOUTER_GRPC_URI") or "localhost:50051"
        if not isinstance(server_uri, str) or not server_uri:
            raise ValueError("server_uri must be a non-empty str")
        if username is None and password is None:
            for prefix in ("BIFROST", "SCOUTER"):
                env_user = os.environ.get(f"{prefix}_USERNAME")
                if env_user:
                    username, password = env_user, os.environ.get(f"{prefix}_PASSWORD", "")
                    break
        if (username is None) != (password is None):
            raise ValueError("username and password must be given together")
        self.server_uri = server_uri
        self.username = username
        self.password = password
        self.timeout_secs = _positive_number(timeout_secs, "timeout_secs", allow_none=True)
        self.tls = bool(tls) if tls is not None else server_uri.startswith("https://")
        # A private CA and a client certificate (mTLS), PEM files; None falls back to
        # $BIFROST_TLS_CA_FILE, $BIFROST_TLS_CERT_FILE, $BIFROST_TLS_KEY_FILE.
        self.tls_ca_file = os.fspath(tls_ca_file) if tls_ca_file is not None else None
        self.tls_cert_file = os.fspath(tls_cert_file) if tls_cert_file is not None else None
        self.tls_key_file = os.fspath(tls_key_file) if tls_key_file is not None else None
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")

    def tls_files(self) -> Dict[str, Optional[str]]:
        """The TLS file options as keyword arguments of the C channel."""
        return {"tls_ca_file": self.tls_ca_file, "tls_cert_file": self.tls_cert_file,
                "tls_key_file": self.tls_key_file}

    @property
    def authorization(self) -> Optional[str]:
        if self.username is None:
            return None
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username else ""
        return f"GrpcConfig(server_uri={self.server_uri!r}{user}, tls={self.tls}, timeout_secs={self.timeout_secs})"


def register_merged(config: "TableConfig[Any]", transport: "GrpcConfig") -> str:
    """Registers the model with schema_mode "merge": an additive change becomes the
    table's new schema version (SchemaEvolutionError lists what is not allowed).
    Returns the server's status ("created", "already_exists" or "evolved")."""
    channel = _core.Channel(transport.server_uri, tls=transport.tls, authorization=transport.authorization)
    status, _ = channel.register_table(config.catalog, config.schema_name, config.table, config.json_schema,
                                       config.partition_columns, config.fingerprint_str,
                                       transport.timeout_secs, schema_mode="merge")
    return str(status)
