"""Flows on long frames, whatever their source: which models a backtest compares, how a
config file's ``[model.NAME]`` table meets command-line flags, training and backtesting.
``Workspace`` runs them on stored series and keeps what they make; the CLI runs them on files
too."""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from volcast.config import Settings, merge
from volcast.data.store import CandleStore
from volcast.errors import VolcastError
from volcast.evaluation.backtest import BacktestResult
from volcast.evaluation.compare import Progress, run_backtests
from volcast.models import REFERENCE_MODELS, create, model_class
from volcast.models.base import EpochProgress, Forecaster
from volcast.models.lstm.settings import NeuralSettings
from volcast.workspace.sources import with_covariates

if TYPE_CHECKING:
    from volcast.viz.report import ReportInputs

COMPARED_WITH = "mstl"
"""The classical model every learned model is also compared with (besides the references)."""


def compared(names: Sequence[str]) -> list[str]:
    """The models of a backtest: one model alone; several, with every reference model added
    (the floor each learned model must beat)."""
    wanted = list(dict.fromkeys(names))
    if len(wanted) > 1:
        wanted += [r for r in REFERENCE_MODELS if r not in wanted]
    return wanted


def versus(model: str) -> list[str]:
    """A model against MSTL and the references: what the dashboard, the report and the demo
    show."""
    return compared([model, COMPARED_WITH])


def model_settings(settings: Settings, name: str, flags: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """``[model.NAME]`` from the config file, overridden by ``flags``."""
    return merge(settings.model.get(name, {}), flags or {})


def model_flags(name: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The CLI's model flags are the neural models' settings: each reaches the neural models
    (LSTM, ensemble, transformer) that have a setting of its name, and no other model."""
    fields = model_class(name).Settings.model_fields
    if not issubclass(model_class(name).Settings, NeuralSettings):
        return {}
    return {key: value for key, value in flags.items() if key in fields}


def check_flags(names: Sequence[str], flags: dict[str, Any]) -> None:
    """Refuse, in one line, a flag none of the chosen models has (``--hidden-size`` for the
    transformer alone, ``--epochs`` for MSTL) rather than ignore it."""
    used = {key for name in names for key in model_flags(name, flags)}
    unused = [key for key in flags if key not in used]
    if unused:
        flag = "--" + unused[0].replace("_", "-")
        raise VolcastError(f"{flag} is not a setting of {' or '.join(names)}; the model "
                           "settings flags reach lstm, ensemble and transformer where they "
                           "have that setting")


def make(settings: Settings, name: str, flags: dict[str, Any] | None = None) -> Forecaster:
    """A new model: defaults < [model.NAME] in the config < flags (validated, one-line errors)."""
    return create(name, model_settings(settings, name, flags))


def fit(settings: Settings, name: str, flags: dict[str, Any] | None, long: pd.DataFrame,
        progress: EpochProgress | None = None, store: CandleStore | Path | None = None
        ) -> Forecaster:
    """Train one model (global over every series of ``long``); the covariates it reads come
    from ``store`` (``sources.with_covariates``)."""
    model = make(settings, name, flags)
    model.fit(with_covariates(long, [model], store), progress)
    return model


def backtest_frames(settings: Settings, names: Sequence[str],
                    overrides: dict[str, dict[str, Any]] | None,
                    long: pd.DataFrame, extra: pd.DataFrame | None = None,
                    cutoff: int | None = None, progress: Progress | None = None,
                    store: CandleStore | Path | None = None) -> list[BacktestResult]:
    """The protocol's backtest of ``names`` and what they are compared with, on one series,
    with per-model ``overrides`` of their settings; global models also learn from ``extra``
    (before the cutoff). Covariates any of them reads come from ``store``, as they were public
    at each candle's close, so an origin sees none published after it."""
    wanted = compared(names)
    models = [make(settings, n, (overrides or {}).get(n)) for n in wanted]
    long = with_covariates(long, models, store)
    extra = None if extra is None else with_covariates(extra, models, store)
    return run_backtests(models, long, settings.backtest,
                         cutoff, progress, extra, optional=set(wanted) - set(names))


def report_inputs(series: pd.DataFrame, forecaster: Forecaster, backtests: list[BacktestResult],
                  horizon: int, tz: str = "UTC", forecast: pd.DataFrame | None = None,
                  unit: str = "base", unit_name: str = "base units") -> "ReportInputs":
    """What the report shows of one series: its analysis (in ``tz``) and the forecast of its
    next ``horizon`` candles (made here unless given); ``y`` is ``unit`` volume, counted in
    ``unit_name`` (BTC)."""
    from volcast.analysis import analyze_series
    from volcast.viz.report import ReportInputs, trained_note

    name = str(series["unique_id"].iloc[0])
    series = series.sort_values("ds").reset_index(drop=True)
    if forecast is None:
        forecast = forecaster.predict(series, horizon)
    return ReportInputs(name, series, analyze_series(name, series, tz, unit=unit_name),
                        forecast, forecaster.name, trained_note(forecaster.info), backtests, tz,
                        unit)
