"""The live service: what `volcast serve --config` runs beside the dashboard.

One background thread runs an asyncio loop that follows the watch-list (``live.follower``: one
follower per exchange, each candle stored as it closes). Everything that follows from a new
candle runs on one worker thread, off that loop: the series' forecast is recomputed from the
newest candle, every alert rule is read (``live.alerts``), events are kept in the store
(``live.alert_log``) and posted to webhooks (``live.webhooks``), and the metrics are updated.
A tick re-reads the rules every few seconds even when no candle arrives, so that a stale
series is noticed. The web routes read the service's views (``live``, ``alerts``, ``rules``,
``health``); nothing here knows about HTTP.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from volcast.config import AlertRule, Settings, WatchSettings, duration_s, load_settings
from volcast.data.store import SeriesKey
from volcast.data.timeframe import DAY_MS
from volcast.data.totals import Settled
from volcast.errors import NotFound, VolcastError
from volcast.live.alert_log import AlertLog
from volcast.live.alerts import Evaluator, Event, Outlook, Snapshot, check_rule, measure, scope
from volcast.live.alerts import total as total_of
from volcast.live.follower import Callbacks, ExchangeClock, follow_all
from volcast.live.metrics import Metrics
from volcast.live.nowcast import Nowcaster
from volcast.live.watch import ExchangePlan, watch_plan
from volcast.live.webhooks import Notifier, Outcome
from volcast.workspace import Workspace, totals
from volcast.workspace.sources import series_id
from volcast.workspace.units import Unit

log = logging.getLogger(__name__)
TICK_S = 2.0
"""Seconds between two readings of every rule when no candle arrives (stale data)."""
STALE_CANDLES = 2
"""A series is stale (``/health``, the dashboard) when its newest candle closed longer ago
than this many candle lengths."""
FALLBACK_MODEL = "mstl"
"""Serves forecasts until the ``[train]`` model has been trained for a series: it needs no
training and gives q10/q90."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Watched:
    """What the service knows of one watched series between two candles."""

    key: SeriesKey
    newest: int | None = None
    """Open time of the newest stored candle."""
    error: str | None = None
    failing_since_ms: int | None = None
    nowcast: dict[str, float] | None = None
    forecasts: dict[Unit, pd.DataFrame] = field(default_factory=dict)
    """The latest forecast per unit, from ``newest``."""
    earlier: dict[Unit, pd.DataFrame] = field(default_factory=dict)
    """The forecast before it: it covers ``newest``, which ``above_forecast`` compares."""


