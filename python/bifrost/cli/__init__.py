"""The ``bifrost`` command-line tool (also ``python -m bifrost``): health, tables,
describe, history, sql, load, maintain, tail and top against a bifrost-server.

Built on click (arguments, help, exit codes) and rich (tables, progress bars, live
views). The connection comes from the same environment as GrpcConfig
(BIFROST_GRPC_URI, BIFROST_USERNAME / BIFROST_PASSWORD), overridable with --server /
--user / --password. Exit codes: 0 success, 1 the server refused or failed the
request (the message is on stderr), 2 bad usage (click's convention), 130 Ctrl-C."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from .._config import GrpcConfig
from .._errors import BifrostError
from ._common import Context, die

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--server", "-s", metavar="HOST:PORT", default=None,
              help="server address (default $BIFROST_GRPC_URI, else localhost:50051)")
@click.option("--user", "-u", default=None, help="user name (default $BIFROST_USERNAME)")
@click.option("--password", default=None,
              help="password (default $BIFROST_PASSWORD; prefer the variable: a command line is visible to other users)")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="deadline of each call in seconds (default none)")
@click.option("--tls/--no-tls", default=None, help="use TLS (default: when the address starts with https://)")
@click.version_option(package_name="bifrost", prog_name="bifrost")
@click.pass_context
def cli(ctx: click.Context, server: Optional[str], user: Optional[str], password: Optional[str],
        timeout: Optional[float], tls: Optional[bool]) -> None:
    """Inspect and operate a bifrost-server from the shell."""
    if user is not None and password is None:
        password = os.environ.get("BIFROST_PASSWORD", "")
    if user is None and password is not None:
        raise click.UsageError("--password needs --user")
    try:
        config = GrpcConfig(server_uri=server, username=user, password=password, timeout_secs=timeout, tls=tls)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = Context(config)


def _register() -> None:
    from . import _load, _sql, _tables, _top  # noqa: F401 - each adds its commands to `cli`


_register()


def main(argv: Optional[Any] = None) -> None:
    """Entry point of the console script."""
    try:
        cli.main(args=argv, prog_name="bifrost", standalone_mode=True)
    except BifrostError as exc:  # raised outside a command (should not happen)
        die(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
