"""Rich renderings shared by the CLI commands: progress bars and tables.

Every table is a ``FittedTable``, laid out for the console it is printed on: a figure (a cell
with no letters: numbers, percentages, times) is never wrapped, folded or cut; text wraps at
spaces, headers too; when even that does not fit, whole columns are left out from the right
(never the first) and the caption names them.
"""

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import progress
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from volcast.data.timeframe import format_time

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from volcast.data.store import SeriesKey
    from volcast.data.sync import Progress, SyncResult
    from volcast.evaluation.backtest import BacktestResult
    from volcast.models.base import EpochProgress
    from volcast.workspace.batch import Batch


MANY_SERIES = 12
"""More series than this get one bar and a folded summary: 200 bars or rows read as noise."""


def _fetch_bars(console: Console, *fields: str) -> progress.Progress:
    return progress.Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
        "{task.percentage:>3.0f}%"), *(TextColumn(f) for f in fields),
        TextColumn("{task.fields[added]:,} new"), TimeElapsedColumn(), console=console)


@contextmanager
def fetch_progress(console: Console, many: bool = False) -> Iterator["Progress"]:
    """One bar per series, advanced by the sync loop's progress callback; with ``many``, one
    bar over every series (the time spans they have to fetch, summed) and how many are
    done."""
    if many:
        with _overall_progress(console) as update:
            yield update
        return
    bars = _fetch_bars(console)
    tasks: dict[SeriesKey, TaskID] = {}

    def update(key: "SeriesKey", added: int, done: int, total: int) -> None:
        if total == 0:  # nothing to fetch: the series is up to date
            done = total = 1
        if key not in tasks:
            tasks[key] = bars.add_task(str(key), total=total, added=0)
        bars.update(tasks[key], completed=done, total=total, added=added)

    with bars:
        yield update


@contextmanager
def _overall_progress(console: Console) -> Iterator["Progress"]:
    bars = _fetch_bars(console, "{task.fields[finished]:,}/{task.fields[series]:,} series")
    task = bars.add_task("fetching", total=None, added=0, finished=0, series=0)
    state: dict[SeriesKey, tuple[int, int, int]] = {}

    def update(key: "SeriesKey", added: int, done: int, total: int) -> None:
        state[key] = (added, done, total) if total else (added, 1, 1)
        added_all, done_all, total_all = (sum(column) for column in zip(*state.values(),
                                                                        strict=True))
        bars.update(task, completed=done_all, total=total_all, added=added_all,
                    series=len(state), finished=sum(d == t for _, d, t in state.values()))

    with bars:
        yield update


_EXPONENT = re.compile(r"(?<=[0-9])[eE](?=[-+]?[0-9])")


def is_figure(cell: str) -> bool:
    """A cell that must stay whole: no letters (1.5e+03's exponent aside), e.g. 6,482.0,
    -7.1%, 2024-07-31 23:00, 1 (2)."""
    return re.search(r"[^\W\d_]", _EXPONENT.sub("", cell)) is None


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


