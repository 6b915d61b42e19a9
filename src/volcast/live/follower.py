"""Following a watch-list: every candle stored as it closes, on each exchange at once.

One ``Follower`` per exchange (and base URL) owns one ``ExchangeClient``, so all its series
share one rate limiter. It backfills every series with the store's own sync (which resumes
from what is stored and fills holes: a restart after an outage or kill -9 fills the gap, and
the primary key and idempotent pages rule out duplicates), then sleeps until the next candle
of any series closes on the *exchange's* clock, asks the exchange's time and syncs the tail of
each series whose candle has closed. The exchange clock is estimated (offset and rate) from
successive ``server_time()`` samples, because the simulator's runs at ``speed`` x real time and
a real exchange's differs from ours by an offset. A failure never ends the loop: the series
(or the whole exchange, when it is down) is reported and retried after a backoff, a long one
(``REFUSED_RETRY_S``) when the exchange refused the series or lists its market as not trading.
A plan's top markets by volume (``[[watch]] top``) are chosen each time the exchange is opened.
"""

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from volcast.config import FetchSettings, LiveSettings
from volcast.data.exchange import ExchangeClient, RetryPolicy
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.sync import Scope, SyncResult, sync_series
from volcast.data.timeframe import DAY_MS
from volcast.errors import FetchFailed, VolcastError
from volcast.live.watch import ExchangePlan, PlanChange, WatchedSeries, diff_plans, expand

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
RATE_BOUNDS = (0.0, 100_000.0)
"""Clamp of the estimated exchange-clock rate: it never runs backwards, and a wild sample
(an exchange that restarted its clock) cannot make the follower spin."""
RATE_SPAN_S = 3.0
"""Real seconds the clock samples must span before their rate is trusted (Kraken's clock has
one-second resolution); until then the follower looks again at least this often."""
SAMPLES = 16
REFUSED_RETRY_S = 3600.0
"""How long a series waits before it is tried again when the exchange refused it (an unknown
market, an error no retry mends) or lists its market as not trading (delisted): reported as
failing meanwhile, not asked for at full speed."""
NOWCAST_GAP_S = 1.0
"""Least real time between two nowcast fetches: "every minute of the exchange's clock" would
be thirty a second on a simulator at 1800 x."""


def _ignore(*_: object) -> None:
    """The default callback."""


@dataclass
class Callbacks:
    """What a follower reports, called on the event loop (keep them quick: hand heavy work,
    such as a forecast, to a thread). ``on_candles(key, added, newest_open_ms)`` after new
    candles are stored; ``on_error(key, message)`` when a sync gave up (it is retried);
    ``on_ok(key)`` after a good sync; ``on_open(key, open_ms, volume_so_far, exchange_now_ms)``
    each minute with the open candle, when given and ``LiveSettings.nowcast`` is on. A page
    written while the follower is being stopped is stored but not reported: the store, not
    the calls, is the record."""

    on_candles: Callable[[SeriesKey, int, int], None] = _ignore
    on_error: Callable[[SeriesKey, str], None] = _ignore
    on_ok: Callable[[SeriesKey], None] = _ignore
    on_open: Callable[[SeriesKey, int, float, int], None] | None = None
    on_clock: Callable[[str, "ExchangeClock"], None] = _ignore
    """Told each new follower's exchange clock (exchange id, clock): what "now" means for
    the exchange's series (stale data, candle ages)."""
    on_delay: Callable[[SeriesKey, float], None] = _ignore
    """``on_delay(key, seconds)`` for each candle stored as it closed (not the backfill's):
    real seconds from its close on the exchange's clock until it was stored."""
    on_expand: Callable[[str, list[SeriesKey]], None] = _ignore
    """``on_expand(exchange, keys)``: every series a follower of a plan with top markets
    follows, once it has chosen them (each time it opens the exchange)."""


def _notify(callback: Callable[..., None], *args: object) -> None:
    """Run a callback; its failure is logged, never the follower's end."""
    try:
        callback(*args)
    except Exception:
        log.exception("a follower callback failed")


