"""Flows over many series (a whole exchange's markets) whose per-series work runs on an
``Executor``: in this process, or as Ray tasks (``executor.py``, docs/scale.md).

- ``backtest_many``: one global model per learned model, trained once here on every series
  before one common cutoff, then each series' whole backtest (every model, every origin) as
  one piece of work; the same results as ``evaluation.backtest`` of each series with the
  shared model (``fit=False``).
- ``forecast_many``: the series that share a trained model (a global one) forecast in one
  batched call, one piece of work; series with no trained model are left out, and said so.

A model crosses to a worker as its saved folder's files (``Shipped``: model.json and
weights.safetensors, never a pickled module) and is loaded there, once per worker process;
a model that learns nothing before a backtest (the references, MSTL) crosses as its name and
settings. The driver (this process) reads the store and writes every result: workers need
neither the database nor the models folder, so a remote cluster works as a local one does.
"""

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from volcast.data.store import SeriesKey
from volcast.errors import NotFound, VolcastError
from volcast.evaluation.backtest import BacktestResult, default_cutoff, origins
from volcast.evaluation.backtest import backtest as walk_forward
from volcast.evaluation.compare import Progress
from volcast.models import create, load, model_class, parallel
from volcast.models.base import MANIFEST, WEIGHTS, Forecaster
from volcast.workspace.executor import Done, Executor
from volcast.workspace.flows import compared
from volcast.workspace.units import Unit

if TYPE_CHECKING:
    from volcast.workspace.core import Workspace

LOADED_MODELS = 4
"""Trained models a worker keeps loaded (one per model of a backtest, usually one)."""


class BatchProgress(Progress, Protocol):
    """A backtest's progress (training epochs, ...) and a count of the series done."""

    def count(self, what: str) -> Done: ...


@dataclass(frozen=True)
class Shipped:
    """A model as it travels to a worker: a trained one as its folder's files (``files``),
    loaded there; one that needs no training before it forecasts (a reference model, MSTL, or
    a model a backtest trains on each series) as its name and settings, made in the task."""

    name: str
    settings: str
    files: tuple[tuple[str, bytes], ...] = ()
    origin: str = field(default="", compare=False)
    """The folder the files came from, for messages; not part of what makes two models one."""

    @classmethod
    def fresh(cls, model: Forecaster) -> "Shipped":
        return cls(model.name, json.dumps(model.settings.model_dump(mode="json")))

    @classmethod
    def folder(cls, name: str, directory: Path) -> "Shipped":
        """The files of a saved model folder (``models.load`` checks them in the worker)."""
        files = tuple((f, (directory / f).read_bytes()) for f in (MANIFEST, WEIGHTS)
                      if (directory / f).is_file())
        return cls(name, "", files, str(directory))

    @classmethod
    def trained(cls, model: Forecaster) -> "Shipped":
        with tempfile.TemporaryDirectory(prefix="volcast-ship-") as directory:
            model.save(Path(directory))
            return replace(cls.folder(model.name, Path(directory)), origin="")  # gone after

    def forecaster(self) -> Forecaster:
        """The model itself: loaded (and kept) once per process, or made anew."""
        if self.files:
            return _loaded(self)
        return create(self.name, json.loads(self.settings))


@lru_cache(maxsize=LOADED_MODELS)
def _loaded(shipped: Shipped) -> Forecaster:
    with tempfile.TemporaryDirectory(prefix="volcast-model-") as directory:
        for name, content in shipped.files:
            (Path(directory) / name).write_bytes(content)
        try:
            return load(Path(directory))
        except VolcastError as error:  # name the user's folder, not this one
            raise VolcastError(str(error).replace(directory, shipped.origin or "the model's "
                                                  "folder")) from None


# -- backtests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What every series' backtest shares: the models and the protocol's cutoff and horizon."""

    models: tuple[Shipped, ...]
    cutoff: int
    horizon: int


@dataclass(frozen=True)
class Scored:
    """One model's backtest of one series, as it comes back from a worker (no model)."""

    predictions: pd.DataFrame
    scores: dict[str, dict[str, float]]
    train_s: float
    predict_s: float
    peak_rss_mb: float