class FittedTable:
    """A table laid out when printed, for the console's width (see the module docstring).
    The first column is left-aligned, figure columns right-aligned, text columns left."""

    def __init__(self, title: str, header: Sequence[str], rows: Sequence[Sequence[str]],
                 caption: str | None = None) -> None:
        self.title, self.header, self.caption = title, list(header), caption
        self.rows = [[str(cell) for cell in row] for row in rows]

    def _columns(self) -> list[tuple[bool, int, int, int]]:
        """Per column: (all figures?, narrowest width that cuts no figure and no word, width
        that wraps no cell, width that wraps nothing, header included)."""
        found = []
        for index, name in enumerate(self.header):
            cells = [row[index] for row in self.rows]
            figures = all(is_figure(c) for c in cells if c.strip()) and any(cells)
            least = max([_longest_word(name), 1, *(cell_len(c) if is_figure(c)
                                                   else _longest_word(c) for c in cells)])
            body = max([least, *(cell_len(c) for c in cells)])
            found.append((figures, least, body, max(body, cell_len(name))))
        return found

    def layout(self, width: int) -> tuple[list[int], list[str]]:
        """Content width of each kept column, and the names of the columns left out: wrap
        headers first, then text cells, then leave out columns from the right."""
        columns = self._columns()
        kept = len(columns)
        while kept > 1 and sum(c[1] for c in columns[:kept]) + 3 * kept + 1 > width:
            kept -= 1
        widths = [c[3] for c in columns[:kept]]
        excess = sum(widths) + 3 * kept + 1 - width
        for floor in (2, 1):  # headers wrap before cells do
            while excess > 0:  # narrow the widest column that can give, one cell at a time
                room = [i for i in range(kept) if widths[i] > columns[i][floor]]
                if not room:
                    break
                widths[max(room, key=lambda i: widths[i])] -= 1
                excess -= 1
        return widths, self.header[kept:]

    def render(self, width: int) -> Table:
        widths, left_out = self.layout(width)
        caption = [self.caption] if self.caption else []
        if left_out:
            caption.append(f"left out to fit {width} columns: {', '.join(left_out)}")
        table = Table(title=self.title, caption="; ".join(caption) or None)
        for index, (figures, *_) in enumerate(self._columns()[:len(widths)]):
            table.add_column(Text(self.header[index]), width=widths[index], overflow="fold",
                             justify="right" if figures and index else "left")
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row[:len(widths)]))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(options.max_width)


def results_table(results: list["SyncResult"], many: bool = False) -> FittedTable:
    """One row per series; with ``many``, the series that ended well fold into one row of
    totals (their earliest and latest candle) and only the others have rows of their own. On
    a narrow console the last columns give way first."""
    def status(r: "SyncResult") -> str:
        return r.error or (r.skipped and f"skipped, not retried: {r.skipped}") or r.note or "ok"

    shown = [r for r in results if status(r) != "ok"] if many else results
    rows = [[str(r.key), f"{r.added:,}", status(r), format_time(r.first), format_time(r.last),
             f"{r.gaps:,} ({r.missing:,})", f"{r.pages:,}"] for r in shown]
    well = [r for r in results if status(r) == "ok"]
    if many and well:
        firsts = [r.first for r in well if r.first is not None]
        lasts = [r.last for r in well if r.last is not None]
        rows.insert(0, [f"{len(well):,} series", f"{sum(r.added for r in well):,}", "ok",
                        format_time(min(firsts, default=None)),
                        format_time(max(lasts, default=None)),
                        f"{sum(r.gaps for r in well):,} ({sum(r.missing for r in well):,})",
                        f"{sum(r.pages for r in well):,}"])
    title = f"fetch summary: {len(results):,} series (times UTC)" if many else \
        "fetch summary (times UTC)"
    return FittedTable(title, ["series", "new candles", "status", "stored from", "to",
                               "gaps (missing)", "requests"], rows)


def series_table(series: "pd.DataFrame") -> FittedTable:
    """Stored series with their units: volume counts ``base``, prices are in ``quote``."""
    return FittedTable("stored series (times UTC)", [
        "series", "volume in", "quote", "rows", "first", "last", "gaps (missing)"], [
        [f"{row.exchange} {row.symbol} {row.timeframe}", row.base or "?", row.quote or "?",
         f"{row.rows:,}", format_time(row.first), format_time(row.last),
         f"{row.gaps:,} ({row.missing:,})"] for row in series.itertuples()])


