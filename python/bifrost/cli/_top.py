"""``bifrost top``: the server's uptime, versions and per-table backlog and
throughput (ServerStats), refreshed in the terminal; rows/s is measured between two
refreshes."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import cli
from ._common import Context, console, human_bytes, reports_errors


def _uptime(secs: float) -> str:
    secs = int(secs)
    days, secs = divmod(secs, 86400)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _ago(ms: int, now_ms: float) -> str:
    if not ms:
        return "-"
    return f"{max(0.0, (now_ms - ms) / 1000):.0f}s ago"


def render(stats: Dict[str, Any], previous: Optional[Tuple[float, Dict[str, Any]]], server: str) -> Group:
    """One frame: a header line and a table per table; rates from ``previous``
    ((monotonic time, stats) of the last frame), "-" on the first frame."""
    header = Text.assemble(
        ("bifrost-server ", "bold"), stats.get("version", "?"), f"  duckdb {stats.get('duckdb_version', '?')}",
        f"  {server}  up {_uptime(stats.get('uptime_secs', 0))}",
        f"  queries running {stats.get('queries_running', 0)}",
        f"  unflushed {human_bytes(stats.get('tail_bytes', 0))}",
        f"  rpcs {stats.get('rpcs_total', 0):,}")
    view = Table(expand=False)
    view.add_column("table", overflow="fold", no_wrap=False, min_width=12)
    for column in ("rows", "rows/s", "MB/s", "tail rows", "tail", "files", "size", "flushes", "flushed",
                   "refused", "dups"):
        view.add_column(column, justify="right", no_wrap=True)
    before: Dict[str, Any] = {}
    elapsed = 0.0
    if previous is not None:
        elapsed = time.monotonic() - previous[0]
        before = {f"{t['catalog']}.{t['schema_name']}.{t['table']}": t for t in previous[1].get("tables", [])}
    now_ms = time.time() * 1000
    tables = sorted(stats.get("tables", []), key=lambda t: -t.get("rows_acknowledged", 0))
    for t in tables:
        fqn = f"{t['catalog']}.{t['schema_name']}.{t['table']}"
        old = before.get(fqn)
        if old is not None and elapsed > 0:
            rate = f"{(t['rows_acknowledged'] - old['rows_acknowledged']) / elapsed:,.0f}"
            mbps = f"{(t['bytes_acknowledged'] - old['bytes_acknowledged']) / elapsed / 1e6:,.1f}"
        else:
            rate = mbps = "-"
        view.add_row(fqn, f"{t['num_rows']:,}", rate, mbps, f"{t['tail_rows']:,}", human_bytes(t["tail_bytes"]),
                     str(t["num_files"]), human_bytes(t["size_bytes"]), str(t["flushes"]),
                     _ago(t["last_flush_at_ms"], now_ms), str(t["inserts_refused"]), str(t["duplicates_skipped"]))
    return Group(header, view)


@cli.command()
@click.option("--interval", "-i", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="seconds between refreshes")
@click.option("--iterations", "-n", type=click.IntRange(min=1), default=None,
              help="stop after this many frames (default: until Ctrl-C)")
@click.option("--json", "as_json", is_flag=True, help="print the raw ServerStats once as JSON and exit")
@click.pass_obj
@reports_errors
def top(ctx: Context, interval: float, iterations: Optional[int], as_json: bool) -> None:
    """Live view of the server: uptime, versions, and per table the rows, ingest
    rate, unflushed backlog, files and flushes."""
    if as_json:
        import json

        click.echo(json.dumps(ctx.client.server_stats(), indent=2))
        return
    previous: Optional[Tuple[float, Dict[str, Any]]] = None
    frames = 0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            stats = ctx.client.server_stats()
            live.update(render(stats, previous, ctx.config.server_uri), refresh=True)
            previous = (time.monotonic(), stats)
            frames += 1
            if iterations is not None and frames >= iterations:
                break
            time.sleep(interval)
