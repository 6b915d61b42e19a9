"""Per-market downloads as pieces of work on an ``Executor`` (``volcast fetch --ray``).

``tasks`` is ``data.sync``'s download step (its ``Download``) for ``sync.fetch``: the driver
(this process) plans every series as a plain fetch does (one reading of the exchange's clock,
the ranges still missing from the store) and this hands the plans out in chunks of
``SERIES_PER_TASK`` series. A worker opens its own exchange client and downloads its chunk's
series concurrently with ``data.sync``'s own paging loop (its retries, its page checks, its
record of what the exchange has not), but keeps the pages in memory instead of writing them: the
driver stores each chunk as it comes back, so there is one writer, and a cluster whose workers
cannot see the database file works too.

The guarantees of ``data.sync`` hold, one chunk coarser: a network fault is retried inside the
worker, then reported with how far the series got; a refused market is skipped; an interrupted
run keeps every chunk that came back, and the next run asks again for what is missing. Each
worker's client has its own rate limiter, so N workers may send N times the requests one
process would (docs/scale.md).
"""

import asyncio
import threading
from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from volcast.config import FetchSettings
from volcast.data.exchange import ExchangeClient
from volcast.data.holes import Range
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.sync import Download, Planned, Progress, SyncResult, open_client, sync_planned
from volcast.workspace.executor import Executor

SERIES_PER_TASK = 8
"""Series one task downloads (concurrently, on one client): each task loads the exchange's
markets once, so one task per series would ask for them 200 times for 200 markets."""


@dataclass
class Chunk:
    """What one task downloads: its series' plans, on the exchange's clock at ``now``."""

    exchange: str
    url: str | None
    settings: FetchSettings
    now: int
    plans: list[tuple[SeriesKey, Planned]]


@dataclass
class Fetched:
    """One series' download as a worker returns it: the sync's result, its pages, the
    ranges the exchange showed it has no candles in, and its progress (done, total)."""

    result: SyncResult
    pages: list[pd.DataFrame] = field(default_factory=list)
    units: tuple[str, str] | None = None
    empty: list[Range] = field(default_factory=list)
    done: int = 0
    total: int = 0

    def upsert(self, key: SeriesKey, frame: pd.DataFrame,
               units: tuple[str, str] | None = None) -> int:
        """Stands in for ``CandleStore.upsert`` in the worker: the page is kept for the
        driver (every candle of a planned range is new to the store)."""
        self.pages.append(frame)
        self.units = units
        return len(frame)

    def confirm_empty(self, key: SeriesKey, start: int, stop: int) -> None:
        self.empty.append((start, stop))


def download(chunk: Chunk, _: None) -> list[Fetched]:
    """A task: the chunk's series downloaded into memory (see the module docstring)."""
    return asyncio.run(_download(chunk))


async def _download(chunk: Chunk) -> list[Fetched]:
    async with open_client(chunk.exchange, chunk.url, chunk.settings) as opened:
        return list(await asyncio.gather(*(_series(opened, key, planned, chunk.now)
                                           for key, planned in chunk.plans)))


async def _series(opened: ExchangeClient, key: SeriesKey, planned: Planned, now: int
                  ) -> Fetched:
    fetched = Fetched(SyncResult(key))

    def progress(_: SeriesKey, added: int, done: int, total: int) -> None:
        fetched.done, fetched.total = done, total

    # the paging loop writes through ``upsert`` and ``confirm_empty`` only: Fetched has both
    fetched.result = await sync_planned(opened, cast(CandleStore, fetched), key, planned, now,
                                         progress)
    return fetched


def tasks(runner: Executor, exchange: str, url: str | None, settings: FetchSettings
          ) -> Download:
    """``data.sync``'s ``Download`` as tasks on ``runner``: the plans in chunks, each chunk
    downloaded by a task and stored here as it comes back. Cancelled (Ctrl-C), it stops after
    the chunk in hand, keeping every stored chunk."""

    async def download(_: ExchangeClient, store: CandleStore,
                       plans: list[tuple[SeriesKey, Planned]], now: int, progress: Progress
                       ) -> list[SyncResult]:
        for key, (ranges, _) in plans:  # every bar before the first chunk comes back
            if ranges:
                progress(key, 0, 0, sum(end - start for start, end in ranges))
        chunks = [Chunk(exchange, url, settings, now, plans[i:i + SERIES_PER_TASK])
                  for i in range(0, len(plans), SERIES_PER_TASK)]
        stop = threading.Event()
        try:
            return await asyncio.to_thread(_store_all, runner, chunks, store, progress, stop)
        except asyncio.CancelledError:
            stop.set()
            raise

    return download


def _store_all(runner: Executor, chunks: list[Chunk], store: CandleStore, progress: Progress,
               stop: threading.Event) -> list[SyncResult]:
    """Each chunk stored as its task finishes, until all are or ``stop`` is set; the
    results in the order of the series."""
    done: list[list[SyncResult]] = [[] for _ in chunks]
    for index, fetched in runner.each(download, chunks, None):
        done[index] = [_store(store, series, progress) for series in fetched]
        if stop.is_set():
            break
    return [result for chunk in done for result in chunk]


def _store(store: CandleStore, fetched: Fetched, progress: Progress) -> SyncResult:
    """One series' pages and empty ranges into the store; its progress and result say how
    many candles were new."""
    key, result = fetched.result.key, fetched.result
    with store.connection():
        result.added = store.upsert(key, pd.concat(fetched.pages, ignore_index=True),
                                    fetched.units) if fetched.pages else 0
        for start, end in fetched.empty:
            store.confirm_empty(key, start, end)
    progress(key, result.added, fetched.done, fetched.total)
    return result
