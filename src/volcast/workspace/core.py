"""The ``Workspace``: one store, one folder of models, one set of settings, and the flows every
entry point runs on them (forecast the latest candles, train and save, backtest and store,
the overview). The CLI, the web API, the report and the demo all call these methods, so a
model trained or a backtest run by any of them is found by every other one.
"""

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import TYPE_CHECKING, Any

import pandas as pd

from volcast.config import Settings, db_path, load_settings
from volcast.data import totals
from volcast.data.store import CandleStore, SeriesKey, is_total
from volcast.data.timeframe import DAY_MS
from volcast.errors import NotFound, VolcastError
from volcast.evaluation.backtest import BacktestResult, default_cutoff
from volcast.evaluation.backtest import backtest as walk_forward
from volcast.evaluation.compare import Progress
from volcast.models import model_class, parallel
from volcast.models.base import EpochProgress, Forecaster
from volcast.workspace.batch import Batch, BatchProgress, Forecasts, backtest_many, forecast_many
from volcast.workspace.executor import Done, Executor, executor
from volcast.workspace.flows import backtest_frames, fit, make, report_inputs
from volcast.workspace.layout import Layout, models_path
from volcast.workspace.sources import read_stored, with_covariates
from volcast.workspace.units import UNITS, Unit, in_unit
from volcast.workspace.versions import ModelVersion, Promotion, Validation

if TYPE_CHECKING:
    from volcast.viz.report import ReportInputs

CACHE_SIZE = 256
"""Loaded models, forecasts and analyses kept in memory (least recently used dropped first).
A forecast or an analysis is tens of kB, a default LSTM a few hundred: tens of MB at most."""