class ExchangeClock:
    """The exchange's clock as seen from ours: the newest sample plus the rate between the
    oldest and newest of the last few samples (1.0 until they span ``RATE_SPAN_S``)."""

    def __init__(self, local: Callable[[], float] = time.monotonic) -> None:
        self._local = local
        self._samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES)
        self.rate = 1.0
        self.settled = False

    def observe(self, exchange_ms: int) -> None:
        """Record one ``server_time()`` answer."""
        now = self._local()
        self._samples.append((now, exchange_ms))
        first_local, first_ms = self._samples[0]
        if now - first_local >= RATE_SPAN_S:
            measured = (exchange_ms - first_ms) / ((now - first_local) * 1000)
            self.rate = min(max(measured, RATE_BOUNDS[0]), RATE_BOUNDS[1])
            self.settled = True

    def now(self) -> int:
        """The exchange's time now, estimated from the samples; ours until the first one."""
        if not self._samples:
            return int(time.time() * 1000)
        local, exchange_ms = self._samples[-1]
        return exchange_ms + int((self._local() - local) * 1000 * self.rate)

    def seconds_since(self, exchange_ms: int) -> float:
        """Real seconds since the exchange's clock showed ``exchange_ms`` (0 when it has not
        yet)."""
        return max(self.now() - exchange_ms, 0) / 1000 / (self.rate or 1.0)

    def seconds_until(self, exchange_ms: int) -> float:
        """Real seconds until the exchange's clock shows ``exchange_ms``; infinite while it
        stands still."""
        ahead = exchange_ms - self.now()
        if ahead <= 0:
            return 0.0
        return ahead / 1000 / self.rate if self.rate > 0 else math.inf


