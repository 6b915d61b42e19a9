"""Alert rules: which series a rule watches, what it reads from them, and when it fires.

Three steps, kept apart so that each can be tested on its own and the service only glues them:
``scope`` turns a rule into the series it covers (one series, or an exchange's total);
``measure`` turns what the service knows of that target (a ``Snapshot``) into a ``Reading``;
``Evaluator.observe`` turns a stream of readings into firing and resolved ``Event``s, with the
rule's debounce, once per episode. Events are kept by ``volcast.live.alert_log`` and POSTed by
``volcast.live.webhooks``.

Target names: a series is ``exchange:symbol:timeframe`` (``binance:BTC/USDT:1h``, or
``binance:BTC/USDT:USDT:1h`` for a perpetual); an exchange total is ``exchange:timeframe``
(``binance:1h``), the rule's exchange id with the timeframe it totals.
"""

import math
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Literal

import pandas as pd

from volcast.config import AlertRule
from volcast.data.store import SeriesKey, units_of
from volcast.data.timeframe import format_time, timeframe_ms
from volcast.errors import VolcastError
from volcast.workspace.sources import key_of, series_id
from volcast.workspace.units import Unit

_EXCHANGE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
Z90 = NormalDist().inv_cdf(0.9)
"""The standard normal's 90% quantile (1.2816): q10 and q90 lie Z90 sigmas either side of the
median of a normal, so of the log of a log-normal."""
State = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Scope:
    """What a rule covers: the target named in its events, its timeframe, the series whose
    snapshots make its reading, and whether that reading is their ``total``."""

    target: str
    timeframe: str
    members: tuple[str, ...]
    total: bool


def _bad_series(rule: AlertRule) -> VolcastError:
    return VolcastError(f"alert '{rule.name}': series '{rule.series}' must be "
                        "exchange:symbol:timeframe (binance:BTC/USDT:1h) or an exchange id")


def _series_key(rule: AlertRule) -> SeriesKey | None:
    """The series a per-series rule names, checked as user input; None for an exchange id."""
    if ":" not in rule.series:
        if not _EXCHANGE.match(rule.series):
            raise _bad_series(rule)
        return None
    key = key_of(rule.series)
    if key is None or not _EXCHANGE.match(key.exchange):
        raise _bad_series(rule)
    try:
        key = SeriesKey.parse(key.exchange, key.symbol, key.timeframe)
    except VolcastError as exc:
        raise VolcastError(f"alert '{rule.name}': {exc}") from None
    if rule.timeframe not in (None, key.timeframe):
        raise VolcastError(f"alert '{rule.name}': timeframe is for exchange totals; the "
                           f"series '{rule.series}' is {key.timeframe}")
    return key


def _check_kind(rule: AlertRule) -> None:
    """The settings each kind needs, and none that another kind owns."""
    name, kind = rule.name, rule.kind
    if kind == "exceed_probability":
        if rule.level is None or rule.level <= 0:
            raise VolcastError(f"alert '{name}': exceed_probability needs a volume level > 0 "
                               f"(got level = {rule.level})")
        if not 0 < rule.threshold < 1:
            raise VolcastError(f"alert '{name}': exceed_probability's threshold is a "
                               f"probability strictly between 0 and 1 (got {rule.threshold})")
    elif rule.level is not None:
        raise VolcastError(f"alert '{name}': level is for exceed_probability, not {kind}")
    if kind != "exceed_probability" and rule.threshold <= 0:
        raise VolcastError(f"alert '{name}': {kind} needs a threshold > 0 "
                           f"(got {rule.threshold})")
    if kind != "stale" and rule.error_minutes is not None:
        raise VolcastError(f"alert '{name}': error_minutes is for stale, not {kind}")
    if rule.timeframe is not None:
        try:
            timeframe_ms(rule.timeframe)
        except VolcastError as exc:
            raise VolcastError(f"alert '{name}': {exc}") from None


def check_rule(rule: AlertRule, watched: Collection[str] | None = None) -> AlertRule:
    """The rule if it can be evaluated, else one line naming it and the bad setting. With
    ``watched`` (the watch-list's series, ``exchange:symbol:timeframe``) it must also cover
    watched series (``scope``); without, only the rule itself is checked (a rule saved before
    its series is watched)."""
    if watched is None:
        _check_kind(rule)
        _series_key(rule)
    else:
        scope(rule, watched)
    return rule


