"""Rich renderings shared by the CLI commands: progress bars and tables."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import progress
from rich.console import Console
from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from volcast.data.timeframe import format_time

if TYPE_CHECKING:
    import pandas as pd

    from volcast.data.store import SeriesKey
    from volcast.data.sync import Progress, SyncResult


@contextmanager
def fetch_progress(console: Console) -> Iterator["Progress"]:
    """One bar per series, advanced by the sync loop's progress callback."""
    bars = progress.Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
        "{task.percentage:>3.0f}%"), TextColumn("{task.fields[added]} new"), TimeElapsedColumn(),
        console=console)
    tasks: dict[SeriesKey, TaskID] = {}

    def update(key: "SeriesKey", added: int, done: int, total: int) -> None:
        if key not in tasks:
            tasks[key] = bars.add_task(str(key), total=total, added=0)
        bars.update(tasks[key], completed=done, total=total, added=added)

    with bars:
        yield update


def results_table(results: list["SyncResult"]) -> Table:
    table = Table(title="fetch summary")
    for column in ("series", "new candles", "requests", "stored from", "to", "gaps (missing)",
                   "status"):
        table.add_column(column, no_wrap=column != "status")
    for r in results:
        table.add_row(str(r.key), str(r.added), str(r.pages), format_time(r.first),
                      format_time(r.last), f"{r.gaps} ({r.missing})", r.error or "ok")
    return table


def series_table(series: "pd.DataFrame") -> Table:
    table = Table(title="stored series (times UTC)")
    for column in ("exchange", "symbol", "timeframe", "rows", "first", "last", "gaps (missing)"):
        table.add_column(column, no_wrap=True)
    for row in series.itertuples():
        table.add_row(row.exchange, row.symbol, row.timeframe, f"{row.rows:,}",
                      format_time(row.first), format_time(row.last),
                      f"{row.gaps} ({row.missing})")
    return table


def gaps_table(gaps: "pd.DataFrame") -> Table:
    table = Table(title="gaps (times UTC)")
    for column in ("after", "before", "missing"):
        table.add_column(column, no_wrap=True)
    for row in gaps.itertuples():
        table.add_row(format_time(row.after), format_time(row.before), str(row.missing))
    return table
