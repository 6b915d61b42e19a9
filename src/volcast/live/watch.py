"""The watch-list as a checked plan: which series each exchange follows, and from when.

``[[watch]]`` tables are what a person writes (several tables for one exchange, the same
series twice); a plan is what the followers need: one entry per exchange and base URL, each
series once, every symbol, timeframe and start time checked, so that a typo fails when the
config is loaded (or reloaded) with one line naming the table, not later inside a follower.
A table's ``top`` markets are only known once the exchange answers: the plan carries them as
a ``WatchedUniverse``, which the follower expands (``expand``) each time it opens the
exchange.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from volcast.config import WatchSettings
from volcast.data.exchange import ExchangeClient, check_exchange_id
from volcast.data.store import SeriesKey
from volcast.data.timeframe import parse_time, timeframe_ms
from volcast.data.universe import Selection, Universe, select
from volcast.errors import VolcastError


@dataclass(frozen=True)
class WatchedSeries:
    """One series to follow; ``since`` is the backfill start in ms, or None for "the last
    day", which only the exchange's clock can place."""

    key: SeriesKey
    since: int | None = None


@dataclass(frozen=True)
class WatchedUniverse:
    """A table's top markets, to follow in ``timeframes`` from ``since`` (as a series' is)."""

    universe: Universe
    timeframes: tuple[str, ...]
    since: int | None = None


@dataclass(frozen=True)
class ExchangePlan:
    """Everything one follower does: one exchange at one base URL (None: the exchange's own),
    its series in the order the watch-list names them, and the universes whose markets join
    them once the exchange is open (``expand``)."""

    exchange: str
    url: str | None
    series: tuple[WatchedSeries, ...]
    universes: tuple[WatchedUniverse, ...] = ()

    @property
    def ident(self) -> tuple[str, str | None]:
        """What tells two followers apart: a reload keeps a follower whose ident and series
        are unchanged."""
        return self.exchange, self.url

    @property
    def keys(self) -> list[SeriesKey]:
        return [watched.key for watched in self.series]


@dataclass(frozen=True)
class PlanChange:
    """How a reload changes one exchange's series."""

    exchange: str
    url: str | None
    added: tuple[SeriesKey, ...]
    removed: tuple[SeriesKey, ...]


def _since(entry: WatchSettings, where: str) -> int | None:
    """The entry's backfill start in ms; one line naming the entry when it is not a time."""
    if entry.since is None:
        return None
    try:
        return parse_time(entry.since)
    except VolcastError as exc:
        raise VolcastError(f"{where}: since: {exc}") from None


def _entry(entry: WatchSettings, where: str
           ) -> tuple[list[WatchedSeries], WatchedUniverse | None]:
    """Every symbol x timeframe of one ``[[watch]]`` table, and its top markets, checked."""
    try:
        check_exchange_id(entry.exchange)
        since = _since(entry, where)
        series = [WatchedSeries(SeriesKey.parse(entry.exchange, symbol, timeframe), since)
                  for symbol in entry.symbols for timeframe in entry.timeframes]
        for timeframe in entry.timeframes:
            timeframe_ms(timeframe)
    except VolcastError as exc:
        message = str(exc)
        raise VolcastError(message if message.startswith(where) else f"{where}: {message}"
                           ) from None
    if entry.top is None or entry.quote is None:
        return series, None
    return series, WatchedUniverse(Universe(entry.top, entry.quote), tuple(entry.timeframes),
                                   since)


def _earliest(first: int | None, second: int | None) -> int | None:
    """The earlier of two backfill starts; "the last day" (None) gives way to any date."""
    if first is None or second is None:
        return second if first is None else first
    return min(first, second)


def merged(series: Iterable[WatchedSeries]) -> tuple[WatchedSeries, ...]:
    """Each series once, in the order first named, from its earliest start."""
    starts: dict[SeriesKey, int | None] = {}
    for watched in series:
        known = watched.key in starts
        starts[watched.key] = (_earliest(starts[watched.key], watched.since) if known
                               else watched.since)
    return tuple(WatchedSeries(key, since) for key, since in starts.items())


def watch_plan(entries: Sequence[WatchSettings]) -> list[ExchangePlan]:
    """``Settings.watch`` -> one plan per exchange and URL, in the order first named. A series
    named twice is followed once, from the earlier start; the same series from two URLs is
    refused, since both would write into one stored series."""
    series: dict[tuple[str, str | None], list[WatchedSeries]] = {}
    universes: dict[tuple[str, str | None], list[WatchedUniverse]] = {}
    source: dict[SeriesKey, str | None] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"[[watch]] table {number} ({entry.exchange})"
        ident = (entry.exchange, entry.url)
        named, universe = _entry(entry, where)
        for watched in named:
            url = source.setdefault(watched.key, entry.url)
            if url != entry.url:
                raise VolcastError(f"{where}: {watched.key} is already watched at another url; "
                                   "one series can be followed from one url only")
        series.setdefault(ident, []).extend(named)
        universes.setdefault(ident, []).extend([universe] if universe else [])
    return [ExchangePlan(exchange, url, merged(named), tuple(universes[(exchange, url)]))
            for (exchange, url), named in series.items()]


async def expand(plan: ExchangePlan, client: ExchangeClient
                 ) -> tuple[tuple[WatchedSeries, ...], list[Selection]]:
    """The plan's series and, after them, its universes' markets on the exchange now (the
    client is the plan's exchange, open), each series once; and what each universe chose
    and left out."""
    selections = [await select(client, watched.universe) for watched in plan.universes]
    chosen = [WatchedSeries(SeriesKey(plan.exchange, symbol, timeframe), watched.since)
              for watched, selection in zip(plan.universes, selections, strict=True)
              for symbol in selection.symbols for timeframe in watched.timeframes]
    return merged([*plan.series, *chosen]), selections


def diff_plans(old: Iterable[ExchangePlan], new: Iterable[ExchangePlan]) -> list[PlanChange]:
    """What a reload adds and removes, per exchange and URL (only those that change): an
    exchange that leaves the list has all its series removed, a new one all added."""
    before = {plan.ident: plan.keys for plan in old}
    after = {plan.ident: plan.keys for plan in new}
    changes = []
    for ident in [*before, *(i for i in after if i not in before)]:
        was, now = before.get(ident, []), after.get(ident, [])
        added = tuple(key for key in now if key not in was)
        removed = tuple(key for key in was if key not in now)
        if added or removed:
            changes.append(PlanChange(*ident, added, removed))
    return changes