@dataclass
class _Track:
    """A followed series' state within one connection to its exchange."""

    watched: WatchedSeries
    backfilled: bool = False
    last: int | None = None
    failures: int = 0
    retry_at: float = 0.0

    @property
    def key(self) -> SeriesKey:
        return self.watched.key

    def due(self, exchange_ms: int) -> bool:
        """Whether a closed candle is not stored yet (or the backfill is still to do)."""
        tf = self.key.tf_ms
        newest_closed = (exchange_ms // tf - 1) * tf
        return not self.backfilled or self.last is None or self.last < newest_closed

    def next_close(self) -> int:
        """When the candle after the newest stored one closes, on the exchange's clock."""
        return (self.last or 0) + 2 * self.key.tf_ms


def backfill_start(watched: WatchedSeries, stored: bool, exchange_ms: int) -> int | None:
    """Where a series' sync starts: its ``since``; else, when nothing is stored, one day
    before the exchange's now; else None (resume from what is stored). Rounded up to an open
    time, so a ``since`` between two opens asks for nothing already there at every restart."""
    since = watched.since
    if since is None and not stored:
        since = exchange_ms - DAY_MS
    if since is None:
        return None
    tf = watched.key.tf_ms
    return -(-since // tf) * tf


def _quiet(*_: object) -> None:
    """Sync progress: the follower reports per round, not per page."""


class Follower:
    """Follows one exchange's planned series until stopped (``run``)."""

    def __init__(self, plan: ExchangePlan, store: CandleStore, fetch: FetchSettings,
                 live: LiveSettings, callbacks: Callbacks,
                 local: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self.store = store
        self.fetch = fetch
        self.live = live
        self.callbacks = callbacks
        self.clock = ExchangeClock(local)
        callbacks.on_clock(plan.exchange, self.clock)
        self._local = local
        self._keys = plan.keys
        """The series followed: the plan's, and its top markets once chosen."""
        self._retry = RetryPolicy(fetch.retries, fetch.backoff_s, fetch.backoff_max_s)
        self._next_nowcast = 0
        self._nowcast_after = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until ``stop`` is set. The work is cancelled then: the page being fetched
        is abandoned, the one being written finishes (each is one transaction)."""
        work = asyncio.ensure_future(self._follow())
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
            work.cancel()
            with suppress(asyncio.CancelledError):
                await work

    def _delay(self, failures: int) -> float:
        """Backoff after ``failures`` failures in a row, never beyond a sleep's cap."""
        return min(self._retry.delay(max(failures - 1, 0), None), self.live.max_sleep_s)

    def _fail_all(self, message: str) -> None:
        if not self._keys:  # top markets not chosen yet: no series to report it against
            log.warning("%s", message)
        for key in self._keys:
            _notify(self.callbacks.on_error, key, message)

    async def _expand(self, client: ExchangeClient) -> tuple[WatchedSeries, ...]:
        """The plan's series and its top markets on the exchange now (told, and logged with
        what was left out)."""
        if not self.plan.universes:
            return self.plan.series
        series, selections = await expand(self.plan, client)
        for selection in selections:
            log.info("%s", selection.describe())
        self._keys = [watched.key for watched in series]
        _notify(self.callbacks.on_expand, self.plan.exchange, list(self._keys))
        return series

    async def _follow(self) -> None:
        """Open the exchange, follow it; when it cannot be opened (down, unreachable), report
        every series and try again after a backoff, for ever."""
        failures = 0
        while True:
            try:
                async with ExchangeClient(self.plan.exchange, url=self.plan.url,
                                          timeout_ms=self.fetch.timeout_ms, retry=self._retry,
                                          rate_limit=self.fetch.rate_limit) as client:
                    failures = 0
                    await self._session(client)
            except (FetchFailed, VolcastError) as exc:  # each names the exchange
                failures += 1
                self._fail_all(str(exc))
            except Exception as exc:  # a service outlives a surprise: logged, then reopened
                log.exception("%s: follower failed", self.plan.exchange)
                failures += 1
                self._fail_all(f"{self.plan.exchange}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(self._delay(failures))

    async def _session(self, client: ExchangeClient) -> None:
        """Rounds on one open client: look at the exchange's clock, sync what is due, nowcast,
        sleep until the next close. A clock that cannot be read is the whole exchange down."""
        tracks = [_Track(watched) for watched in await self._expand(client)]
        failures = 0
        while True:
            try:
                exchange_ms = await client.server_time()
            except (FetchFailed, VolcastError) as exc:
                failures += 1
                self._fail_all(str(exc))
                await asyncio.sleep(self._delay(failures))
                continue
            failures = 0
            self.clock.observe(exchange_ms)
            due = [t for t in tracks if t.due(exchange_ms) and t.retry_at <= self._local()]
            await asyncio.gather(*(self._sync(client, track, exchange_ms) for track in due))
            await self._nowcast(client, tracks)
            await asyncio.sleep(self._sleep_s(tracks))

    def _sleep_s(self, tracks: Sequence[_Track]) -> float:
        """Until the next close of any series, the next retry, or the next nowcast; at most
        ``max_sleep_s``, and short while the clock's rate is still unknown."""
        now = self._local()
        waits = [self.live.max_sleep_s if self.clock.settled else RATE_SPAN_S / 4]
        for track in tracks:
            pending = track.retry_at > now and track.due(self.clock.now())
            waits.append(track.retry_at - now if pending
                         else self.clock.seconds_until(track.next_close()))
        if self._nowcasting():
            waits.append(max(self.clock.seconds_until(self._next_nowcast),
                             self._nowcast_after - now))
        return max(min(waits), 0.0)

    async def _sync(self, client: ExchangeClient, track: _Track, exchange_ms: int) -> None:
        """One series' sync: the backfill (all that is missing) until it once succeeds, then
        the tail (a backfilled series is stored); report, and schedule a retry when it failed
        or its candle is not out yet. The round's reading of the exchange's clock serves
        every series, rather than one more request each."""
        key = track.key
        result: SyncResult | None = None
        refused = False
        try:
            scope: Scope = "tail" if track.backfilled else "all"
            since = None
            if scope == "all":
                stored = await asyncio.to_thread(self.store.bounds, key) is not None
                since = backfill_start(track.watched, stored, exchange_ms)
            client.check(key.symbol, key.timeframe)
            result = await sync_series(client, self.store, key, since, None, _quiet, scope,
                                       now=exchange_ms)
            refused = result.skipped is not None or not client.active(key.symbol)
            error = result.error or result.skipped
            if refused and error is None:
                error = (f"{key}: {client.id} lists {key.symbol} as not trading (delisted?); "
                         "what it has is stored")
        except FetchFailed as exc:  # names the exchange and what failed
            error = str(exc)
        except VolcastError as exc:  # the exchange does not list it (any more): no retry mends
            error, refused = str(exc), True
        except Exception as exc:  # a service must outlive one series' surprise; logged
            log.exception("%s: sync failed", key)
            error = f"{key}: {type(exc).__name__}: {exc}"
        if refused:
            error = f"{error}; asked again in {REFUSED_RETRY_S / 60:g} min"
        if result is not None and result.added:
            self._report_delays(track, result.last)
            _notify(self.callbacks.on_candles, key, result.added, result.last)
        self._settle(track, result, error, exchange_ms, refused)

    def _report_delays(self, track: _Track, newest: int) -> None:
        """How late each candle after the previous newest one was stored; none for the
        backfill, whose candles closed before the follower looked."""
        if not track.backfilled or track.last is None:
            return
        tf = track.key.tf_ms
        for opened in range(track.last + tf, newest + 1, tf):
            _notify(self.callbacks.on_delay, track.key, self.clock.seconds_since(opened + tf))

    def _settle(self, track: _Track, result: SyncResult | None, error: str | None,
                exchange_ms: int, refused: bool = False) -> None:
        """After a sync: report it, and when it failed, or the exchange has not published the
        candle that closed yet, retry after a growing backoff (``refused``: after
        REFUSED_RETRY_S)."""
        if error is not None:
            _notify(self.callbacks.on_error, track.key, error)
        elif result is not None:
            track.backfilled, track.last = True, result.last
            _notify(self.callbacks.on_ok, track.key)
        if error is None and not track.due(exchange_ms):
            track.failures, track.retry_at = 0, 0.0
            return
        track.failures += 1
        track.retry_at = self._local() + (REFUSED_RETRY_S if refused
                                          else self._delay(track.failures))

    def _nowcasting(self) -> bool:
        return self.live.nowcast and self.callbacks.on_open is not None

    async def _nowcast(self, client: ExchangeClient, tracks: Sequence[_Track]) -> None:
        """Once a minute of the exchange's clock: each series' open candle so far. The time
        is the clock's estimate, since a long backfill may have made the round's sample old."""
        exchange_ms = self.clock.now()
        if not self._nowcasting() or exchange_ms < self._next_nowcast or \
                self._local() < self._nowcast_after:
            return
        self._next_nowcast = (exchange_ms // MINUTE_MS + 1) * MINUTE_MS
        self._nowcast_after = self._local() + NOWCAST_GAP_S
        await asyncio.gather(*(self._open_candle(client, track.key, exchange_ms)
                               for track in tracks if track.backfilled))

    async def _open_candle(self, client: ExchangeClient, key: SeriesKey,
                           exchange_ms: int) -> None:
        """The candle open at ``exchange_ms``: the last row of a page asked from its open
        time, when it is that candle (the exchange may not have it yet)."""
        open_ms = exchange_ms // key.tf_ms * key.tf_ms
        try:
            rows = await client.fetch_candles(key.symbol, key.timeframe, open_ms, 2)
        except (FetchFailed, VolcastError) as exc:
            log.warning("%s: no open candle for the nowcast: %s", key, exc)
            return
        if rows and int(rows[-1][0]) == open_ms:
            on_open = self.callbacks.on_open
            assert on_open is not None  # _nowcasting() checked it
            _notify(on_open, key, open_ms, float(rows[-1][5]), exchange_ms)


@dataclass
class _Running:
    plan: ExchangePlan
    stop: asyncio.Event
    task: asyncio.Task[None]


class Following:
    """The followers of a whole watch-list, one per exchange and URL, all on one event loop
    and one store. ``apply`` replaces the plan (a reload): followers of exchanges that left
    stop, new ones start, those whose series changed restart (their backfill then covers
    what was added), and so do those with top markets, which choose them again; stored
    candles are never deleted."""

    def __init__(self, store: CandleStore, fetch: FetchSettings, live: LiveSettings,
                 callbacks: Callbacks) -> None:
        self.store = store
        self.fetch = fetch
        self.live = live
        self.callbacks = callbacks
        self.plans: list[ExchangePlan] = []
        self._running: dict[tuple[str, str | None], _Running] = {}
        self._changing = asyncio.Lock()

    async def apply(self, plans: Sequence[ExchangePlan]) -> list[PlanChange]:
        """Follow ``plans`` from now on; returns what changed. Two reloads at once apply one
        after the other."""
        async with self._changing:
            changes = diff_plans(self.plans, plans)
            wanted = {plan.ident: plan for plan in plans}
            await self._stop([ident for ident, running in self._running.items()
                              if wanted.get(ident) != running.plan or running.plan.universes])
            for plan in plans:
                if plan.ident not in self._running:
                    self._start(plan)
            self.plans = list(plans)
            return changes

    async def close(self) -> None:
        """Stop every follower and wait for each to finish its page in flight."""
        async with self._changing:
            await self._stop(list(self._running))
            self.plans = []

    def _start(self, plan: ExchangePlan) -> None:
        stop = asyncio.Event()
        follower = Follower(plan, self.store, self.fetch, self.live, self.callbacks)
        task = asyncio.ensure_future(follower.run(stop))
        task.add_done_callback(_log_crash)
        self._running[plan.ident] = _Running(plan, stop, task)

    async def _stop(self, idents: Sequence[tuple[str, str | None]]) -> None:
        stopping = [self._running.pop(ident) for ident in idents]
        for running in stopping:
            running.stop.set()
        await asyncio.gather(*(running.task for running in stopping), return_exceptions=True)


def _log_crash(task: asyncio.Task[None]) -> None:
    """A follower ends only when stopped; anything else is a bug, said loudly."""
    if not task.cancelled() and task.exception() is not None:
        log.error("a follower crashed", exc_info=task.exception())


async def follow_all(plans: Sequence[ExchangePlan], store: CandleStore,
                     fetch_settings: FetchSettings, live_settings: LiveSettings,
                     callbacks: Callbacks, stop: asyncio.Event,
                     reloads: "asyncio.Queue[Sequence[ExchangePlan]] | None" = None) -> None:
    """Follow every exchange of ``plans`` concurrently until ``stop`` is set; each plan put
    on ``reloads`` replaces the followed one (``Following.apply``)."""
    following = Following(store, fetch_settings, live_settings, callbacks)
    await following.apply(plans)
    halt = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            if reloads is None:
                await halt
                break
            reload = asyncio.ensure_future(reloads.get())
            await asyncio.wait({reload, halt}, return_when=asyncio.FIRST_COMPLETED)
            if reload.done():
                await following.apply(reload.result())
            else:
                reload.cancel()
    finally:
        halt.cancel()
        await following.close()