def backtest_series(long: pd.DataFrame, plan: Plan) -> list[Scored]:
    """One series' whole backtest: each model of the plan from every origin after the cutoff
    (a trained model as it is; any other fitted on the series first, as a backtest does)."""
    out = []
    for shipped in plan.models:
        result = walk_forward(shipped.forecaster(), long, horizon=plan.horizon,
                              cutoff=plan.cutoff, fit=not shipped.files)
        out.append(Scored(result.predictions, result.scores, result.train_s, result.predict_s,
                          result.peak_rss_mb))
    return out


@dataclass
class Batch:
    """A backtest of many series: each one's results, the common cutoff, and the series left
    out (with why)."""

    results: dict[SeriesKey, list[BacktestResult]]
    cutoff: int
    left_out: dict[SeriesKey, str] = field(default_factory=dict)


def backtest_many(space: "Workspace", keys: Sequence[SeriesKey], names: Sequence[str],
                  overrides: dict[str, dict[str, Any]] | None, runner: Executor,
                  progress: BatchProgress | None = None, cutoff: int | None = None) -> Batch:
    """The protocol's backtest of ``names`` (and what they are compared with) on every series
    of ``keys`` (one timeframe), from one cutoff (default: the start of the last
    ``test_days`` before the newest candle of them all). Each learned model is trained once,
    here, on every series before the cutoff; each series is then one piece of work on
    ``runner``. A series the cutoff leaves without training data or a full test horizon is
    left out and said so. Each result is stored in the series' model folder."""
    if len({key.timeframe for key in keys}) != 1:
        raise VolcastError("a backtest of many series takes series of one timeframe")
    models = [space.make(name, (overrides or {}).get(name)) for name in compared(names)]
    with space.store.connection():  # one opening for every series' candles
        frames = _frames(space.inputs(list(keys), models))
    step, horizon = keys[0].tf_ms, space.settings.backtest.horizon
    if cutoff is None:
        newest = pd.Series([int(frame["ds"].max()) for frame in frames.values()])
        cutoff = default_cutoff(newest, step, space.settings.backtest.test_days)
    left_out = _too_short(keys, frames, cutoff, step, horizon)
    tested = [frames[key.unique_id] for key in keys if key not in left_out]
    if not tested:
        raise VolcastError(f"no series can be backtested: {next(iter(left_out.values()))}")
    # a model added only for comparison that cannot forecast the horizon is left out
    models = [m for m in models if m.name in names or (m.max_horizon(step) or horizon) >= horizon]
    learn = pd.concat(tested, ignore_index=True)
    with parallel.spread(runner.launcher()):  # a network with shards trains on the workers
        train_s = {m.name: _fit(m, learn[learn["ds"] < cutoff], progress) for m in models
                   if m.learns_once}
    plan = Plan(tuple(Shipped.trained(m) if m.learns_once else Shipped.fresh(m) for m in models),
                cutoff, horizon)
    scored = runner.map(backtest_series, tested, plan,
                        progress.count("series backtested") if progress else None)
    results = {}
    for key, row in zip([k for k in keys if k not in left_out], scored, strict=True):
        results[key] = [BacktestResult(m.name, s.predictions, s.scores,
                                       train_s.get(m.name, s.train_s), s.predict_s,
                                       s.peak_rss_mb, cutoff, m.refits_per_origin, m)
                        for m, s in zip(models, row, strict=True)]
        for result in results[key]:
            space.layout.save_backtest(key, result)
    return Batch(results, cutoff, left_out)


