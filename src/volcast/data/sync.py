"""Download candles into the store: our own pagination loop, resumable and idempotent.

The loop advances from the last candle each page returned, never from the wall clock, and stops
when the exchange has nothing newer, so it cannot spin on exchanges that ignore ``since`` or
stop early on short pages. Only candles closed by the exchange's own clock are kept. Each page is
stored as it arrives, so an interrupted run loses at most the page in flight and the next run
asks again for all that is missing: the holes between stored candles and the tail after the
last. What the exchange shows it has no candles for is recorded (``volcast.data.holes``) and
never asked for again. A series the exchange refuses (an error that is not a network fault:
a delisted or unknown market) is skipped and said so, while the others go on.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from volcast.config import FetchSettings
from volcast.data.exchange import ExchangeClient, Refused, RetryPolicy
from volcast.data.formats.validate import check_values, numeric
from volcast.data.holes import HALTED_AFTER_MS, Range, subtract
from volcast.data.store import CANDLE_COLUMNS, CandleStore, SeriesKey
from volcast.data.timeframe import format_time
from volcast.errors import FetchFailed, VolcastError

Scope = Literal["all", "holes", "tail"]
"""What a sync downloads: everything missing, the holes alone, or the tail alone."""
Progress = Callable[[SeriesKey, int, int, int], None]
"""Called as (series, new candles stored so far this run, ms of the ranges done, ms of the
ranges in all): once before the first page when there is something to fetch, after each page,
and once more when the series is finished, with the figures of its ``SyncResult``: ``added``
and, unless it gave up or was skipped, done == all."""
Expand = Callable[[ExchangeClient], Awaitable[Sequence[SeriesKey]]]
"""More series to fetch, found once the exchange is open (the top markets by volume)."""


@dataclass
class SyncResult:
    """What one series' sync did; ``error`` says how far it got when it gave up (a network
    fault, retried until then; the next run resumes), ``skipped`` why the exchange refused it
    (an error retrying cannot mend: not retried), ``note`` why a series that ended well holds
    no candles, or none lately."""

    key: SeriesKey
    added: int = 0
    pages: int = 0
    gaps: int = 0
    missing: int = 0
    first: int | None = None
    last: int | None = None
    error: str | None = None
    skipped: str | None = None
    note: str | None = None


Planned = tuple[list[Range], int | None]
"""One series' plan: the ranges to download, its newest stored open time."""
Download = Callable[[ExchangeClient, CandleStore, list[tuple[SeriesKey, Planned]], int, Progress],
                    Awaitable[list[SyncResult]]]
"""How ``sync_many`` downloads and stores the planned series (client, store, plans, the
exchange's now, progress), returning their results in order: ``concurrently`` on this client,
or as tasks on other processes (``workspace.downloads.tasks``, ``fetch --ray``)."""


def plan_ranges(bounds: Range | None, gaps: Sequence[Range], since: int | None, stop: int,
                tf_ms: int, scope: Scope = "all") -> list[Range]:
    """[start, stop) open-time ranges still to download, in time order, never what is stored:
    the head before the first stored candle when --since reaches before it, every hole
    (``gaps``: open times missing between stored candles) from --since on, and the tail after
    the last stored candle. ``scope``: "holes" only the holes (repair), "tail" only the tail
    (each round of --follow after the first)."""
    if bounds is None:
        if since is None:
            raise VolcastError("nothing stored for this series yet: give --since to start")
        return [(since, stop)] if since < stop and scope != "holes" else []
    first, last = bounds
    ranges = []
    if scope == "all" and since is not None and since < first:
        ranges.append((since, min(first, stop)))
    if scope != "tail":
        floor = first if since is None else since
        ranges += [(max(start, floor), min(end, stop)) for start, end in gaps]
    if scope != "holes":
        ranges.append((last + tf_ms if since is None else max(since, last + tf_ms), stop))
    return [(start, end) for start, end in ranges if start < end]


def empty_stretches(ts: np.ndarray, cursor: int, stop: int, tf_ms: int) -> list[Range]:
    """What a page asked from ``cursor`` shows the exchange lacks in [cursor, stop): the
    stretch before its first candle and those between consecutive candles, since a page holds
    every candle the exchange has from ``cursor`` on, up to its limit."""
    edges = np.concatenate([[cursor - tf_ms], np.sort(ts[ts >= cursor])])
    starts, ends = edges[:-1] + tf_ms, edges[1:]
    found = ends > starts
    return [(max(int(a), cursor), min(int(b), stop)) for a, b in zip(starts[found], ends[found],
                                                                       strict=True)
            if max(a, cursor) < min(b, stop)]


