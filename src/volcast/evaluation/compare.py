"""Several models through the same protocol on the same series, reference models included,
and how each compares with the best reference (the floor every learned model must beat)."""

from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

from volcast.config import BacktestSettings
from volcast.errors import VolcastError
from volcast.evaluation.backtest import BacktestResult, backtest
from volcast.models import REFERENCE_MODELS, create
from volcast.models.base import EpochProgress


class Progress(Protocol):
    def epochs(self, model: str) -> EpochProgress: ...
    def origins(self, model: str) -> Any: ...


def run_backtests(names: Sequence[str], settings: dict[str, dict[str, Any]], long: pd.DataFrame,
                  protocol: BacktestSettings, cutoff: int | None, progress: Progress | None,
                  extra: pd.DataFrame | None = None) -> list[BacktestResult]:
    """Backtest each named model; with more than one, add every reference model too.
    ``extra`` series are learned from (before the cutoff) by global models, never tested.
    A reference added for comparison that cannot forecast this far on this timeframe (a daily
    series has no 24-step hour-of-day median) is left out; a model asked for by name is not."""
    wanted = list(names) + ([r for r in REFERENCE_MODELS if r not in names]
                            if len(names) > 1 else [])
    results = []
    for name in wanted:
        model = create(name, settings.get(name))
        try:
            results.append(backtest(
                model, long, horizon=protocol.horizon, cutoff=cutoff,
                test_days=protocol.test_days,
                progress=progress.origins(name) if progress else None,
                epoch_progress=progress.epochs(name) if progress else None,
                extra=extra if model.supports_global else None))
        except VolcastError:
            if name in names:
                raise
    return results


def versus_best_reference(results: Sequence[BacktestResult]) -> dict[str, float]:
    """MAE of each model relative to the best reference model's (negative = better)."""
    references = [r for r in results if r.model in REFERENCE_MODELS]
    if not references:
        return {}
    best = min(r.scores["overall"]["mae"] for r in references)
    return {r.model: r.scores["overall"]["mae"] / best - 1 for r in results}


def verdicts(results: Sequence[BacktestResult]) -> list[str]:
    """One plain sentence per learned model: does it beat the best reference, by how much?
    (USERS.md: LSTMs on hourly series often lose to seasonal naive; say so when they do.)"""
    references = [r for r in results if r.model in REFERENCE_MODELS]
    if not references:
        return []
    best = min(references, key=lambda r: r.scores["overall"]["mae"])
    floor = best.scores["overall"]["mae"]
    out = []
    for r in results:
        if r.model in REFERENCE_MODELS:
            continue
        mae = r.scores["overall"]["mae"]
        gap = mae / floor - 1
        verdict = (f"{-gap:.1%} below" if gap < 0 else
                   f"{gap:.1%} ABOVE (worse than)")
        tail = "" if gap < 0 else ": it does not beat the seasonal reference"
        out.append(f"{r.model}: MAE {mae:,.2f}, {verdict} the best reference model "
                   f"({best.model}, {floor:,.2f}){tail}")
    return out
