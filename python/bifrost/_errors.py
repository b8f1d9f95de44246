"""The bifrost exception hierarchy and the one place that maps C statuses to it.

Every error raised by the C core arrives here: ``bifrost._core`` calls
:func:`error_from_status` with the bf status name (``"BF_ENOTFOUND"``, ... from
include/bifrost/error.h), the message and the operation that failed, and raises the
exception it returns. Each class is also a subclass of the natural builtin so code
that catches ``ValueError`` or ``TimeoutError`` keeps working.
"""
from __future__ import annotations

from typing import Dict, List, Optional

__all__ = [
    "BifrostError",
    "SchemaError",
    "FingerprintMismatchError",
    "NotFoundError",
    "AlreadyExistsError",
    "QueryError",
    "QueryPermissionError",
    "InvalidConditionError",
    "PermissionDeniedError",
    "AuthenticationError",
    "BifrostTimeoutError",
    "BifrostConnectionError",
    "QueueFullError",
    "RecordTooLargeError",
    "ProducerClosedError",
    "ClientClosedError",
    "CorruptDataError",
    "error_from_status",
]


class BifrostError(Exception):
    """Base class of every bifrost error. ``status`` is the C status name or None."""

    def __init__(self, message: str = "", status: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.status = status


class SchemaError(BifrostError, ValueError):
    """The model, namespace, partition columns or a record do not fit the schema rules."""


class FingerprintMismatchError(BifrostError, ValueError):
    """The local model's fingerprint differs from the table's fingerprint on the server.

    Raised by DatasetClient, the message lists the columns that differ (in the model
    only, in the table only, type changed, nullability changed), and ``differences``
    holds the same as a dict of lists."""

    differences: Dict[str, List[str]] = {}


class SchemaEvolutionError(FingerprintMismatchError):
    """A model registered with ``schema_mode="merge"`` changes the table's schema in a
    way additive evolution does not allow (a field removed or renamed, a type changed,
    a field made required, a new required field); the message lists each difference."""


class NotFoundError(BifrostError, LookupError):
    """The table (or another named object) does not exist on the server."""


class AlreadyExistsError(BifrostError, ValueError):
    """The object already exists."""


class QueryError(BifrostError, RuntimeError):
    """The SQL was rejected (not a single read-only statement) or failed to run."""


class PermissionDeniedError(BifrostError, PermissionError):
    """The server refused the operation."""


class QueryPermissionError(QueryError, PermissionDeniedError):
    """The query tried to write (queries are read-only: INSERT, DELETE, UPDATE, CREATE,
    COPY, ... are refused) or touched something the query sandbox forbids (a file,
    a table function outside the allowlist)."""


class InvalidConditionError(QueryError, ValueError):
    """A ``read(where=...)`` condition is not a single SQL expression (unbalanced
    parentheses, a comment, a ``;``, an unterminated literal, ...). Raised before
    anything is sent to the server."""


class AuthenticationError(PermissionDeniedError):
    """Missing or wrong credentials."""


class BifrostTimeoutError(BifrostError, TimeoutError):
    """An operation did not finish within its timeout."""


class BifrostConnectionError(BifrostError, ConnectionError):
    """The server could not be reached."""


class QueueFullError(BifrostError, RuntimeError):
    """The producer queue is full and the backpressure policy is ``"raise"``."""


class RecordTooLargeError(BifrostError, ValueError):
    """A single record (or Arrow row) is larger than any batch may be
    (``WriteConfig.max_batch_bytes``, itself under the transport's message limit).
    Raised by ``insert``/``insert_many``/``insert_arrow`` at once; the record is not
    queued nor retried, later records are unaffected, and ``stats()["too_large"]``
    counts it."""


class ProducerClosedError(BifrostError, RuntimeError):
    """The producer has been shut down."""


class ClientClosedError(BifrostError, RuntimeError):
    """The DatasetClient has been closed."""


class CorruptDataError(BifrostError, ValueError):
    """Malformed input (e.g. an Arrow IPC stream that fails to decode)."""


_BY_STATUS = {
    "BF_ECORRUPT": CorruptDataError,
    "BF_EINVAL": SchemaError,
    "BF_EMISMATCH": FingerprintMismatchError,
    "BF_ENOTFOUND": NotFoundError,
    "BF_EEXIST": AlreadyExistsError,
    "BF_EPERM": PermissionDeniedError,
    "BF_EAUTH": AuthenticationError,
    "BF_ETIMEOUT": BifrostTimeoutError,
    "BF_EUNAVAILABLE": BifrostConnectionError,
    "BF_EQUERY": QueryError,
    "BF_EFULL": QueueFullError,
    "BF_ECLOSED": ProducerClosedError,
}

# Statuses whose meaning depends on the call: in a query, a bad argument is bad SQL.
_BY_OPERATION = {
    "record_too_large": {"BF_EINVAL": RecordTooLargeError},
    "query": {
        "BF_EINVAL": QueryError,
        "BF_EQUERY": QueryError,
        "BF_EPERM": QueryPermissionError,
        "BF_EFULL": QueryError,  # the result exceeded the server's size limits
    },
}


def error_from_status(status: str, message: str, operation: Optional[str] = None) -> BifrostError:
    """Returns the exception for a C status name; called by ``bifrost._core``."""
    cls = _BY_OPERATION.get(operation or "", {}).get(status) or _BY_STATUS.get(status, BifrostError)
    if operation == "query" and status == "BF_EQUERY" and message.startswith("Permission Error"):
        # The sandbox refused a file access while the statement was being prepared
        # (the server maps only refusals at execution time to BF_EPERM).
        cls = QueryPermissionError
    if status == "BF_EMISMATCH" and "schema evolution refused" in message:
        cls = SchemaEvolutionError
    return cls(message, status)