def scope(rule: AlertRule, watched: Collection[str]) -> Scope:
    """The target and member series of a rule over the watch-list's series: a series rule
    needs its series watched; an exchange total covers the exchange's watched series of its
    timeframe, which it must name when the exchange watches several."""
    _check_kind(rule)
    key = _series_key(rule)
    if key is not None:
        target = series_id(key)
        if target not in watched:
            raise VolcastError(f"alert '{rule.name}': series '{target}' is not in the "
                               "watch-list")
        return Scope(target, key.timeframe, (target,), total=False)
    keys = [k for k in map(key_of, sorted(watched)) if k and k.exchange == rule.series]
    timeframes = sorted({k.timeframe for k in keys})
    if not keys:
        raise VolcastError(f"alert '{rule.name}': exchange '{rule.series}' has no watched "
                           "series")
    timeframe = rule.timeframe or (timeframes[0] if len(timeframes) == 1 else None)
    if timeframe is None:
        raise VolcastError(f"alert '{rule.name}': exchange '{rule.series}' watches "
                           f"{', '.join(timeframes)}; say which with timeframe")
    chosen = [k for k in keys if k.timeframe == timeframe]
    if not chosen:
        raise VolcastError(f"alert '{rule.name}': exchange '{rule.series}' watches no "
                           f"{timeframe} series")
    bases = sorted({units_of(k.symbol)[0] for k in chosen})
    if rule.kind != "stale" and rule.unit == "base" and len(bases) > 1:
        raise VolcastError(f"alert '{rule.name}': the total of '{rule.series}' would add up "
                           f"volumes in {', '.join(bases)}; set unit = \"quote\"")
    members = tuple(series_id(k) for k in chosen)
    return Scope(f"{rule.series}:{timeframe}", timeframe, members, total=True)


@dataclass(frozen=True)
class Outlook:
    """What is known of a target in one unit: the forecast of the next candles from the newest
    stored one (columns ds, q10, q50, q90, optionally ``unit`` naming the currency), the newest
    closed candle's volume, and the q90 that was forecast for that candle before it opened."""

    forecast: pd.DataFrame | None = None
    volume: float | None = None
    expected_q90: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the service knows of one target when it reads it. ``outlooks`` maps a unit
    (base, quote) to its ``Outlook``: a mapping, or a function so that a unit no rule asks for
    is never computed. ``failing_since_ms``: since when fetches of the target have failed
    (None while they succeed)."""

    now_ms: int
    tf_ms: int
    newest_ms: int | None
    outlooks: Mapping[str, Outlook] | Callable[[Unit], Outlook]
    failing_since_ms: int | None = None

    def outlook(self, unit: Unit) -> Outlook:
        if callable(self.outlooks):
            return self.outlooks(unit)
        return self.outlooks.get(unit, Outlook())


def total(snapshots: Iterable[Snapshot]) -> Snapshot:
    """An exchange total from its members' snapshots, read as the sum of their volumes.

    The forecast's quantiles are summed per ds over the candles every member forecasts; a sum
    of q90s is a conservative q90 of the sum (it is one only if the members' volumes move
    together, else the true q90 of the sum is lower), which is the right side to err on for
    capacity; the q10s likewise err low, so a total's spread is on the wide side. The newest
    candle is the oldest of the members' newest (the total is complete only up to there);
    realised volume is summed only while every member's newest candle is the same one. Its
    fetches have failed since the earliest member's started failing."""
    members = list(snapshots)
    if not members:
        raise VolcastError("an exchange total needs at least one series")
    if len({s.tf_ms for s in members}) > 1:
        raise VolcastError("an exchange total sums series of one timeframe")
    newest = [s.newest_ms for s in members]
    failing = [s.failing_since_ms for s in members if s.failing_since_ms is not None]
    aligned = None not in newest and len(set(newest)) == 1

    def outlook(unit: Unit) -> Outlook:
        parts = [s.outlook(unit) for s in members]
        return Outlook(_summed([p.forecast for p in parts]),
                       _sum([p.volume for p in parts]) if aligned else None,
                       _sum([p.expected_q90 for p in parts]) if aligned else None)

    return Snapshot(max(s.now_ms for s in members), members[0].tf_ms,
                    None if None in newest else min(newest), outlook,
                    min(failing) if failing else None)


def _sum(values: list[float | None]) -> float | None:
    return None if None in values else float(sum(values))  # type: ignore[arg-type]


