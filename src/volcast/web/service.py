"""What the web API does, apart from HTTP: one store shared by every request and job, model and
backtest folders per series, forecasts cached until a new candle or a new model arrives.

Layout of ``models_dir``: ``EXCHANGE/SYMBOL/TIMEFRAME/MODEL/`` holds a trained model
(``model.json`` + ``weights.safetensors``) and its latest backtest (``backtest.csv`` +
``backtest.scores.json``); symbols are written with ``/`` and ``:`` as ``_``.
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from volcast.config import BacktestSettings, FetchSettings
from volcast.data.frames import to_long
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError
from volcast.models import REFERENCE_MODELS, create, load
from volcast.models.base import EpochProgress, Forecaster
from volcast.web.jobs import Job, JobCancelled
from volcast.workspace.sources import series_id


class NotFound(VolcastError):
    """Something asked for does not exist (HTTP 404)."""


@dataclass
class Workspace:
    store: CandleStore
    models_dir: Path
    fetch_settings: FetchSettings = field(default_factory=FetchSettings)
    exchange_url: str | None = None
    protocol: BacktestSettings = field(default_factory=BacktestSettings)
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- series ---------------------------------------------------------------------------
    def bounds(self, key: SeriesKey) -> tuple[int, int]:
        found = self.store.bounds(key)
        if found is None:
            raise NotFound(f"no stored candles for {key}; see GET /api/series")
        return found

    def long(self, key: SeriesKey) -> pd.DataFrame:
        self.bounds(key)
        return to_long(self.store.read(key), series_id(key))

    def folder(self, key: SeriesKey, model: str) -> Path:
        safe = key.symbol.replace("/", "_").replace(":", "_")
        return self.models_dir / key.exchange / safe / key.timeframe / model

    def trained(self, key: SeriesKey) -> list[str]:
        """Names of the models trained for this series (folders with a model.json)."""
        base = self.folder(key, "_").parent
        return sorted(p.parent.name for p in base.glob("*/model.json")) if base.exists() else []

    # -- forecasts ------------------------------------------------------------------------
    def _version(self, key: SeriesKey, model: str) -> int | None:
        """The trained model's folder version (its model.json's mtime); None: not trained."""
        manifest = self.folder(key, model) / "model.json"
        return manifest.stat().st_mtime_ns if manifest.exists() else None

    def forecaster(self, key: SeriesKey, model: str) -> Forecaster:
        """The trained model of this series (reloaded when its folder changes); a reference
        model needs no training and is made on the spot."""
        version = self._version(key, model)
        if version is not None:
            folder = self.folder(key, model)
            return self._cached(("model", folder, version), lambda: load(folder))
        if model in REFERENCE_MODELS:
            return create(model)
        create(model)  # an unknown name fails here with the list of names
        raise NotFound(f"no trained {model} for {key}; start one with POST /api/jobs "
                       f'{{"kind": "train", "model": "{model}", ...}}')

    def forecast(self, key: SeriesKey, model: str) -> tuple[Forecaster, pd.DataFrame]:
        """The next horizon's q10/q50/q90 from the latest stored candle (cached per candle)."""
        last = self.bounds(key)[1]
        forecaster = self.forecaster(key, model)
        horizon = getattr(forecaster.settings, "horizon", self.protocol.horizon)
        frame = self._cached(("forecast", key, model, last, self._version(key, model)),
                             lambda: forecaster.predict(self.long(key), horizon))
        return forecaster, frame

    def analysis(self, key: SeriesKey, tz: str) -> dict[str, Any]:
        from volcast.analysis import analyze, to_json

        last = self.bounds(key)[1]
        return self._cached(("analysis", key, last, tz),
                            lambda: to_json(analyze(self.long(key), tz)))

    def _cached(self, token: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        with self._cache_lock:
            if token in self._cache:
                return self._cache[token]
        value = make()
        with self._cache_lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[token] = value
        return value

    # -- overview -------------------------------------------------------------------------
    def overview(self, timeframe: str, model: str, threshold: float | None) -> list[dict]:
        """For every stored series of this timeframe: the next day's expected volume and its
        p90, the share of its hours whose p90 is over ``threshold``, and the data's age."""
        rows = []
        for s in self.store.series().itertuples():
            if s.timeframe != timeframe:
                continue
            key = SeriesKey(s.exchange, s.symbol, s.timeframe)
            rows.append(self._overview_row(key, int(s.last), model, threshold))
        return rows

    def _overview_row(self, key: SeriesKey, last: int, model: str, threshold: float | None
                      ) -> dict[str, Any]:
        age = time.time() - (last + key.tf_ms) / 1000
        row: dict[str, Any] = {"exchange": key.exchange, "symbol": key.symbol,
                               "timeframe": key.timeframe, "model": model,
                               "last_candle": last, "age_s": round(age, 1),
                               "stale": age > 2 * key.tf_ms / 1000}
        try:
            _, frame = self.forecast(key, model)
        except VolcastError as error:
            return row | {"forecast": None, "note": str(error)}
        day = frame.head(max(1, DAY_MS // key.tf_ms))
        q90 = day["q90"] if day["q90"].notna().all() else day["q50"]
        return row | {"forecast": {
            "candles": len(day), "from": int(day["ds"].iloc[0]),
            "expected_volume": float(day["q50"].sum()), "p90_volume": float(q90.sum()),
            "peak_p90": float(q90.max()),
            "share_over_threshold": None if threshold is None
            else float((q90 > threshold).mean())}, "note": None}

    # -- backtests ------------------------------------------------------------------------
    def backtests(self, key: SeriesKey, model: str | None
                  ) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
        """(model, predictions, scores file) of every stored backtest of this series."""
        from volcast.evaluation.predictions import read_predictions, scores_path

        self.bounds(key)
        base = self.folder(key, "_").parent
        found = []
        for path in sorted(base.glob("*/backtest.csv")) if base.exists() else []:
            if model is None or path.parent.name == model:
                name, frame = read_predictions(path)
                found.append((name, frame, json.loads(scores_path(path).read_text())))
        return found

    # -- jobs -----------------------------------------------------------------------------
    def run_fetch(self, job: Job, since: int | None) -> dict[str, Any]:
        from volcast.data.sync import fetch

        def progress(_key: SeriesKey, added: int, done: int, total: int) -> None:
            job.progress(done, total, f"{added} new candles")

        async def cancellable() -> list[Any]:
            task = asyncio.ensure_future(fetch(
                job.key.exchange, [job.key], self.store, self.fetch_settings, since=since,
                url=self.exchange_url, progress=progress))
            while not task.done():
                if job.cancel_requested.is_set():
                    task.cancel()
                await asyncio.wait([task], timeout=0.2)
            return task.result()

        try:
            result = asyncio.run(cancellable())[0]
        except asyncio.CancelledError:
            raise JobCancelled from None
        if result.error:
            raise VolcastError(result.error)
        return {"added": result.added, "requests": result.pages, "first": result.first,
                "last": result.last}

    def run_train(self, job: Job, settings: dict[str, Any]) -> dict[str, Any]:
        model = create(job.model or "lstm", settings)

        def progress(epoch: int, epochs: int, loss: float, val: float) -> None:
            job.progress(epoch, epochs, f"epoch {epoch}: train {loss:.4f}, validation {val:.4f}")

        model.fit(self.long(job.key), progress)
        folder = self.folder(job.key, model.name)
        model.save(folder)
        return {"model_dir": str(folder), "training": model.info}

    def run_backtest(self, job: Job, settings: dict[str, Any]) -> dict[str, Any]:
        """The protocol's backtest of the model and of every reference model beside it (they
        take seconds), each written to its folder for GET /api/backtests."""
        from volcast.evaluation.compare import run_backtests
        from volcast.evaluation.predictions import write_predictions

        name = job.model or "lstm"
        results = run_backtests([name, *REFERENCE_MODELS], {name: settings},
                                self.long(job.key), self.protocol, None, JobProgress(job))
        for result in results:
            write_predictions(result, self.folder(job.key, result.model) / "backtest.csv")
        return {"scores": {r.model: r.scores["overall"] for r in results}}


@dataclass
class JobProgress:
    """``compare.Progress`` for a job: training epochs, then forecasts per origin."""

    job: Job

    def epochs(self, model: str) -> EpochProgress:
        def update(epoch: int, epochs: int, loss: float, val: float) -> None:
            self.job.progress(0, 1, f"{model}: training before the cutoff, epoch {epoch} of "
                                    f"{epochs}")
        return update

    def origins(self, model: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            self.job.progress(done, total, f"{model}: forecast {done} of {total}")
        return update
