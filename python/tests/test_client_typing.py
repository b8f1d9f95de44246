"""The typed API ships: py.typed is installed, every public class and method of the
read side has a docstring (help() is useful), and DatasetClient closes as a context
manager. The mypy run itself is `make test-types`."""
from __future__ import annotations

import inspect
from pathlib import Path

import bifrost
from bifrost import AsyncDatasetClient, Bifrost, DatasetClient, QueryResult


def test_py_typed_is_installed():
    assert (Path(bifrost.__file__).parent / "py.typed").exists()


def test_public_methods_have_docstrings():
    missing = []
    for cls in (DatasetClient, AsyncDatasetClient, QueryResult, Bifrost):
        assert cls.__doc__, cls
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            target = member.fget if isinstance(member, property) else member
            if isinstance(target, classmethod):
                target = target.__func__
            if callable(target) and not inspect.getdoc(target):
                missing.append(f"{cls.__name__}.{name}")
    assert missing == []


def test_generic_classes_are_subscriptable():
    from pydantic import BaseModel

    class M(BaseModel):
        x: int

    assert DatasetClient[M] is not None and Bifrost[M] is not None and bifrost.TableConfig[M] is not None


def test_client_context_manager_closes(grpc):
    with DatasetClient(grpc) as client:
        assert client.list_datasets() is not None
    assert client.closed
