"""Several models through the same protocol on the same series, reference models included,
and how each compares with the best reference (the floor every learned model must beat)."""

from collections.abc import Collection, Sequence
from typing import Any, Protocol

import pandas as pd

from volcast.config import BacktestSettings
from volcast.data.frames import step_ms
from volcast.evaluation.backtest import BacktestResult, backtest
from volcast.models.base import EpochProgress, Forecaster


class Progress(Protocol):
    def epochs(self, model: str) -> EpochProgress: ...
    def origins(self, model: str) -> Any: ...


def run_backtests(models: Sequence[Forecaster], long: pd.DataFrame,
                  protocol: BacktestSettings, cutoff: int | None, progress: Progress | None,
                  extra: pd.DataFrame | None = None, optional: Collection[str] = ()
                  ) -> list[BacktestResult]:
    """Backtest each model on one series. ``extra`` series are learned from (before the
    cutoff) by global models, never tested. A model named in ``optional`` (added only for
    comparison) that cannot forecast the protocol's horizon on this timeframe (a daily series
    has no 24-step hour-of-day median) is left out; any other model that cannot is an
    error."""
    step = step_ms(long["ds"])
    results = []
    for model in models:
        reach = model.max_horizon(step)
        if model.name in optional and reach is not None and reach < protocol.horizon:
            continue
        results.append(backtest(
            model, long, horizon=protocol.horizon, cutoff=cutoff, test_days=protocol.test_days,
            progress=progress.origins(model.name) if progress else None,
            epoch_progress=progress.epochs(model.name) if progress else None,
            extra=extra if model.supports_global else None))
    return results


def versus_best_reference(results: Sequence[BacktestResult]) -> dict[str, float]:
    """MAE of each model relative to the best reference model's (negative = better)."""
    references = [r for r in results if r.forecaster.is_reference]
    if not references:
        return {}
    best = min(r.scores["overall"]["mae"] for r in references)
    return {r.model: r.scores["overall"]["mae"] / best - 1 for r in results}


def verdicts(results: Sequence[BacktestResult]) -> list[str]:
    """One plain sentence per learned model: does it beat the best reference, by how much?
    (USERS.md: LSTMs on hourly series often lose to seasonal naive; say so when they do.)"""
    references = [r for r in results if r.forecaster.is_reference]
    if not references:
        return []
    best = min(references, key=lambda r: r.scores["overall"]["mae"])
    floor = best.scores["overall"]["mae"]
    out = []
    for r in results:
        if r.forecaster.is_reference:
            continue
        mae = r.scores["overall"]["mae"]
        gap = mae / floor - 1
        verdict = (f"{-gap:.1%} below" if gap < 0 else
                   f"{gap:.1%} ABOVE (worse than)")
        tail = "" if gap < 0 else ": it does not beat the seasonal reference"
        out.append(f"{r.model}: MAE {mae:,.2f}, {verdict} the best reference model "
                   f"({best.model}, {floor:,.2f}){tail}")
    return out
