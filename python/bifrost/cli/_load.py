"""``bifrost load``: bulk-loads a Parquet, CSV or JSON-lines file into an existing
table through the producer's Arrow path (columns matched by name, converted to the
table's types), with a progress bar (rows/s, ETA) and a final summary. The table's
schema comes from the server, so no Python model is needed."""
from __future__ import annotations

import os
import time
from typing import Any, Iterator, Optional, Tuple

import click
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from .. import _core
from .._config import GrpcConfig, WriteConfig
from .._errors import SchemaError
from .._producer import DatasetProducer, _arrow_target_schema
from . import cli
from ._common import Context, err_console, parse_table, reports_errors

READ_BATCH_ROWS = 65536


class _TableName:
    def __init__(self, fqn: str, json_schema: str):
        self.fqn = fqn
        self.json_schema = json_schema  # insert_arrow() reads the logical column types from it


class TableProducer(DatasetProducer):
    """A DatasetProducer for an existing table described by the server (its stored
    JSON Schema) instead of a Pydantic model: only the Arrow path (insert_arrow)."""

    def __init__(self, info: Any, transport: GrpcConfig, write_config: WriteConfig):
        fqn = f"{info['catalog']}.{info['schema_name']}.{info['table']}"
        self._table_config = _TableName(fqn, info["json_schema"])  # type: ignore[assignment]
        self._transport = transport
        self._write_config = write_config
        self._model = type(fqn, (), {})
        self._core = _core.Producer(
            transport.server_uri, info["catalog"], info["schema_name"], info["table"], info["json_schema"],
            list(info.get("partition_columns") or []), tls=transport.tls, authorization=transport.authorization,
            batch_size=write_config.batch_size, scheduled_delay_secs=write_config.scheduled_delay_secs,
            max_queue_rows=write_config.max_queue_rows, backpressure=write_config.backpressure,
            rpc_timeout_secs=write_config.rpc_timeout_secs, max_retries=write_config.max_retries,
            max_queue_bytes=write_config.max_queue_bytes or 0)
        self._arrow_schema = None
        self._closed = False
        self._forked = False
        try:
            self._core.register()  # checks the fingerprint; never creates (the table exists)
        except BaseException:
            self._core.shutdown(1.0)
            raise

    def insert(self, record: Any) -> None:
        raise TypeError("this producer loads Arrow data only (insert_arrow)")


def _detect(path: str, fmt: Optional[str]) -> str:
    if fmt:
        return fmt
    lower = path.lower()
    for suffix, name in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"), (".jsonl", "jsonl"),
                         (".ndjson", "jsonl"), (".json", "jsonl")):
        if lower.endswith(suffix):
            return name
    raise click.UsageError(f"cannot tell the format of {path} from its name: add --format parquet|csv|jsonl")


def _check_columns(names: Any, target: Any) -> None:
    """The file's columns against the table's, before any row is sent (so an empty
    file with the wrong columns is refused too)."""
    extra = [n for n in names if target.get_field_index(n) < 0]
    if extra:
        raise SchemaError(f"columns not in the table: {extra}")
    missing = [f.name for f in target if not f.nullable and f.name not in names]
    if missing:
        raise SchemaError(f"required columns missing from the file: {missing}")


def _open(path: str, fmt: str, target: Any) -> Tuple[Optional[int], Iterator[Any]]:
    """(total rows when known up front, iterator of record batches)."""
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        _check_columns(pf.schema_arrow.names, target)
        return pf.metadata.num_rows, pf.iter_batches(batch_size=READ_BATCH_ROWS)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        names = set(target.names)
        types = {}
        for field in target:
            t = field.type
            if pa.types.is_string_view(t) or pa.types.is_temporal(t):
                t = pa.string()  # times convert later, naive ones as UTC like insert()
            if pa.types.is_primitive(t) or pa.types.is_string(t):
                types[field.name] = t
        # Only the table's scalar columns get a type; others are read as CSV infers them.
        # An empty field is NULL; a quoted empty field ("") is the empty string; the
        # text NULL / nan / inf is a value (a string, or NaN / infinity in a float).
        convert = pacsv.ConvertOptions(column_types={k: v for k, v in types.items() if k in names},
                                       null_values=[""], strings_can_be_null=True,
                                       quoted_strings_can_be_null=False)
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=convert)
        _check_columns(reader.schema.names, target)
        return None, iter(reader)
    import pyarrow.json as pajson

    table = pajson.read_json(path)
    _check_columns(table.column_names, target)
    return table.num_rows, iter(table.to_batches(max_chunksize=READ_BATCH_ROWS))


@cli.command()
@click.argument("table")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), default=None,
              help="input format (default: from the file name)")
@click.option("--batch-rows", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="rows per InsertBatch")
@click.option("--no-progress", is_flag=True, help="no progress bar (only the summary)")
@click.pass_obj
@reports_errors
def load(ctx: Context, table: str, file: str, fmt: Optional[str], batch_rows: int, no_progress: bool) -> None:
    """Bulk-loads FILE (Parquet, CSV or JSON lines) into TABLE (catalog.schema.table,
    which must exist). Returns once every row is acknowledged by the server."""
    fmt = _detect(file, fmt)
    info = ctx.client.describe_dataset(*parse_table(table))
    write = WriteConfig(batch_size=batch_rows, scheduled_delay_secs=0.05, max_queue_rows=max(1_000_000, 4 * batch_rows))
    producer = TableProducer(info, ctx.config, write)
    started = time.monotonic()
    loaded = 0
    try:
        target = _arrow_target_schema(producer._core)
        total, batches = _open(file, fmt, target)
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TaskProgressColumn(), TextColumn("{task.fields[rate]} rows/s"), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn()]
        with Progress(*columns, console=err_console, disable=no_progress, transient=False) as progress:
            task = progress.add_task(os.path.basename(file), total=total, rate="-")
            for batch in batches:
                loaded += producer.insert_arrow(batch)
                elapsed = max(time.monotonic() - started, 1e-9)
                progress.update(task, completed=loaded, rate=f"{loaded / elapsed:,.0f}")
            producer.flush()
            if total is None:
                progress.update(task, total=loaded)
    except BaseException:
        producer.shutdown(5.0)
        raise
    producer.shutdown()
    stats = producer.stats()
    elapsed = max(time.monotonic() - started, 1e-9)
    err_console.print(
        f"loaded {loaded:,} rows into {table} in {elapsed:.1f} s ({loaded / elapsed:,.0f} rows/s); "
        f"acknowledged {stats.get('acknowledged', 0):,}, failed {stats.get('failed', 0):,}", highlight=False)
    if stats.get("failed") or stats.get("dropped"):
        raise click.ClickException(f"{stats.get('failed', 0) + stats.get('dropped', 0)} rows were not stored: "
                                   f"{stats.get('last_error')}")
