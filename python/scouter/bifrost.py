"""``scouter.bifrost``: the documented import path, re-exporting the bifrost API."""
from bifrost import (
    AsyncDatasetClient,
    Bifrost,
    BifrostError,
    DatasetClient,
    DatasetProducer,
    GrpcConfig,
    QueryResult,
    TableConfig,
    WriteConfig,
)

__all__ = [
    "TableConfig",
    "DatasetProducer",
    "WriteConfig",
    "DatasetClient",
    "AsyncDatasetClient",
    "Bifrost",
    "QueryResult",
    "GrpcConfig",
    "BifrostError",
]