def checked_page(rows: Sequence[Sequence[float]], source: str, now: int) -> pd.DataFrame:
    """ccxt's OHLCV rows -> a candle frame with integer ms timestamps, one row per open time.
    Every row is validated first, those the loop will not keep too: one candle from the future
    would move the cursor past every real one and end the download at once."""
    frame = numeric(pd.DataFrame([list(r[:6]) for r in rows], columns=CANDLE_COLUMNS), source)
    check_values(frame, source, now, "the exchange's clock")
    frame["timestamp"] = frame["timestamp"].astype("int64")
    return frame.drop_duplicates("timestamp", keep="last")


async def _checked(client: ExchangeClient, rows: Sequence[Sequence[float]], source: str,
                   now: int) -> pd.DataFrame:
    """``checked_page`` against the clock read before paging, or, when that refuses the page,
    against the exchange's clock read again: a long download (or a simulator's fast clock)
    lets candles open after the first reading, and those are real, not from the future."""
    try:
        return checked_page(rows, source, now)
    except VolcastError:
        later = await client.server_time()
        if later <= now:
            raise
        return checked_page(rows, source, later)


async def _download(client: ExchangeClient, store: CandleStore, key: SeriesKey,
                    span: Range, now: int, bounded: bool, result: SyncResult,
                    report: Callable[[int], None]) -> None:
    """Page through ``span`` = [start, stop). A page is written on a worker thread while the
    next one is requested, so the database never waits for the network or the network for the
    database; the previous write finishes before the next starts, keeping pages in order.
    What the pages show the exchange lacks is recorded as confirmed empty, and so is the rest
    of a ``bounded`` range (one a stored candle follows) when the exchange answers nothing
    more, but never what lies before the oldest candle the exchange answers for (Kraken
    answers only its newest 720, whatever is asked). ``report`` gets the ms of the range done
    after each page."""
    start, stop = span
    oldest = client.oldest_answered(key.tf_ms, now)

    async def confirm(stretches: list[Range]) -> None:
        for low, high in stretches:
            if oldest is None or low >= oldest:
                await asyncio.to_thread(store.confirm_empty, key, low, high)

    limit = client.page_limit(key.symbol)
    units = client.units(key.symbol)
    cursor = start
    writing: asyncio.Future[int] | None = None
    try:
        while cursor < stop:
            rows = await client.fetch_candles(key.symbol, key.timeframe, cursor, limit)
            result.pages += 1
            page = await _checked(client, rows, f"{key}: {client.id}'s page from "
                                  f"{format_time(cursor)}", now)
            newest = int(page["timestamp"].max()) if len(page) else None
            keep = page[(page["timestamp"] >= cursor) & (page["timestamp"] < stop)]
            if writing is not None:
                result.added += await writing
                writing = None
            if len(keep):
                writing = asyncio.ensure_future(asyncio.to_thread(store.upsert, key, keep, units))
            if newest is None or newest < cursor:  # nothing newer: the exchange has no more
                await confirm([(cursor, stop)] if bounded else [])
                break
            await confirm(empty_stretches(page["timestamp"].to_numpy(), cursor, stop,
                                          key.tf_ms))
            cursor = newest + key.tf_ms
            report(min(cursor, stop) - start)
    finally:
        if writing is not None:
            result.added += await writing


def _planned(store: CandleStore, key: SeriesKey, since: int | None, stop: int,
             scope: Scope) -> Planned:
    """The ranges to download (``plan_ranges`` less what the exchange confirmed empty) and
    the last stored open time (a range ending at or before it is followed by a candle). One
    opening of the store; the holes are not read for a tail, which never asks for them."""
    with store.connection():
        bounds = store.bounds(key)
        gaps = [] if bounds is None or scope == "tail" else [
            (int(row.after) + key.tf_ms, int(row.before)) for row in store.gaps(key).itertuples()]
        ranges = plan_ranges(bounds, gaps, since, stop, key.tf_ms, scope)
        return subtract(ranges, store.empty_ranges(key)), None if bounds is None else bounds[1]


