"""Compatibility namespace for code written against the documented ``scouter`` API:
``from scouter import GrpcConfig`` and ``from scouter.bifrost import ...`` resolve to
the ``bifrost`` package."""
from bifrost import GrpcConfig

__all__ = ["GrpcConfig"]