def gaps_table(gaps: "pd.DataFrame") -> FittedTable:
    """One row per hole, with what is known of it: the exchange confirmed it has no candles
    there, or (some of) it is not fetched yet."""
    return FittedTable("gaps (times UTC)", ["after", "before", "missing", "status"], [
        [format_time(row.after), format_time(row.before), f"{row.missing:,}",
         "exchange has none" if row.confirmed == row.missing else
         "unfetched" if row.confirmed == 0 else f"{row.missing - row.confirmed:,} unfetched"]
        for row in gaps.itertuples()])


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
        bars.update(task[0], completed=epoch, total=epochs, train=train, val=val)

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
            self.bars.update(task[0], completed=epoch, total=epochs,
                             description=f"{model} training (val loss {val:.4f})")

        return update

    def origins(self, model: str) -> "Callable[[int, int], None]":
        return self.count(f"{model} forecasts")

    def count(self, what: str) -> "Callable[[int, int], None]":
        """A bar counting pieces of work done (forecast origins, series)."""
        task: list[TaskID] = []

        def update(done: int, total: int) -> None:
            if not task:
                task.append(self.bars.add_task(what, total=total))
            self.bars.update(task[0], completed=done)

        return update


def _count_bars(console: Console, transient: bool = False) -> progress.Progress:
    return progress.Progress(TextColumn("{task.description}"), BarColumn(),
                             TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                             console=console, transient=transient)


@contextmanager
def backtest_progress(console: Console) -> Iterator[BacktestBars]:
    with _count_bars(console) as bars:
        yield BacktestBars(bars)


@contextmanager
def count_progress(console: Console, what: str) -> "Iterator[Callable[[int, int], None]]":
    """One bar counting pieces of work on a terminal, gone when they are done; nothing
    elsewhere (the console may share a pipe with output meant for machines)."""
    if not console.is_terminal:
        yield lambda done, total: None
        return
    with _count_bars(console, transient=True) as bars:
        yield BacktestBars(bars).count(what)


def frame_table(frame: "pd.DataFrame", title: str) -> FittedTable:
    """A frame of text (``volcast.viz.tables``) as a table that fits the console."""
    return FittedTable(title, [str(c) for c in frame.columns],
                       [list(map(str, row)) for row in frame.itertuples(index=False)])


def scores_table(results: list["BacktestResult"], unit: str = "") -> FittedTable:
    from volcast.viz.tables import scores_frame

    return frame_table(scores_frame(results, unit),
                       "backtest (shared/bench/PROTOCOL.md), overall")


def batch_table(batch: "Batch") -> FittedTable:
    """Each model over every series of a backtest of many: the series, the mean and median
    MASE and the mean sMAPE (scale-free: MAE counts each pair's own base currency and does not
    average across pairs), the mean q10-q90 coverage, and on how many series its MAE beat the
    best reference model's."""
    import pandas as pd

    from volcast.viz.tables import fmt

    rows = []
    for results in batch.results.values():
        floor = min((r.scores["overall"]["mae"] for r in results if r.forecaster.is_reference),
                    default=float("nan"))
        rows += [{"model": r.model, "reference": r.forecaster.is_reference,
                  "beats": r.scores["overall"]["mae"] < floor} | r.scores["overall"]
                 for r in results]
    summary = pd.DataFrame(rows).groupby("model", sort=False).agg(
        series=("mae", "size"), mean_mase=("mase", "mean"), median_mase=("mase", "median"),
        smape=("smape", "mean"), coverage=("coverage", "mean"), reference=("reference", "any"),
        beats=("beats", "sum")).sort_values("mean_mase", na_position="last")
    table = [[str(model), f"{row.series:,}", fmt(row.mean_mase, ".3f"),
              fmt(row.median_mase, ".3f"), fmt(row.smape, ".2f"), fmt(row.coverage, ".3f"),
              "-" if row.reference else f"{int(row.beats):,}"]
             for model, row in summary.iterrows()]
    return FittedTable(f"backtest of {len(batch.results):,} series (shared/bench/PROTOCOL.md), "
                       "overall", ["model", "series", "mean MASE", "median MASE",
                                   "mean sMAPE %", "q10-q90 coverage",
                                   "series beating the best reference"], table)


def forecast_table(forecast: "pd.DataFrame", model: str) -> FittedTable:
    from volcast.viz.tables import forecast_frame

    return frame_table(forecast_frame(forecast), f"{model} forecast of volume (times UTC)")
