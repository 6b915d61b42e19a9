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
    from collections.abc import Callable

    import pandas as pd

    from volcast.data.store import SeriesKey
    from volcast.data.sync import Progress, SyncResult
    from volcast.evaluation.backtest import BacktestResult
    from volcast.models.base import EpochProgress


@contextmanager
def fetch_progress(console: Console) -> Iterator["Progress"]:
    """One bar per series, advanced by the sync loop's progress callback."""
    bars = progress.Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
        "{task.percentage:>3.0f}%"), TextColumn("{task.fields[added]} new"), TimeElapsedColumn(),
        console=console)
    tasks: dict[SeriesKey, TaskID] = {}

    def update(key: "SeriesKey", added: int, done: int, total: int) -> None:
        if total == 0:  # nothing to fetch: the series is up to date
            done = total = 1
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
                      format_time(r.last), f"{r.gaps} ({r.missing})", r.error or r.note or "ok")
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


@contextmanager
def epoch_progress(console: Console) -> Iterator["EpochProgress"]:
    """A bar over training epochs showing train and validation loss."""
    bars = progress.Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
        "epoch {task.completed}/{task.total}"), TextColumn("train {task.fields[train]:.4f}"),
        TextColumn("val {task.fields[val]:.4f}"), TimeElapsedColumn(), console=console)
    task: list[TaskID] = []

    def update(epoch: int, epochs: int, train: float, val: float) -> None:
        if not task:
            task.append(bars.add_task("training", total=epochs, train=train, val=val))
        bars.update(task[0], completed=epoch, train=train, val=val)

    with bars:
        yield update


class BacktestBars:
    """Per model: a bar over training epochs (learned models) and one over forecast origins."""

    def __init__(self, bars: progress.Progress) -> None:
        self.bars = bars

    def epochs(self, model: str) -> "EpochProgress":
        task: list[TaskID] = []

        def update(epoch: int, epochs: int, train: float, val: float) -> None:
            if not task:
                task.append(self.bars.add_task(f"{model} training", total=epochs))
            self.bars.update(task[0], completed=epoch,
                             description=f"{model} training (val loss {val:.4f})")

        return update

    def origins(self, model: str) -> "Callable[[int, int], None]":
        task: list[TaskID] = []

        def update(done: int, total: int) -> None:
            if not task:
                task.append(self.bars.add_task(f"{model} forecasts", total=total))
            self.bars.update(task[0], completed=done)

        return update


@contextmanager
def backtest_progress(console: Console) -> Iterator[BacktestBars]:
    bars = progress.Progress(TextColumn("{task.description}"), BarColumn(),
                             TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                             console=console)
    with bars:
        yield BacktestBars(bars)


def frame_table(frame: "pd.DataFrame", title: str) -> Table:
    """A frame of text (``volcast.viz.tables``) as a rich table: first column left, others right;
    only a ``note`` column wraps, so figures are never cut."""
    table = Table(title=title)
    for number, column in enumerate(frame.columns):
        table.add_column(str(column), justify="left" if number == 0 else "right",
                         no_wrap=column != "note", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*map(str, row))
    return table


def scores_table(results: list["BacktestResult"]) -> Table:
    from volcast.viz.tables import scores_frame

    return frame_table(scores_frame(results), "backtest (shared/bench/PROTOCOL.md), overall")


def forecast_table(forecast: "pd.DataFrame", model: str) -> Table:
    from volcast.viz.tables import forecast_frame

    return frame_table(forecast_frame(forecast), f"{model} forecast of volume (times UTC)")