def _summarise(store: CandleStore, result: SyncResult) -> None:
    """The series' span and holes after the sync, in one opening of the store."""
    with store.connection():
        bounds = store.bounds(result.key)
        if bounds is not None:
            result.first, result.last = bounds
            gaps = store.gaps(result.key)
            result.gaps, result.missing = len(gaps), int(gaps["missing"].sum())


def stop_time(key: SeriesKey, now: int, until: int | None) -> int:
    """Where a series' sync ends: its newest candle closed by ``now`` (a candle is closed
    once open + tf <= now), or ``until`` when earlier."""
    stop = now - key.tf_ms + 1
    return stop if until is None else min(stop, until)


async def sync_series(client: ExchangeClient, store: CandleStore, key: SeriesKey,
                      since: int | None, until: int | None, progress: Progress,
                      scope: Scope = "all", now: int | None = None) -> SyncResult:
    """Bring one series up to ``until`` (default: the exchange's now), closed candles only,
    filling its holes (``plan_ranges``). Progress runs over all the ranges to fetch together,
    and its last call carries the result's own figures: every new candle stored, and the whole
    range done unless it gave up. ``now``: the exchange's time when the caller has just read
    it (a follower syncing many series after one reading); else it is asked. The store is used
    from worker threads, so that an event loop following other series keeps running while
    another process holds the file."""
    if now is None:
        now = await client.server_time()
    stop = stop_time(key, now, until)
    planned = await asyncio.to_thread(_planned, store, key, since, stop, scope)
    result = await sync_planned(client, store, key, planned, now, progress)
    await asyncio.to_thread(_summarise, store, result)
    conclude(client, result, stop)
    return result


async def sync_planned(client: ExchangeClient, store: CandleStore, key: SeriesKey,
                        planned: Planned, now: int, progress: Progress) -> SyncResult:
    """Download the planned ranges (``_planned``); a network fault that outlasts the retries
    or a refusal ends it (``conclude`` words them, once the result is summarised)."""
    ranges, last = planned
    result = SyncResult(key)
    total = sum(end - begin for begin, end in ranges)
    done = 0
    if total:
        progress(key, 0, 0, total)

    def report(offset: int) -> Callable[[int], None]:
        def update(in_range: int) -> None:
            nonlocal done
            done = offset + in_range
            progress(key, result.added, done, total)
        return update

    try:
        offset = 0
        for begin, end in ranges:
            bounded = last is not None and end <= last
            await _download(client, store, key, (begin, end), now, bounded, result,
                            report(offset))
            offset += end - begin
        done = total
    except FetchFailed as exc:
        result.error = str(exc)
    except Refused as exc:  # retrying will not mend it
        result.skipped = str(exc)
    progress(key, result.added, done, total)
    return result


def conclude(client: ExchangeClient, result: SyncResult, stop: int) -> None:
    """After the summary: how far a series that gave up got, or a note on one that ended
    well."""
    if result.error is not None:
        reached = "nothing" if result.last is None else format_time(result.last)
        result.error = (f"{result.key}: {result.error}; stored up to {reached} UTC "
                        f"({result.added} new this run); run the same command again to resume")
    elif result.skipped is None:
        result.note = _note(client, result, stop)


def _note(client: ExchangeClient, result: SyncResult, stop: int) -> str | None:
    """Why a series that synced well holds no candles, or none of late (listed, yet the
    exchange publishes nothing: halted or delisted)."""
    if result.last is None:
        return f"no candles: {client.id} has none in the range asked for"
    if result.last + result.key.tf_ms < stop - HALTED_AFTER_MS:
        state = "listed as trading" if client.active(result.key.symbol) else "not trading"
        return (f"no candles after {format_time(result.last)} UTC ({state} on {client.id}: "
                "halted or delisted)")
    return None