def _frames(long: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each series of a long frame on its own, in order of appearance."""
    return {str(uid): frame.reset_index(drop=True)
            for uid, frame in long.groupby("unique_id", sort=False)}


def _too_short(keys: Sequence[SeriesKey], frames: dict[str, pd.DataFrame], cutoff: int,
               step: int, horizon: int) -> dict[SeriesKey, str]:
    """The series that cannot be backtested from ``cutoff``, with the reason in one line."""
    short = {}
    for key in keys:
        ds = frames[key.unique_id]["ds"]
        try:
            origins(int(ds.min()), int(ds.max()), cutoff, step, horizon)
        except VolcastError as error:
            short[key] = f"{key}: {error}"
    return short


def _fit(model: Forecaster, learn: pd.DataFrame, progress: BatchProgress | None) -> float:
    """Train the shared model; how long it took (each series' result reports it)."""
    began = time.perf_counter()
    model.fit(learn, progress.epochs(model.name) if progress else None)
    return time.perf_counter() - began


# -- forecasts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """The forecasts of every series that shares one shipped model and horizon: their inputs
    as one long frame (so one batched ``predict``), and each series' unit name."""

    inputs: pd.DataFrame
    model: int
    steps: int
    units: dict[str, str]


def predict_series(request: Request, models: tuple[Shipped, ...]) -> pd.DataFrame:
    forecast = models[request.model].forecaster().predict(request.inputs, request.steps)
    return forecast.assign(unit=forecast["unique_id"].map(request.units))


@dataclass
class Forecasts:
    """Forecasts of many series, and the series left out (with why)."""

    frame: pd.DataFrame
    left_out: dict[SeriesKey, str] = field(default_factory=dict)


def forecast_many(space: "Workspace", keys: Sequence[SeriesKey], model: str,
                  horizon: int | None, unit: Unit, runner: Executor,
                  done: Done | None = None, strict: bool = False) -> Forecasts:
    """q10/q50/q90 of each series' next ``horizon`` candles (default: its model's) from its
    latest stored candle, by its trained ``model`` (or a model that needs none). The series
    that share a model (a global one is saved for each of its series: the same files) are
    one piece of work, read from the store at once and forecast in one batched ``predict``;
    a model made anew for each series (MSTL, a reference) forecasts each as its own piece, as
    it fits each on its own. A series with no trained model, or a damaged one, is left out
    and said so, or with ``strict`` refused before anything is read or forecast."""
    groups: dict[tuple[Shipped, int, SeriesKey | None], list[SeriesKey]] = {}
    loaded: dict[Shipped, Forecaster] = {}  # each model once, beyond _loaded's few
    left_out: dict[SeriesKey, str] = {}
    keys = list(dict.fromkeys(keys))
    for key in keys:
        try:
            ship = _shipped(space, key, model)
            if ship not in loaded:
                loaded[ship] = ship.forecaster()  # a damaged folder fails here, not midway
        except VolcastError as error:  # no model (NotFound) or a damaged one
            if strict:
                raise
            left_out[key] = str(error)
            continue
        steps = horizon or space.horizon(loaded[ship])
        groups.setdefault((ship, steps, None if ship.files else key), []).append(key)
    if not groups:
        raise NotFound(next(iter(left_out.values())))
    models = tuple(dict.fromkeys(ship for ship, _, _ in groups))
    with space.store.connection():  # one opening for every series' candles
        requests = [Request(space.forecast_inputs(chosen, loaded[ship], unit),
                            models.index(ship), steps,
                            space.unit_names(chosen, unit))
                    for (ship, steps, _), chosen in groups.items()]
    frames = [pd.DataFrame()] * len(requests)
    finished = 0
    for index, frame in runner.each(predict_series, requests, models):
        frames[index], finished = frame, finished + len(requests[index].units)
        if done is not None:
            done(finished, len(keys) - len(left_out))
    order = {key.unique_id: at for at, key in enumerate(keys)}
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.iloc[frame["unique_id"].map(order).argsort(kind="stable")]
    return Forecasts(frame.reset_index(drop=True), left_out)


def _shipped(space: "Workspace", key: SeriesKey, model: str) -> Shipped:
    """The series' model as it travels: its saved folder's files (as ``Workspace.forecaster``
    loads them first), or, for a model that needs no training and has none saved, its name
    and settings. Equal files are one model, loaded once."""
    saved = space.layout.version(key, model) is not None
    if not saved and not model_class(model).needs_fitting:
        return Shipped.fresh(space.make(model))
    if not saved:
        space.forecaster(key, model)  # raises its NotFound: how to train one
    return Shipped.folder(model, space.layout.folder(key, model))

