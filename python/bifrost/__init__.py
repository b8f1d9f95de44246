"""bifrost: Pydantic models in, Delta Lake tables out.

Define a schema as a Pydantic model (TableConfig), push records through a
non-blocking producer (DatasetProducer), query them back with SQL (DatasetClient,
QueryResult) or do both through Bifrost. Errors derive from BifrostError.
"""
from . import _errors as errors
from ._bifrost import Bifrost
from ._client import DatasetClient
from ._config import GrpcConfig, TableConfig, WriteConfig
from ._errors import (
    AlreadyExistsError,
    AuthenticationError,
    BifrostConnectionError,
    BifrostError,
    BifrostTimeoutError,
    CorruptDataError,
    FingerprintMismatchError,
    NotFoundError,
    PermissionDeniedError,
    ProducerClosedError,
    QueryError,
    QueryPermissionError,
    QueueFullError,
    RecordTooLargeError,
    SchemaError,
)
from ._producer import DatasetProducer
from ._result import QueryResult

__version__ = "0.1.0"

__all__ = [
    "TableConfig",
    "WriteConfig",
    "GrpcConfig",
    "DatasetProducer",
    "DatasetClient",
    "Bifrost",
    "QueryResult",
    "errors",
    "BifrostError",
    "SchemaError",
    "FingerprintMismatchError",
    "NotFoundError",
    "AlreadyExistsError",
    "QueryError",
    "QueryPermissionError",
    "PermissionDeniedError",
    "AuthenticationError",
    "BifrostTimeoutError",
    "BifrostConnectionError",
    "QueueFullError",
    "RecordTooLargeError",
    "ProducerClosedError",
    "CorruptDataError",
]
