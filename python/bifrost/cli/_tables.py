"""CLI commands about the server and its tables: health, tables, describe, history,
maintain."""
from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, List

import click
from rich.table import Table

from . import cli
from ._common import Context, console, die, human_bytes, parse_table, reports_errors


def _when(ms: Any) -> str:
    if not ms:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fqn(info: Dict[str, Any]) -> str:
    return f"{info['catalog']}.{info['schema_name']}.{info['table']}"


@cli.command()
@click.pass_obj
@reports_errors
def health(ctx: Context) -> None:
    """Checks that the server answers and accepts the credentials; prints its version,
    uptime and the number of tables this user may read. Exit 1 otherwise."""
    stats = ctx.client.server_stats()
    console.print(f"[green]SERVING[/] {ctx.config.server_uri}: bifrost-server {stats['version']} "
                  f"(duckdb {stats['duckdb_version']}), up {stats['uptime_secs']:.0f} s, "
                  f"{len(stats['tables'])} tables", highlight=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the metadata as JSON")
@click.pass_obj
@reports_errors
def tables(ctx: Context, as_json: bool) -> None:
    """Lists the tables with their rows, files, size and unflushed tail."""
    infos: List[Dict[str, Any]] = ctx.client.list_datasets()
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    view = Table(title=f"{len(infos)} tables on {ctx.config.server_uri}")
    for column in ("table", "rows", "tail rows", "files", "size", "version", "partitions"):
        view.add_column(column, justify="left" if column in ("table", "partitions") else "right",
                        overflow="fold", no_wrap=column not in ("table", "partitions"))
    for info in sorted(infos, key=_fqn):
        view.add_row(_fqn(info), f"{info.get('num_rows', 0):,}", f"{info.get('tail_rows', 0):,}",
                     str(info.get("num_files", 0)), human_bytes(info.get("size_bytes")),
                     str(info.get("delta_version", "-")), ", ".join(info.get("partition_columns") or []))
    console.print(view)


@cli.command()
@click.argument("table")
@click.option("--json", "as_json", is_flag=True, help="print the metadata as JSON")
@click.pass_obj
@reports_errors
def describe(ctx: Context, table: str, as_json: bool) -> None:
    """Schema and storage of one table (TABLE is catalog.schema.table)."""
    info = ctx.client.describe_dataset(*parse_table(table))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    schema = info.get("arrow_schema") or {}
    partitions = set(info.get("partition_columns") or [])
    view = Table(title=_fqn(info))
    for column in ("column", "type", "nullable", "partition"):
        view.add_column(column)
    for name, field in schema.items():
        view.add_row(name, str(field.get("arrow_type")), "yes" if field.get("nullable") else "no",
                     "yes" if name in partitions else "")
    console.print(view)
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("rows", f"{info.get('num_rows', 0):,} ({info.get('tail_rows', 0):,} in the tail, not yet in Parquet)")
    facts.add_row("files", f"{info.get('num_files', 0)} ({human_bytes(info.get('size_bytes'))})")
    facts.add_row("delta version", str(info.get("delta_version")))
    facts.add_row("location", str(info.get("location")))
    facts.add_row("fingerprint", str(info.get("fingerprint")))
    facts.add_row("created", _when(info.get("created_at_ms")))
    console.print(facts)


@cli.command()
@click.argument("table")
@click.option("--data-dir", type=click.Path(file_okay=False), default=lambda: os.environ.get("BIFROST_DATA_DIR"),
              help="the server's data directory, when it is not the table location's base "
                   "(default $BIFROST_DATA_DIR)")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="newest versions shown")
@click.option("--json", "as_json", is_flag=True, help="print the commits as JSON lines")
@click.pass_obj
@reports_errors
def history(ctx: Context, table: str, data_dir: Any, limit: int, as_json: bool) -> None:
    """Delta commits of a table, newest first. Reads the table's _delta_log, so the
    data directory must be reachable from here (same machine or a shared mount)."""
    info = ctx.client.describe_dataset(*parse_table(table))
    location = str(info.get("location"))
    path = location if os.path.isabs(location) or "://" in location else os.path.join(data_dir or ".", location)
    if not os.path.isdir(os.path.join(path, "_delta_log")) and "://" not in path:
        die(f"no Delta log at {path}: pass --data-dir (or set BIFROST_DATA_DIR) to the server's data directory")
    try:
        from deltalake import DeltaTable
    except ImportError:
        die("history needs the deltalake package (pip install deltalake)")
    commits = DeltaTable(path).history(limit)
    if as_json:
        for commit in commits:
            click.echo(json.dumps(commit, default=str))
        return
    view = Table(title=f"{_fqn(info)} history")
    for column in ("version", "time", "operation", "rows", "files added", "files removed"):
        view.add_column(column, justify="right" if column != "operation" and column != "time" else "left")
    for commit in commits:
        metrics = commit.get("operationMetrics") or {}
        rows = metrics.get("numOutputRows", metrics.get("num_added_rows", ""))
        view.add_row(str(commit.get("version", "")), _when(commit.get("timestamp")), str(commit.get("operation", "")),
                     str(rows), str(metrics.get("numAddedFiles", metrics.get("num_added_files", ""))),
                     str(metrics.get("numRemovedFiles", metrics.get("num_removed_files", ""))))
    console.print(view)


MAINTAIN_OPERATIONS = ("flush", "optimize", "checkpoint", "verify", "vacuum", "cleanup_log")


@cli.command()
@click.argument("table")
@click.argument("operations", nargs=-1, required=True, type=click.Choice(MAINTAIN_OPERATIONS))
@click.option("--retention-hours", type=float, default=None,
              help="retention for vacuum / cleanup_log (default: the server's setting)")
@click.pass_obj
@reports_errors
def maintain(ctx: Context, table: str, operations: Any, retention_hours: Any) -> None:
    """Runs table upkeep now: OPERATIONS among flush, optimize, checkpoint, verify,
    vacuum, cleanup_log (run in that order). Exits 1 when verify finds damaged files."""
    done = ctx.client.maintain_dataset(*parse_table(table), operations=list(operations),
                                       retention_hours=retention_hours)
    view = Table(show_header=False, box=None, title=f"{table}: {', '.join(operations)}")
    view.add_column(style="bold")
    view.add_column(justify="right")
    for key, value in done.items():
        if key != "bad_files":
            view.add_row(key, str(value))
    console.print(view)
    bad = done.get("bad_files") or []
    for line in bad:
        console.print(f"[red]damaged:[/] {line}", highlight=False)
    if bad:
        die(f"verify found {len(bad)} damaged file(s)")