def checked_plans(client: ExchangeClient, store: CandleStore, keys: Sequence[SeriesKey],
                   since: int | None, stops: Sequence[int], scope: Scope) -> list[Planned]:
    """Every series checked (listed, something stored where it must be) and planned, in one
    opening of the store: opening it costs more than planning one series."""
    with store.connection():
        for key in keys:
            client.check(key.symbol, key.timeframe)
            stored = store.bounds(key) is not None
            if not stored and scope == "holes":
                raise VolcastError(f"nothing stored for {key}, so no holes to repair: fetch it "
                                   "with --since")
            if since is None and not stored:
                raise VolcastError(f"nothing stored for {key} yet: give --since to start")
        return [_planned(store, key, since, stop, scope)
                for key, stop in zip(keys, stops, strict=True)]


def summarise_all(store: CandleStore, results: Sequence[SyncResult]) -> None:
    with store.connection():
        for result in results:
            _summarise(store, result)


async def concurrently(client: ExchangeClient, store: CandleStore,
                       plans: list[tuple[SeriesKey, Planned]], now: int, progress: Progress
                       ) -> list[SyncResult]:
    """The plain ``Download``: every series at once on ``client`` (ccxt's rate limiter paces
    them), each page stored as it arrives."""
    return list(await asyncio.gather(*(sync_planned(client, store, key, planned, now, progress)
                                       for key, planned in plans)))


async def sync_many(client: ExchangeClient, store: CandleStore, keys: Sequence[SeriesKey],
                    since: int | None, until: int | None, progress: Progress,
                    scope: Scope = "all", download: Download = concurrently
                    ) -> list[SyncResult]:
    """Sync several series of one exchange; they share one reading of the exchange's clock,
    one opening of the store to plan them all and one to summarise them (a universe of 200
    series would otherwise open it 400 times more), and ``download`` gets them."""
    now = await client.server_time()
    stops = [stop_time(key, now, until) for key in keys]
    plans = await asyncio.to_thread(checked_plans, client, store, keys, since, stops, scope)
    results = await download(client, store, list(zip(keys, plans, strict=True)), now, progress)
    await asyncio.to_thread(summarise_all, store, results)
    for result, stop in zip(results, stops, strict=True):
        conclude(client, result, stop)
    return results


async def follow(client: ExchangeClient, store: CandleStore, keys: Sequence[SeriesKey],
                 poll_s: float, progress: Progress, on_round: Callable[[list[SyncResult]], None],
                 rounds: int | None = None) -> None:
    """Real-time mode: sync incrementally every ``poll_s`` seconds, appending each candle as it
    closes, until cancelled (or after ``rounds`` rounds). Only the tail: the first round, a
    whole fetch, has already asked for every hole."""
    done = 0
    while rounds is None or done < rounds:
        on_round(await sync_many(client, store, keys, None, None, progress, "tail"))
        done += 1
        if rounds is None or done < rounds:
            await asyncio.sleep(poll_s)


def open_client(exchange_id: str, url: str | None, settings: FetchSettings) -> ExchangeClient:
    """The exchange's client with the fetch settings' timeout, retries and rate limit."""
    return ExchangeClient(exchange_id, url=url, timeout_ms=settings.timeout_ms,
                          retry=RetryPolicy(settings.retries, settings.backoff_s,
                                            settings.backoff_max_s),
                          rate_limit=settings.rate_limit)


async def fetch(exchange_id: str, keys: Sequence[SeriesKey], store: CandleStore,
                settings: FetchSettings, *, since: int | None = None, until: int | None = None,
                url: str | None = None, progress: Progress = lambda *_: None,
                on_round: Callable[[list[SyncResult]], None] | None = None,
                follow_rounds: int | None = 0, scope: Scope = "all",
                expand: Expand | None = None, download: Download = concurrently
                ) -> list[SyncResult]:
    """Open the exchange, add the series ``expand`` finds there, validate every series, sync
    them all (``scope``: see ``plan_ranges``; ``download``: see ``sync_many``); then, unless
    ``follow_rounds`` is 0, keep following (None: until cancelled) all but the skipped ones,
    in this process. Returns the first round's results."""
    async with open_client(exchange_id, url, settings) as client:
        if expand is not None:
            keys = list(dict.fromkeys([*keys, *await expand(client)]))
        results = await sync_many(client, store, keys, since, until, progress, scope, download)
        if on_round is not None:
            on_round(results)
        if follow_rounds != 0:
            await asyncio.sleep(settings.poll_s)
            await follow(client, store, [r.key for r in results if r.skipped is None],
                         settings.poll_s, progress, on_round or (lambda _: None),
                         follow_rounds)
        return results
