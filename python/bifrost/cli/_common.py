"""Shared pieces of the CLI: the per-invocation context (one DatasetClient), table
name parsing, error reporting with CLI exit codes, and the rich consoles."""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Optional, Tuple, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from .._client import DatasetClient
from .._config import GrpcConfig
from .._errors import BifrostError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


class Context:
    """What every command gets: the GrpcConfig and a lazily opened client."""

    def __init__(self, config: GrpcConfig):
        self.config = config
        self._client: Optional[DatasetClient[Any]] = None

    @property
    def client(self) -> DatasetClient[Any]:
        if self._client is None:
            self._client = DatasetClient(self.config)
        return self._client


def die(message: str, code: int = 1) -> None:
    """Prints ``bifrost: <message>`` on stderr and exits with ``code``."""
    err_console.print(f"[bold red]bifrost:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(code)


def parse_table(text: str) -> Tuple[str, str, str]:
    """``catalog.schema.table`` -> its three parts (a usage error otherwise)."""
    parts = text.split(".")
    if len(parts) != 3 or not all(parts):
        raise click.BadParameter(f"expected catalog.schema.table, got {text!r}", param_hint="TABLE")
    return parts[0], parts[1], parts[2]


def reports_errors(func: F) -> F:
    """Turns BifrostError (and a few expected OS errors) into one stderr line and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BifrostError as exc:
            die(str(exc) or type(exc).__name__)
        except (OSError, ValueError, TypeError) as exc:
            die(str(exc) or type(exc).__name__)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def human_bytes(n: Optional[float]) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