def _summed(frames: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    """Quantiles summed per ds over the ds every frame has; None when a member has none."""
    if any(f is None or f.empty for f in frames):
        return None
    columns = ["q10", "q50", "q90"]
    common = set.intersection(*(set(f["ds"]) for f in frames))  # type: ignore[index]
    stacked = pd.concat([f.loc[f["ds"].isin(common), ["ds", *columns]]  # type: ignore[union-attr]
                         for f in frames])
    summed = stacked.groupby("ds", as_index=False)[columns].sum().sort_values("ds")
    units = {u for f in frames if "unit" in f for u in f["unit"]}  # type: ignore[operator]
    return summed.assign(unit=units.pop()) if len(units) == 1 else summed


@dataclass(frozen=True)
class Reading:
    """One look at a target through a rule. ``value`` is None when there is nothing to
    measure yet; ``message`` says what was seen, or why nothing was."""

    value: float | None
    breached: bool
    message: str


def measure(rule: AlertRule, snapshot: Snapshot) -> Reading:
    """The rule's figure on the snapshot and whether it breaches (rule checked by
    ``check_rule``). Missing data is never a breach."""
    if rule.kind == "stale":
        return _stale(rule, snapshot)
    outlook = snapshot.outlook(rule.unit)
    if rule.kind == "above_forecast":
        return _above_forecast(rule, outlook)
    frame = outlook.forecast
    if frame is None or frame.empty:
        return Reading(None, False, "no forecast yet")
    ahead = frame.sort_values("ds").head(rule.horizon)
    if rule.kind == "q90_above":
        return _q90_above(rule, ahead)
    return _exceed_probability(rule, ahead)


def _unit_name(frame: pd.DataFrame, unit: Unit) -> str:
    """The currency the frame says it counts in, else the rule's unit."""
    return str(frame["unit"].iloc[0]) if "unit" in frame else unit


def _q90_above(rule: AlertRule, ahead: pd.DataFrame) -> Reading:
    value = float(ahead["q90"].max() if rule.aggregate == "max" else ahead["q90"].sum())
    what = "highest q90" if rule.aggregate == "max" else "q90 of the total"
    return Reading(value, value > rule.threshold,
                   f"{what} of the next {len(ahead)} candles is {value:,.6g} "
                   f"{_unit_name(ahead, rule.unit)} (threshold {rule.threshold:,.6g})")


def exceed_chance(q10: float, q50: float, q90: float, level: float) -> float | None:
    """P(volume > level) under the log-normal through the three quantiles: mu = ln q50,
    sigma = (ln q90 - ln q10) / (2 x Z90). Crossed quantiles are put in order first; a q10 at
    or below zero (a model may clip it there) leaves sigma to the upper half,
    (ln q90 - ln q50) / Z90. None when q50 is not positive: no log-normal fits."""
    low, mid, high = sorted((q10, q50, q90))
    if mid <= 0:
        return None
    mu = math.log(mid)
    sigma = ((math.log(high) - math.log(low)) / (2 * Z90) if low > 0
             else (math.log(high) - mu) / Z90)
    if sigma == 0:
        return 1.0 if level < mid else 0.0
    return 1.0 - NormalDist(mu, sigma).cdf(math.log(level))


def _exceed_probability(rule: AlertRule, ahead: pd.DataFrame) -> Reading:
    """The chance that any of the next candles exceeds the level: 1 - prod(1 - p_i), the
    candles taken as independent. Volumes of neighbouring candles move together, which makes
    the true chance lower, so the reading errs towards alerting."""
    level = float(rule.level)  # type: ignore[arg-type]
    chances = [exceed_chance(a, b, c, level)
               for a, b, c in ahead[["q10", "q50", "q90"]].itertuples(index=False)]
    if None in chances:
        return Reading(None, False, "the forecast's q50 is not positive: no log-normal fits")
    value = 1.0 - math.prod(1.0 - p for p in chances)  # type: ignore[operator]
    return Reading(value, value > rule.threshold,
                   f"chance that volume exceeds {level:,.6g} {_unit_name(ahead, rule.unit)} "
                   f"in the next {len(ahead)} candles is {value:.1%} "
                   f"(threshold {rule.threshold:.1%})")


def _above_forecast(rule: AlertRule, outlook: Outlook) -> Reading:
    volume, expected = outlook.volume, outlook.expected_q90
    if volume is None or expected is None:
        return Reading(None, False, "no forecast was made for the newest closed candle")
    if expected <= 0:
        return Reading(None, False, "the q90 forecast for the newest closed candle was not "
                       "positive")
    value = volume / expected
    return Reading(value, value > rule.threshold,
                   f"the newest closed candle's volume {volume:,.6g} is {value:.2f} x its q90 "
                   f"forecast {expected:,.6g} (threshold {rule.threshold:g} x)")


def _stale(rule: AlertRule, snap: Snapshot) -> Reading:
    """Age: time since the newest stored candle closed (when it became fetchable), in candle
    lengths. Failing fetches breach on their own after ``error_minutes``."""
    notes, breached, value = [], False, None
    if snap.newest_ms is None:
        notes.append("no candle stored yet")
    else:
        value = (snap.now_ms - snap.newest_ms - snap.tf_ms) / snap.tf_ms
        breached = value > rule.threshold
        notes.append(f"newest candle {format_time(snap.newest_ms)} closed {max(value, 0):.2f} "
                     f"candle lengths ago (threshold {rule.threshold:g})")
    if snap.failing_since_ms is not None:
        minutes = (snap.now_ms - snap.failing_since_ms) / 60_000
        failed = rule.error_minutes is not None and minutes >= rule.error_minutes
        breached = breached or failed
        limit = f" (threshold {rule.error_minutes:g})" if rule.error_minutes else ""
        notes.append(f"fetches failing for {minutes:.1f} minutes{limit}")
    return Reading(value, breached, "; ".join(notes))


@dataclass(frozen=True)
class Event:
    """A firing or a resolution, as recorded in the log and delivered to webhooks. ``episode``
    links a resolution to its firing; the fields after it are the log's."""

    rule: str
    target: str
    kind: str
    state: State
    value: float | None
    threshold: float
    message: str
    at_ms: int
    episode: str
    id: int | None = None
    acked_at_ms: int | None = None
    delivered_at_ms: int | None = None
    attempts: int = 0
    delivery_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON a webhook receives and the API shows (``at``: the time, UTC, as text)."""
        return {**asdict(self), "at": format_time(self.at_ms)}


@dataclass
class _Track:
    """One (rule, target)'s run of readings: consecutive breaches and clears, and the firing
    of the open episode."""

    breaches: int = 0
    clears: int = 0
    open: Event | None = None


@dataclass
class Evaluator:
    """Readings -> events. A rule fires after ``debounce`` consecutive breaching readings,
    once per episode, and resolves after ``resolve_after`` consecutive clear ones. A reading
    without a value breaks a run of breaches but is no evidence of a clear: an open episode
    waits for real clear readings (missing data has its own rule, ``stale``). Not thread-safe:
    one service loop owns it."""

    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)

    def restore(self, open_firings: Iterable[Event]) -> None:
        """Take up the log's open episodes after a restart: they do not fire again, and clear
        readings resolve them."""
        for event in open_firings:
            self._tracks[(event.rule, event.target)] = _Track(open=event)

    def observe(self, rule: AlertRule, target: str, reading: Reading,
                at_ms: int) -> Event | None:
        """The event this reading causes, if any, to be recorded and delivered."""
        track = self._tracks.setdefault((rule.name, target), _Track())
        if reading.breached:
            track.breaches, track.clears = track.breaches + 1, 0
        elif reading.value is None:
            track.breaches = 0
        else:
            track.breaches, track.clears = 0, track.clears + 1
        if track.open is None and track.breaches >= rule.debounce:
            track.open = _event(rule, target, "firing", reading, at_ms, uuid.uuid4().hex)
            return track.open
        if track.open is not None and track.clears >= rule.resolve_after:
            return self._resolve(track, track.open, rule, reading, at_ms)
        return None

    def forget(self, rule: AlertRule, at_ms: int, why: str = "the rule was removed"
               ) -> list[Event]:
        """Stop following a rule (removed, or changed so that its targets differ): its open
        episodes resolve, saying why, so none stays open in the log for ever."""
        events = []
        for (name, target), track in list(self._tracks.items()):
            if name != rule.name:
                continue
            if track.open is not None:
                events.append(self._resolve(track, track.open, rule, Reading(None, False, why),
                                            at_ms))
            del self._tracks[(name, target)]
        return events

    def open_targets(self) -> dict[tuple[str, str], Event]:
        """(rule, target) -> firing, for every open episode (what the metrics call firing)."""
        return {k: t.open for k, t in self._tracks.items() if t.open is not None}

    @staticmethod
    def _resolve(track: _Track, fired: Event, rule: AlertRule, reading: Reading,
                 at_ms: int) -> Event:
        track.open, track.breaches, track.clears = None, 0, 0
        return _event(rule, fired.target, "resolved", reading, at_ms, fired.episode)


def _event(rule: AlertRule, target: str, state: State, reading: Reading, at_ms: int,
           episode: str) -> Event:
    return Event(rule.name, target, rule.kind, state, reading.value, rule.threshold,
                 reading.message, at_ms, episode)