@dataclass
class Workspace:
    store: CandleStore
    models_dir: Path
    settings: Settings = field(default_factory=Settings)
    exchange_url: str | None = None
    _memo: "Memo" = field(default_factory=lambda: Memo(CACHE_SIZE), repr=False)

    @classmethod
    @contextmanager
    def open(cls, db: Path | None, models: Path | None = None, config: Path | None = None,
             read_only: bool = False, exchange_url: str | None = None,
             settings: Settings | None = None) -> Iterator["Workspace"]:
        """The store at --db (or its default), models beside it (or at --models), settings
        from --config (or given whole)."""
        settings = settings or load_settings(config)
        path = db_path(db)
        with CandleStore(path, read_only=read_only) as store:
            yield cls(store, models_path(path, models), settings, exchange_url)

    @property
    def layout(self) -> Layout:
        return Layout(self.models_dir)

    # -- series ---------------------------------------------------------------------------
    def bounds(self, key: SeriesKey) -> tuple[int, int]:
        found = self.store.bounds(key)
        if found is None:
            raise NotFound(f"no stored candles for {key}; see GET /api/series or "
                           "`volcast data list`")
        return found

    def keys(self, timeframe: str | None = None) -> list[SeriesKey]:
        """Every stored series (of one timeframe), in the store's order."""
        return [SeriesKey(s.exchange, s.symbol, s.timeframe)
                for s in self.store.series().itertuples()
                if timeframe is None or s.timeframe == timeframe]

    def long(self, keys: list[SeriesKey], unit: Unit = "base", start: int | None = None,
             recent: int | None = None) -> pd.DataFrame:
        """The series' candles (from open time ``start`` on; with ``recent``, the last
        ``recent`` ms of each) as a long frame in ``unit``; a series the store does not hold
        is ``NotFound`` (``bounds``' message)."""
        try:
            long = read_stored(self.store, keys, start, recent)
        except VolcastError:  # a series unknown to the store: say which, as bounds says it
            for key in keys:
                self.bounds(key)
            raise
        present = set(long["unique_id"].unique())
        for key in keys:
            if key.unique_id not in present:
                self.bounds(key)
        return in_unit(long, unit)

    def inputs(self, keys: list[SeriesKey], models: list[Forecaster], unit: Unit = "base"
               ) -> pd.DataFrame:
        """What ``models`` forecast the series from: their candles in ``unit`` and the
        covariates any of the models reads (``sources.with_covariates``)."""
        return with_covariates(self.long(keys, unit), models, self.store)

    def forecast_inputs(self, keys: list[SeriesKey], forecaster: Forecaster,
                        unit: Unit = "base") -> pd.DataFrame:
        """``inputs`` of a forecast from each series' newest candle: only the newest candles
        the model reads (``Forecaster.reach``), or all of them for a model that reads all."""
        reaches = [forecaster.reach(key.tf_ms) for key in keys]
        recent = None if None in reaches else max(r * k.tf_ms  # type: ignore[operator]
                                                  for r, k in zip(reaches, keys, strict=True))
        return with_covariates(self.long(keys, unit, recent=recent), [forecaster], self.store)

    def unit_name(self, key: SeriesKey, unit: Unit = "base") -> str:
        """What the series' volume is counted in: its base currency, or its quote's."""
        return self.unit_names([key], unit)[key.unique_id]

    def unit_names(self, keys: list[SeriesKey], unit: Unit = "base") -> dict[str, str]:
        """``unit_name`` of each series, by ``unique_id``, in one query."""
        units = self.store.units_many(keys)
        return {key.unique_id: units[key][UNITS.index(unit)] for key in keys}

    def markets(self, exchange: str, timeframe: str, top: int | None = None
                ) -> list[SeriesKey]:
        """The stored markets of an exchange in one timeframe (its totals left out:
        ``data.totals.markets``): all of them, or the ``top`` N by quote volume over the day
        before the newest stored candle (ties by symbol)."""
        with self.store.connection():
            keys = [SeriesKey(exchange, s, timeframe)
                    for s in totals.markets(self.store, exchange, timeframe)]
            if not keys:
                raise NotFound(f"no stored {timeframe} series of {exchange}; see `volcast data "
                               "list`")
            if top is None:
                return keys
            newest = max(self.bounds(key)[1] for key in keys)
            day = self.long(keys, "quote", start=newest + keys[0].tf_ms - DAY_MS)
        volume = day.groupby("unique_id")["y"].sum()
        return sorted(keys, key=lambda k: (-volume.get(k.unique_id, 0.0), k.symbol))[:top]

    def learns_with(self, key: SeriesKey) -> list[SeriesKey]:
        """The series a global model for ``key`` learns from: every stored series of its
        timeframe, ``key`` first (the CLI's `train -s A -s B` names them instead). Exchange
        totals (``*/QUOTE``) only teach their own model: building a total must not change
        what a market's model learns."""
        return [key, *[k for k in self.keys(key.timeframe)
                       if k != key and not is_total(k.symbol)]]

    # -- models ---------------------------------------------------------------------------
    def make(self, name: str, flags: dict[str, Any] | None = None) -> Forecaster:
        return make(self.settings, name, flags)

    def forecaster(self, key: SeriesKey, model: str) -> Forecaster:
        """The series' trained model (reloaded when its folder changes); a model that needs no
        training is made on the spot."""
        version = self.layout.version(key, model)
        if version is not None:
            from volcast.models import load

            folder = self.layout.folder(key, model)
            return self._memo.get(("model", folder), version, lambda: load(folder))
        if not model_class(model).needs_fitting:
            return self.make(model)
        raise NotFound(f"no trained {model} for {key}; train one with `volcast train --model "
                       f"{model} -e {key.exchange} -s {key.symbol} -t {key.timeframe}` or "
                       f'POST /api/jobs {{"kind": "train", "model": "{model}", ...}}')

    def horizon(self, forecaster: Forecaster) -> int:
        """The candles a forecast covers: the model's own horizon, else the protocol's."""
        return forecaster.horizon or self.settings.backtest.horizon

    def forecast(self, key: SeriesKey, model: str, horizon: int | None = None,
                 unit: Unit = "base") -> tuple[Forecaster, pd.DataFrame]:
        """q10/q50/q90 of the next ``horizon`` candles (default: the model's) from the latest
        stored candle, in ``unit`` (the frame's ``unit`` column names it); cached per candle
        and model version."""
        last = self.bounds(key)[1]
        forecaster = self.forecaster(key, model)
        steps = horizon or self.horizon(forecaster)

        def predict() -> pd.DataFrame:
            return forecaster.predict(self.forecast_inputs([key], forecaster, unit),
                                      steps).assign(
                unit=self.unit_name(key, unit))

        stamp = (last, self.layout.version(key, model))
        return forecaster, self._memo.get(("forecast", key, model, steps, unit), stamp, predict)

    def train(self, keys: list[SeriesKey], model: str, flags: dict[str, Any] | None = None,
              progress: EpochProgress | None = None) -> tuple[Forecaster, list[Path]]:
        """Train one (global) model on these series and save it for each of them; a network
        with ``shards`` trains on ``executor``'s workers when it has some."""
        with parallel.spread(self.executor.launcher()):
            forecaster = fit(self.settings, model, flags, self.long(keys), progress, self.store)
        return forecaster, self.layout.save_model(keys, forecaster)

    def retrain(self, keys: list[SeriesKey], model: str, validation_days: float,
                flags: dict[str, Any] | None = None, progress: EpochProgress | None = None
                ) -> Promotion:
        """Train one global model on these series (one timeframe) without their newest
        ``validation_days``, score it and the serving model on that window of each series
        (out of sample for both: the serving one was trained earlier), and make it the serving
        model only when its MAE (mean over the series) is no worse. Either way it is kept as a
        version. The candidate serves as validated, trained without the window: the next
        retraining learns from it."""
        if len({key.timeframe for key in keys}) != 1:
            raise VolcastError("a retraining learns from series of one timeframe, not "
                               f"{', '.join(sorted({key.timeframe for key in keys}))}")
        frames = {key: self.long([key]) for key in keys}
        cutoffs = {key: validation_start(frame, key, validation_days,
                                         self.settings.backtest.horizon)
                   for key, frame in frames.items()}
        learn = pd.concat([f[f["ds"] < cutoffs[k]] for k, f in frames.items()], ignore_index=True)
        candidate = fit(self.settings, model, flags, learn, progress, self.store)
        serving = {key: self.forecaster(key, model) for key in keys
                   if self.layout.version(key, model) is not None}
        frames = {key: with_covariates(frame, [candidate, *serving.values()], self.store)
                  for key, frame in frames.items()}
        steps = min([self.settings.backtest.horizon,
                     *(m.max_horizon(keys[0].tf_ms) or self.settings.backtest.horizon
                       for m in [candidate, *serving.values()])])
        ours = {key: validation_mae(candidate, frames[key], cutoffs[key], steps)
                for key in keys}
        theirs = {key: validation_mae(served, frames[key], cutoffs[key], steps)
                  for key, served in serving.items()}
        window = Validation(days=validation_days, first=min(cutoffs.values()),
                            last=max(int(f["ds"].max()) for f in frames.values()))
        compared = list(theirs) or keys
        score = mean(ours[k] for k in compared)
        before = mean(theirs.values()) if theirs else None
        promote = before is None or score <= before
        number = self.layout.keep(keys, candidate, promote, mean(ours.values()), window)
        return Promotion(model, number, promote, score, before, window, promotion_note(
            model, number, score, before, len(compared), validation_days,
            seen=[k for k, m in serving.items() if m.info.get("last_ds", 0) >= cutoffs[k]]))

    def rollback(self, key: SeriesKey, model: str, to: int | None = None) -> ModelVersion:
        """Version ``to`` of the series' model (default: the one that served before) serves
        it again; forecasts follow at once (the cache is stamped with the model's version)."""
        self.bounds(key)
        return self.layout.rollback(key, model, to)

    def versions(self, key: SeriesKey, model: str) -> tuple[list[ModelVersion], int | None]:
        """The kept versions of the series' model, oldest first, and the serving one's number
        (None: none serves, or the model was trained before versions were kept)."""
        versions = self.layout.versions(key, model)
        return versions.history(), versions.serving()

    def backtest(self, key: SeriesKey, names: list[str],
                 overrides: dict[str, dict[str, Any]] | None = None,
                 progress: Progress | None = None, cutoff: int | None = None,
                 learn_from: list[SeriesKey] | None = None) -> list[BacktestResult]:
        """The protocol's backtest of ``names`` (and what they are compared with) on one series,
        global models also learning from ``learn_from`` (default: ``learns_with``); each result
        is stored in the series' model folders."""
        others = [k for k in (learn_from if learn_from is not None else self.learns_with(key))
                  if k != key]
        results = backtest_frames(self.settings, names, overrides, self.long([key]),
                                  self.long(others) if others else None, cutoff, progress,
                                  self.store)
        for result in results:
            self.layout.save_backtest(key, result)
        return results

    @property
    def executor(self) -> Executor:
        """Where work over many series runs: as Ray tasks when ``[ray]`` says so, else here."""
        return executor(self.settings.ray)

    def backtest_many(self, keys: list[SeriesKey], names: list[str],
                      overrides: dict[str, dict[str, Any]] | None = None,
                      progress: BatchProgress | None = None, cutoff: int | None = None) -> Batch:
        """The protocol's backtest of ``names`` on every series of ``keys`` with one global
        model per learned model, trained once on them all (``batch.backtest_many``); each
        series' backtest runs on ``executor`` and its results are stored."""
        return backtest_many(self, keys, names, overrides, self.executor, progress, cutoff)

    def forecast_many(self, keys: list[SeriesKey], model: str, horizon: int | None = None,
                      unit: Unit = "base", done: Done | None = None, strict: bool = False
                      ) -> Forecasts:
        """``forecast`` of every series of ``keys``, those sharing a model in one batched
        call, here or as Ray tasks (``batch.forecast_many``; not cached). ``strict``: a series
        without its model is refused before any forecast, not left out."""
        return forecast_many(self, keys, model, horizon, unit, self.executor, done, strict)

    def backtests(self, key: SeriesKey, model: str | None = None
                  ) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
        self.bounds(key)
        return self.layout.backtests(key, model)

    def report_inputs(self, key: SeriesKey, model: str, backtests: list[BacktestResult],
                      tz: str = "UTC") -> "ReportInputs":
        """The report's part for one series: analysis and the latest forecast of ``model``
        (the series' trained one, else the backtest's own)."""
        try:
            forecaster, frame = self.forecast(key, model)
        except NotFound:
            forecaster = next(b.forecaster for b in backtests if b.model == model)
            frame = None
        return report_inputs(self.inputs([key], [forecaster]), forecaster, backtests,
                             self.horizon(forecaster), tz, frame,
                             unit_name=self.unit_name(key))

    def analysis(self, key: SeriesKey, tz: str, unit: Unit = "base") -> dict[str, Any]:
        from volcast.analysis import analyze, to_json

        last = self.bounds(key)[1]
        return self._memo.get(("analysis", key, tz, unit), last, lambda: to_json(
            analyze(self.long([key], unit), tz)) | {"unit": self.unit_name(key, unit)})

    # -- overview -------------------------------------------------------------------------
    def overview(self, timeframe: str, model: str, threshold: float | None,
                 unit: Unit = "base") -> list[dict[str, Any]]:
        """For every stored series of this timeframe: the next day's expected volume and its
        p90, the share of its candles whose p90 is over ``threshold``, and the data's age.
        Volumes and the threshold are in each series' base currency, or with ``unit="quote"``
        in its quote currency (one threshold then fits every pair quoted in it)."""
        model_class(model)  # an unknown name is one error, not a note per series
        return [self._overview_row(key, model, threshold, unit)
                for key in self.keys(timeframe)]

    def why_empty(self, timeframe: str) -> str:
        """Why the overview of ``timeframe`` has no rows, and what to do."""
        others = sorted({k.timeframe for k in self.keys()})
        if not others:
            return "the store holds no candles yet: fetch or import some (volcast fetch ...)"
        return (f"no stored series with timeframe {timeframe}; the store holds "
                f"{', '.join(others)}")

    def _overview_row(self, key: SeriesKey, model: str, threshold: float | None, unit: Unit
                      ) -> dict[str, Any]:
        last = self.bounds(key)[1]
        age = time.time() - (last + key.tf_ms) / 1000
        row: dict[str, Any] = {"exchange": key.exchange, "symbol": key.symbol,
                               "timeframe": key.timeframe, "model": model,
                               "unit": self.unit_name(key, unit),
                               "last_candle": last, "age_s": round(age, 1),
                               "stale": age > 2 * key.tf_ms / 1000}
        try:
            forecaster = self.forecaster(key, model)
            day = max(1, DAY_MS // key.tf_ms)
            reach = forecaster.max_horizon(key.tf_ms)
            steps = day if reach is None else min(day, reach)
            _, frame = self.forecast(key, model, steps, unit)
        except VolcastError as error:
            return row | {"forecast": None, "note": str(error)}
        return row | next_day(frame, steps, day, key.tf_ms, threshold, model)

    # -- downloads ------------------------------------------------------------------------
    def fetch(self, keys: list[SeriesKey], since: int | None,
              progress: Callable[[SeriesKey, int, int, int], None],
              cancelled: Callable[[], bool] = lambda: False) -> list[Any]:
        """Download these series through ccxt (resuming); ``cancelled`` is polled and stops the
        download the way Ctrl-C does, keeping every page already stored."""
        from volcast.data.sync import fetch

        async def cancellable() -> list[Any]:
            task = asyncio.ensure_future(fetch(
                keys[0].exchange, keys, self.store, self.settings.fetch, since=since,
                url=self.exchange_url, progress=progress))
            while not task.done():
                if cancelled():
                    task.cancel()
                await asyncio.wait([task], timeout=0.2)
            return task.result()

        return asyncio.run(cancellable())


def next_day(frame: pd.DataFrame, steps: int, day: int, step_ms: int,
             threshold: float | None, model: str) -> dict[str, Any]:
    """The overview's figures of one forecast: the expected volume over the next day, its p90
    (only from a model with an interval: a point forecast has none, and calling its median a
    p90 would understate the capacity needed), and notes where the forecast falls short of a
    day or has no interval."""
    q90 = frame["q90"] if frame["q90"].notna().all() else None
    hours = steps * step_ms / 3_600_000
    notes = []
    if steps < day:
        notes.append(f"covers the next {steps} candles ({hours:g} h), not a whole day: {model} "
                     f"forecasts {steps} candles ahead at most")
    if q90 is None:
        notes.append(f"{model} gives no interval, so no p90: choose a model with quantiles "
                     "(mstl, lstm)")
    return {"forecast": {
        "candles": steps, "hours": hours, "from": int(frame["ds"].iloc[0]),
        "expected_volume": float(frame["q50"].sum()),
        "p90_volume": None if q90 is None else float(q90.sum()),
        "peak_p90": None if q90 is None else float(q90.max()),
        "share_over_threshold": None if threshold is None or q90 is None
        else float((q90 > threshold).mean())}, "note": ". ".join(notes) or None}


def validation_start(frame: pd.DataFrame, key: SeriesKey, days: float, horizon: int) -> int:
    """The first candle of the series' newest ``days``: a retraining learns from what is
    before it and is scored on the rest, which must hold one forecast of ``horizon``."""
    if days * DAY_MS < horizon * key.tf_ms:
        raise VolcastError(f"a validation window of {days:g} days holds fewer {key.timeframe} "
                           f"candles than one forecast of {horizon}")
    return default_cutoff(frame["ds"], key.tf_ms, days)


def validation_mae(forecaster: Forecaster, frame: pd.DataFrame, start: int, steps: int
                   ) -> float:
    """MAE of a trained model's forecasts of ``steps`` candles from every origin of the
    window (the protocol's rolling origins; the model is not refitted)."""
    return walk_forward(forecaster, frame, horizon=steps, cutoff=start,
                        fit=False).scores["overall"]["mae"]


def promotion_note(model: str, number: int, score: float, before: float | None, series: int,
                   days: float, seen: list[SeriesKey]) -> str:
    """Why a retrained model serves or not, in one line."""
    where = f"on the newest {days:g} days of {series} series"
    if before is None:
        return f"{model} version {number} serves: no {model} served these series before"
    verdict = (f"serves: MAE {score:,.4g} <= {before:,.4g} of the serving model" if
               score <= before else f"is kept, not serving: MAE {score:,.4g} > {before:,.4g} "
               "of the serving model")
    caveat = (f" (the serving model learned from part of the window for {len(seen)} series, "
              "so its score there is in-sample)" if seen else "")
    return f"{model} version {number} {verdict} {where}{caveat}"


class Memo:
    """Results worth keeping (loaded models, forecasts, analyses), at most ``size`` of them,
    least recently used dropped first; safe to share between threads.

    Each value sits in a slot (what it is: one series' forecast by one model) under a stamp
    (what it was made from: the last candle, the model's version). A new stamp replaces the
    slot's value instead of adding one, so results of old candles or old models never pile up
    in memory. Callers that ask for the same slot and stamp at once share one computation
    (single flight): under load, a burst of identical requests costs one forecast, not one
    per request, and each waits for it rather than adding to the work."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._running: dict[tuple[Hashable, Hashable], Future[Any]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, slot: Hashable, stamp: Hashable, make: Callable[[], Any]) -> Any:
        """The slot's value if made from ``stamp``; else ``make()``'s, computed once however
        many threads ask for it meanwhile (its error, if it fails, reaches each of them)."""
        with self._lock:
            held = self._values.get(slot)
            if held is not None and held[0] == stamp:
                self._values.move_to_end(slot)
                return held[1]
            flight = self._running.get((slot, stamp))
            first = flight is None
            if flight is None:
                flight = self._running[(slot, stamp)] = Future()
        return self._make(slot, stamp, make, flight) if first else flight.result()

    def _make(self, slot: Hashable, stamp: Hashable, make: Callable[[], Any],
              flight: "Future[Any]") -> Any:
        try:
            value = make()
        except BaseException as error:
            with self._lock:
                del self._running[(slot, stamp)]
            flight.set_exception(error)
            raise
        with self._lock:
            del self._running[(slot, stamp)]
            self._values[slot] = (stamp, value)
            self._values.move_to_end(slot)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        flight.set_result(value)
        return value