class Service:
    """Follows the watch-list of ``space.settings`` and keeps forecasts, nowcasts, alerts and
    metrics up to date; ``config`` is re-read on ``reload``."""

    def __init__(self, space: Workspace, config: Path | None = None,
                 metrics: Metrics | None = None, nowcaster: Nowcaster | None = None) -> None:
        self.space, self.config = space, config
        self.metrics = metrics or Metrics(lambda exchange: self.exchange_now(exchange) / 1000)
        self.nowcaster = nowcaster or Nowcaster.default()
        self.log = AlertLog(space.store)
        self.evaluator = Evaluator()
        self.notifier = Notifier(self._delivered)
        self._lock = threading.RLock()
        self._watched: dict[str, Watched] = {}
        self._rules: dict[str, tuple[AlertRule, str]] = {}
        self._work = ThreadPoolExecutor(1, thread_name_prefix="volcast-live")
        self._pending: dict[str, Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._reloads: asyncio.Queue[list[ExchangePlan]] | None = None
        self._thread: threading.Thread | None = None
        self._clocks: dict[str, ExchangeClock] = {}
        self._totals: dict[SeriesKey, Settled] = {}  # what each total's last build saw
        self.trainings: list[dict[str, Any]] = []
        """The latest scheduled retraining's outcome per timeframe."""
        self.on_series: Callable[[], None] | None = None
        """Called on the worker thread when a watched series has its first candles of this
        run: the app recounts the store's series then (``/health`` answers from memory)."""
        self._apply(space.settings)
        self.evaluator.restore(self.log.open_episodes())
        for rule, target in self.evaluator.open_targets():
            self.metrics.alert_state(rule, target, True)
        for event in self.log.pending():  # cut short by the last stop: delivered at least once
            self._deliver(event)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def watching(self) -> bool:
        return bool(self._watched)

    def start(self) -> None:
        """Follow the watch-list from a background thread until ``stop``."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="volcast-follow",
                                        daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop following (a page in flight is finished or rolled back: each is one
        transaction), let the worker finish, and give pending webhooks ``timeout``."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._work.shutdown(wait=True, cancel_futures=True)
        self.notifier.close(timeout)

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._stop, self._reloads = asyncio.Event(), asyncio.Queue()
        ready.set()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        callbacks = Callbacks(on_candles=self._on_candles, on_error=self._on_error,
                              on_ok=self._on_ok, on_open=self._on_open,
                              on_delay=self.metrics.candle_delay,
                              on_clock=self._clocks.__setitem__, on_expand=self._on_expand)
        assert self._stop is not None and self._reloads is not None
        loops = [asyncio.ensure_future(self._tick()), asyncio.ensure_future(self._schedule())]
        settings = self.space.settings
        try:
            await follow_all(watch_plan(settings.watch), self.space.store, settings.fetch,
                             settings.live, callbacks, self._stop, self._reloads)
        finally:
            for loop in loops:
                loop.cancel()

    async def _tick(self) -> None:
        while True:
            self._submit("*", self.evaluate)
            await asyncio.sleep(TICK_S)

    async def _schedule(self) -> None:
        """``[train] every``: one global model per watched timeframe, on a thread of its own
        (hours of training must not hold up forecasts)."""
        while True:
            every = self.space.settings.train.every
            await asyncio.sleep(duration_s(every) if every else TICK_S)
            if every and self._watched:
                await asyncio.to_thread(self.retrain)

    def retrain(self) -> list[dict[str, Any]]:
        """Retrain the ``[train]`` model per watched timeframe; the candidate serves only when
        its validation MAE is no worse (``Workspace.retrain``). Each outcome is kept for
        ``health`` and timed in the metrics."""
        schedule = self.space.settings.train
        with self._lock:
            keys = [state.key for state in self._watched.values()]
        outcomes = []
        for timeframe in sorted({key.timeframe for key in keys}):
            started = time.monotonic()
            members = [key for key in keys if key.timeframe == timeframe]
            try:
                promotion = self.space.retrain(members, schedule.model, schedule.validation_days)
                outcome = {"timeframe": timeframe, **asdict(promotion),
                           "validation": promotion.validation.model_dump()}
            except VolcastError as error:
                outcome = {"timeframe": timeframe, "model": schedule.model, "error": str(error)}
            self.metrics.job_finished("retrain", time.monotonic() - started,
                                      "error" not in outcome)
            outcome["at_ms"] = now_ms()
            outcomes.append(outcome)
        self.trainings = outcomes
        for key in keys:
            self._submit(series_id(key), lambda key=key: self.refresh(key))
        return outcomes

    def _submit(self, slot: str, work: Callable[[], None]) -> None:
        """Run ``work`` on the worker thread unless the same slot is already waiting there
        (a burst of candles costs one refresh, not a queue of them)."""
        with self._lock:
            queued = self._pending.get(slot)
            if queued is not None and not queued.running() and not queued.done():
                return
            with suppress(RuntimeError):  # shut down: the service is stopping
                self._pending[slot] = self._work.submit(self._guarded, work)

    @staticmethod
    def _guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as error:  # the service outlives one bad reading (a series too
            # short for its model, say); one line per failure, not a traceback per refresh
            log.warning("live service: %s failed: %s: %s", getattr(work, "__name__", "work"),
                        type(error).__name__, error)

    # -- watch-list and rules ---------------------------------------------------------------
    def _apply(self, settings: Settings) -> None:
        """Take a watch-list and rules (from the config, plus those made through the API);
        one line naming the first bad one, changing nothing."""
        keys = [key for entry in watch_plan(settings.watch) for key in entry.keys]
        ids = {series_id(k) for k in keys}
        rules = {rule.name: (check_rule(rule, ids), "config") for rule in settings.alert}
        for rule in self.log.rules():
            if rule.name in rules:
                raise VolcastError(f"alert '{rule.name}' is in the config and was also made "
                                   "through the API; delete one of them")
            try:
                rules[rule.name] = (check_rule(rule, ids), "api")
            except VolcastError as error:  # made for an earlier watch-list: the service
                log.warning("%s: that rule, made through the API, is kept in the store and "
                            "applied again once its series are watched", error)  # still starts
        with self._lock:
            gone = {n: r for n, (r, _) in self._rules.items() if n not in rules or rules[n][0] != r}
            for name in set(self._watched) - ids:
                self.metrics.forget(self._watched[name].key)
            self._watched = {i: self._watched.get(i) or Watched(k)
                             for i, k in zip([series_id(k) for k in keys], keys, strict=True)}
            self._rules = rules
            self.space.settings = settings
        for rule in gone.values():
            self._record(self.evaluator.forget(rule, now_ms(), "the rule was changed or removed"))
            self.metrics.forget_rule(rule.name)

    def reload(self) -> None:
        """Re-read the config file (SIGHUP, or POST /api/watch/reload): watch-list and rules.
        Stored candles are never deleted; followers of changed exchanges restart."""
        self._apply(load_settings(self.config) if self.config else self.space.settings)
        self._wake()

    def set_watchlist(self, entries: list[WatchSettings]) -> list[dict[str, Any]]:
        """Replace the watch-list (through the API; the config file is not rewritten: a
        reload goes back to it)."""
        self._apply(self.space.settings.model_copy(update={"watch": entries}))
        self._wake()
        return self.watchlist()

    def _wake(self) -> None:
        """Hand the new watch-list to the followers (they keep what did not change)."""
        if self._loop is not None and self._reloads is not None:
            plans = watch_plan(self.space.settings.watch)
            self._loop.call_soon_threadsafe(self._reloads.put_nowait, plans)

    def watchlist(self) -> list[dict[str, Any]]:
        return [entry.model_dump() for entry in self.space.settings.watch]

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.model_dump() | {"source": source}
                    for rule, source in self._rules.values()]

    def add_rule(self, rule: AlertRule) -> dict[str, Any]:
        with self._lock:
            if rule.name in self._rules:
                raise VolcastError(f"alert '{rule.name}' exists; delete it first or choose "
                                   "another name")
            check_rule(rule, set(self._watched))
            self.log.save_rule(rule)
            self._rules[rule.name] = (rule, "api")
        self._submit("*", self.evaluate)
        return rule.model_dump() | {"source": "api"}

    def delete_rule(self, name: str) -> dict[str, Any]:
        with self._lock:
            held = self._rules.get(name)
            if held is None:
                raise NotFound(f"no alert rule named '{name}'")
            if held[1] == "config":
                raise VolcastError(f"alert '{name}' comes from the config file; remove it there "
                                   "and reload")
            self.log.delete_rule(name)
            del self._rules[name]
        self._record(self.evaluator.forget(held[0], now_ms()))
        self.metrics.forget_rule(name)
        return {"deleted": name}

    # -- what the followers report ----------------------------------------------------------
    def exchange_now(self, exchange: str) -> int:
        """The exchange's time (its follower's estimate; ours before it has one): a series'
        age is measured on its exchange's clock, which a simulator may run faster."""
        clock = self._clocks.get(exchange)
        return clock.now() if clock is not None else now_ms()

    def _age_ms(self, key: SeriesKey, newest: int) -> int:
        """How long ago, on the exchange's clock, the newest candle closed."""
        return self.exchange_now(key.exchange) - newest - key.tf_ms

    def _state(self, key: SeriesKey) -> Watched | None:
        return self._watched.get(series_id(key))

    def _on_candles(self, key: SeriesKey, added: int, newest: int) -> None:
        state = self._state(key)
        if state is None:
            return
        if state.newest is None and self.on_series is not None:
            self._submit("on_series", self.on_series)
        state.newest = max(newest, state.newest or newest)
        self.metrics.candle_stored(key, newest, added)
        self._submit(series_id(key), lambda: self.refresh(key))
        self._submit(f"totals:{key.exchange}:{key.timeframe}",
                     lambda: self.follow_totals(key.exchange, key.timeframe))

    def follow_totals(self, exchange: str, timeframe: str) -> None:
        """The exchange's stored totals (``*/USDT``, made by `volcast totals build`) take in
        its markets' new candles (``workspace.totals.follow``), so the dashboard and every
        command read a current total."""
        totals.follow(self.space, exchange, timeframe, self._totals)


    def _on_expand(self, exchange: str, keys: list[SeriesKey]) -> None:
        """A follower chose its top markets: they are watched series from now on (/health,
        /live, metrics), until a reload rebuilds the list from the config and the follower
        chooses again."""
        with self._lock:
            for key in keys:
                self._watched.setdefault(series_id(key), Watched(key))

    def _on_error(self, key: SeriesKey, message: str) -> None:
        state = self._state(key)
        if state is None:
            return
        state.error = message
        state.failing_since_ms = state.failing_since_ms or now_ms()
        self.metrics.fetch_error(key)

    def _on_ok(self, key: SeriesKey) -> None:
        state = self._state(key)
        if state is not None:
            state.error, state.failing_since_ms = None, None

    def _on_open(self, key: SeriesKey, open_ms: int, so_far: float, exchange_now: int) -> None:
        state = self._state(key)
        if state is None:
            return
        elapsed = min(1.0, max(0.0, (exchange_now - open_ms) / key.tf_ms))
        frame = state.forecasts.get("base")
        prior = None
        if frame is not None:
            row = frame[frame["ds"] == open_ms]
            prior = max(0.0, float(row["q50"].iloc[0])) if len(row) else None
        state.nowcast = {"open": open_ms, "elapsed": elapsed, "so_far": so_far,
                         **self.nowcaster.nowcast(so_far, elapsed, prior, open_ms)}

    # -- forecasts and readings (worker thread) ---------------------------------------------
    def serving_model(self, key: SeriesKey) -> str:
        """The ``[train]`` model once trained for the series, else FALLBACK_MODEL."""
        trained = self.space.settings.train.model
        return trained if self.space.layout.version(key, trained) is not None else FALLBACK_MODEL

    def steps(self, key: SeriesKey, model: str) -> int:
        """A day of candles, or the longest horizon a rule reads, within the model's reach."""
        with self._lock:
            wanted = max([DAY_MS // key.tf_ms, 1, *(r.horizon for r, _ in self._rules.values())])
        reach = self.space.forecaster(key, model).max_horizon(key.tf_ms)
        return wanted if reach is None else min(wanted, reach)

    def forecast(self, key: SeriesKey, unit: Unit) -> pd.DataFrame:
        """The series' forecast from its newest candle (the workspace caches it per candle and
        model version); the one it replaces is kept for ``above_forecast``."""
        model = self.serving_model(key)
        _, frame = self.space.forecast(key, model, self.steps(key, model), unit)
        state = self._state(key)
        if state is not None:
            held = state.forecasts.get(unit)
            if held is not None and int(held["ds"].iloc[0]) != int(frame["ds"].iloc[0]):
                state.earlier[unit] = held
            state.forecasts[unit] = frame.assign(model=model)
        return frame

    def refresh(self, key: SeriesKey) -> None:
        """After a close: the new forecast, its metrics, and every rule read again."""
        frame = self.forecast(key, "base")
        day = frame.head(max(1, DAY_MS // key.tf_ms))
        self.metrics.forecast(key, float(frame["q50"].iloc[0]),
                              float(frame["q90"].iloc[0]), float(day["q50"].sum()),
                              float(day["q90"].sum()), self.space.unit_name(key))
        self.evaluate()

    def snapshot(self, state: Watched) -> Snapshot:
        key = state.key

        def outlook(unit: Unit) -> Outlook:
            try:
                frame = self.forecast(key, unit)
            except VolcastError:
                return Outlook()
            earlier = state.earlier.get(unit)
            expected = None
            if earlier is not None and state.newest is not None:
                row = earlier[earlier["ds"] == state.newest]
                expected = float(row["q90"].iloc[0]) if len(row) else None
            return Outlook(frame, self._volume(key, state.newest, unit), expected)

        return Snapshot(self.exchange_now(key.exchange), key.tf_ms, state.newest, outlook,
                        state.failing_since_ms)

    def _volume(self, key: SeriesKey, opened: int | None, unit: Unit) -> float | None:
        if opened is None:
            return None
        row = self.space.long([key], unit, start=opened).head(1)  # one candle, not the series
        return float(row["y"].iloc[0]) if len(row) and row["ds"].iloc[0] == opened else None

    def evaluate(self) -> None:
        """Read every rule once; record and deliver what fires or resolves."""
        with self._lock:
            rules = [rule for rule, _ in self._rules.values()]
            watched = dict(self._watched)
        snapshots: dict[str, Snapshot] = {}
        events = []
        for rule in rules:
            covered = scope(rule, set(watched))
            members = [snapshots.get(m) or snapshots.setdefault(m, self.snapshot(watched[m]))
                       for m in covered.members]
            snap = total_of(members) if covered.total else members[0]
            event = self.evaluator.observe(rule, covered.target, measure(rule, snap), now_ms())
            if event is not None:
                events.append(event)
        self._record(events)

    def _record(self, events: list[Event]) -> None:
        """Keep each event in the store, then hand it to its rule's webhook."""
        for event in events:
            self.metrics.alert_state(event.rule, event.target, event.state == "firing")
            self._deliver(replace(event, id=self.log.record(event)))

    def _deliver(self, event: Event) -> None:
        held = self._rules.get(event.rule)
        if held is not None and held[0].webhook:
            self.notifier.submit(event, held[0])

    def _delivered(self, event: Event, outcome: Outcome) -> None:
        assert event.id is not None
        self.log.mark_delivered(event.id, outcome.attempts, outcome.error, outcome.at_ms)

    # -- views (web routes) -----------------------------------------------------------------
    def live(self, unit: Unit = "base", hours: float | None = None) -> dict[str, Any]:
        """Every watched series: recent candles, forecast, nowcast, thresholds, firing rules."""
        with self._lock:
            watched = list(self._watched.values())
            rules = [rule for rule, _ in self._rules.values()]
        firing = self.evaluator.open_targets()
        return {"now": now_ms(), "watching": bool(watched),
                "series": [self._card(state, unit, hours, rules, firing) for state in watched]}

    def _card(self, state: Watched, unit: Unit, hours: float | None, rules: list[AlertRule],
              firing: dict[tuple[str, str], Event]) -> dict[str, Any]:
        key, ident = state.key, series_id(state.key)
        candles = int((hours or 0) * 3_600_000 // key.tf_ms) or \
            self.space.settings.live.history_candles
        card: dict[str, Any] = {
            "id": ident, "exchange": key.exchange, "symbol": key.symbol,
            "timeframe": key.timeframe, "unit": None, "last_candle": state.newest,
            "age_s": None, "stale": False, "error": state.error, "model": None,
            "history": {"ds": [], "y": []}, "forecast": None, "nowcast": None,
            "thresholds": [{"rule": r.name, "kind": r.kind,
                            "value": r.level if r.kind == "exceed_probability" else r.threshold}
                           for r in rules if r.kind in ("q90_above", "exceed_probability")
                           and r.unit == unit and r.aggregate == "max"
                           and r.series in (ident, key.exchange)],
            "firing": sorted(name for (name, target) in firing
                             if target in (ident, f"{key.exchange}:{key.timeframe}"))}
        bounds = self.space.store.bounds(key)
        if bounds is None:
            return card
        state.newest = max(bounds[1], state.newest or bounds[1])
        age = self._age_ms(key, bounds[1])
        long = self.space.long([key], unit, start=bounds[1] - (candles - 1) * key.tf_ms)
        card |= {"unit": self.space.unit_name(key, unit), "last_candle": bounds[1],
                 "age_s": round(age / 1000, 1), "stale": age > STALE_CANDLES * key.tf_ms,
                 "history": {"ds": long["ds"].tolist(), "y": long["y"].tolist()}}
        try:
            frame = self.forecast(key, unit)
            card |= {"model": self.serving_model(key),
                     "forecast": {c: frame[c].tolist() for c in ("ds", "q10", "q50", "q90")}}
        except VolcastError as error:
            card["note"] = str(error)
        if state.nowcast is not None and unit == "base":
            card["nowcast"] = state.nowcast
        return card

    def alerts(self, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        return [event.as_dict() for event in self.log.events(open_only, limit)]

    def acknowledge(self, event_id: int) -> dict[str, Any]:
        return self.log.acknowledge(event_id).as_dict()

    def health(self) -> dict[str, Any]:
        """Which watched series are stale (no candle for two candle lengths) or failing, and
        why each failing one fails (``errors``: its latest message, e.g. a delisted market)."""
        with self._lock:
            watched = list(self._watched.values())
        stale, failing, errors = [], [], {}
        for state in watched:
            key = state.key
            if state.newest is None or \
                    self._age_ms(key, state.newest) > STALE_CANDLES * key.tf_ms:
                stale.append(series_id(key))
            if state.error:
                failing.append(series_id(key))
                errors[series_id(key)] = state.error
        return {"watching": len(watched), "stale": stale, "failing": failing, "errors": errors,
                "trainings": self.trainings}

