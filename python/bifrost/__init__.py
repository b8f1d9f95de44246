"""bifrost: Pydantic models in, Delta Lake tables out.

Define a schema as a Pydantic model (TableConfig), push records through a
non-blocking producer (DatasetProducer), query them back with SQL (DatasetClient,
QueryResult, streamed with QueryResult.to_reader()) or do both through Bifrost.
AsyncDatasetClient (and the *_async methods) is the asyncio face. Errors derive from
BifrostError. The package is typed (py.typed): DatasetClient[Model].read() is
list[Model].
"""
from . import _errors as errors
from ._async import AsyncDatasetClient
from ._bifrost import Bifrost
from ._client import DatasetClient
from ._config import GrpcConfig, TableConfig, WriteConfig
from ._errors import (
    AlreadyExistsError,
    AuthenticationError,
    BifrostConnectionError,
    BifrostError,
    BifrostTimeoutError,
    ClientClosedError,
    CorruptDataError,
    FingerprintMismatchError,
    SchemaEvolutionError,
    InvalidConditionError,
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
    "AsyncDatasetClient",
    "Bifrost",
    "QueryResult",
    "errors",
    "BifrostError",
    "SchemaError",
    "FingerprintMismatchError",
    "SchemaEvolutionError",
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
]
