"""CLI commands that read rows: ``sql`` (a readable table, or CSV / JSON lines /
Parquet streamed to a file or stdout in bounded memory) and ``tail`` (follows the
rows of a table as they arrive)."""
from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import sys
import time
from typing import IO, Any, Iterator, List, Optional

import click
from rich.table import Table

from . import cli
from ._common import Context, console, err_console, parse_table, reports_errors

CREATED_AT = "scouter_created_at"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def json_line(row: Any) -> str:
    """One row as one line of JSON (NaN / ±inf as strings, bytes as base64, times ISO 8601)."""
    return json.dumps(_json_value(row), default=_json_default, allow_nan=False, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text.replace("\x00", "\\0")


def _render(schema: Any, rows: List[Any], title: Optional[str] = None) -> Table:
    view = Table(title=title)
    for field in schema:
        view.add_column(field.name, overflow="fold")
    for row in rows:
        view.add_row(*(_cell(row[f.name]) for f in schema))
    return view


def _batches(reader: Any) -> Iterator[Any]:
    for batch in reader:
        if batch.num_rows:
            yield batch


def write_result(reader: Any, fmt: str, out: IO[bytes]) -> int:
    """Streams every batch of ``reader`` to ``out`` in ``fmt``; returns the rows written."""
    import pyarrow as pa

    rows = 0
    if fmt == "csv":
        import pyarrow.csv as pacsv

        with pacsv.CSVWriter(out, reader.schema) as writer:
            for batch in _batches(reader):
                writer.write_batch(batch)
                rows += batch.num_rows
    elif fmt == "json":
        for batch in _batches(reader):
            out.write("".join(json_line(r) + "\n" for r in batch.to_pylist()).encode())
            rows += batch.num_rows
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(pa.PythonFile(out, mode="w"), reader.schema) as writer:
            for batch in _batches(reader):
                writer.write_batch(batch)
                rows += batch.num_rows
    else:  # pragma: no cover - click restricts the choices
        raise ValueError(f"unknown format {fmt}")
    return rows


@cli.command()
@click.argument("query")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="output format (json: one object per line)")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write the result to FILE instead of stdout")
@click.option("--max-rows", type=click.IntRange(min=0), default=1000, show_default=True,
              help="rows shown by --format table (the rest are counted)")
@click.pass_obj
@reports_errors
def sql(ctx: Context, query: str, fmt: str, output: Optional[str], max_rows: int) -> None:
    """Runs one read-only SQL statement. Large results stream: csv, json and parquet
    are written batch by batch as they arrive."""
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise click.UsageError("--format parquet writes binary: give --output FILE or redirect stdout")
    result = ctx.client.sql(query)
    reader = result.to_reader()
    if fmt == "table":
        shown: List[Any] = []
        total = 0
        for batch in _batches(reader):
            total += batch.num_rows
            if len(shown) < max_rows:
                shown.extend(batch.slice(0, max_rows - len(shown)).to_pylist())
        target = console if output is None else None
        view = _render(reader.schema, shown)
        if target is None:
            with open(output, "w", encoding="utf-8") as fh:  # type: ignore[arg-type]
                from rich.console import Console

                Console(file=fh, width=200).print(view)
        else:
            target.print(view)
        more = f", {total - len(shown):,} not shown (--max-rows)" if total > len(shown) else ""
        err_console.print(f"{total:,} rows{more}", highlight=False)
        return
    if output is None:
        rows = write_result(reader, fmt, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with open(output, "wb") as fh:
            rows = write_result(reader, fmt, fh)
        err_console.print(f"{rows:,} rows written to {output}", highlight=False)


@cli.command()
@click.argument("table")
@click.option("--lines", "-n", type=click.IntRange(min=0), default=10, show_default=True,
              help="newest rows printed before following")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="seconds between polls")
@click.option("--format", "-f", "fmt", type=click.Choice(["json", "table"]), default="json", show_default=True,
              help="json: one object per line; table: a small table per poll")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="stop after printing this many new rows (default: follow until Ctrl-C)")
@click.pass_obj
@reports_errors
def tail(ctx: Context, table: str, lines: int, interval: float, fmt: str, count: Optional[int]) -> None:
    """Prints the newest rows of a table, then follows new rows as they arrive
    (by their scouter_created_at time; Ctrl-C stops)."""
    catalog, schema, name = parse_table(table)
    ctx.client.describe_dataset(catalog, schema, name)  # NotFoundError before the loop
    fqn = ".".join('"' + p.replace('"', '""') + '"' for p in (catalog, schema, name))
    first = ctx.client.sql(f"SELECT * FROM (SELECT * FROM {fqn} ORDER BY {CREATED_AT} DESC LIMIT {lines}) "
                           f"ORDER BY {CREATED_AT}").to_arrow()
    last = ctx.client.sql(f"SELECT max({CREATED_AT}) AS m FROM {fqn}").to_arrow().column(0)[0].as_py()
    seen_at_last = 0
    if last is not None:
        seen_at_last = ctx.client.sql(f"SELECT count(*) FROM {fqn} WHERE {CREATED_AT} = ?",
                                      [last]).to_arrow().column(0)[0].as_py()

    def emit(rows: List[Any], schema_: Any) -> None:
        if not rows:
            return
        if fmt == "json":
            sys.stdout.write("".join(json_line(r) + "\n" for r in rows))
            sys.stdout.flush()
        else:
            console.print(_render(schema_, rows))

    emit(first.to_pylist(), first.schema)
    printed = 0
    while count is None or printed < count:
        time.sleep(interval)
        if last is None:
            new = ctx.client.sql(f"SELECT * FROM {fqn} ORDER BY {CREATED_AT}").to_arrow()
        else:
            # Rows stamped with the newest time already seen: skip those already printed.
            new = ctx.client.sql(f"SELECT * FROM {fqn} WHERE {CREATED_AT} >= ? ORDER BY {CREATED_AT}",
                                 [last]).to_arrow()
            new = new.slice(min(seen_at_last, new.num_rows))
        if new.num_rows == 0:
            continue
        rows = new.to_pylist()
        if count is not None:
            rows = rows[: count - printed]
        emit(rows, new.schema)
        printed += len(rows)
        newest = rows[-1][CREATED_AT]
        same = sum(1 for r in rows if r[CREATED_AT] == newest)
        seen_at_last = (seen_at_last + same) if newest == last else same
        last = newest
