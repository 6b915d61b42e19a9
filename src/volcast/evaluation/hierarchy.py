"""Forecasts of an exchange's total and of each of its markets that add up, and the protocol's
backtest of them against forecasting each series on its own.

The hierarchy has one level: the total is the sum of its markets (``data.totals``), all in the
quote currency. Each series is forecast on its own by one base model. What adds up is the
expected volume: means are linear, medians and other quantiles are not (volume is right-skewed,
so each market's median lies below its mean and the sum of many markets' medians falls short of
the total). Each forecast's mean is estimated from its quantiles (``with_mean``: a log-normal
fitted to q50/q90), reconciliation (Nixtla's hierarchicalforecast) maps the base means to
coherent ones, so that at every candle the total's mean is the sum of the markets', and each
series' quantiles move by the change reconciliation made to its mean: its distribution is
translated, its shape kept. Methods that weigh the series by their errors (``wls_var``,
``mint_shrink``, ``erm``) learn the weights from the base model's forecasts over a validation
window just before the test, and only there.

The total's interval is then calibrated on its own: its distances from the median below and
above are scaled so that, on the validation window, 10% of the actual totals fall below q10
and 10% above q90 (split conformal). The markets keep their own intervals (docs/totals.md).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.config import BacktestSettings
from volcast.data.frames import step_ms
from volcast.data.timeframe import DAY_MS, format_time
from volcast.errors import VolcastError
from volcast.evaluation.backtest import backtest, default_cutoff
from volcast.evaluation.compare import Progress
from volcast.evaluation.scores import naive_scale, score
from volcast.models.base import Forecaster

METHODS = ("bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink", "erm")
"""Reconciliation methods: hierarchicalforecast's BottomUp, MinTrace(ols, wls_struct, wls_var,
mint_shrink) and ERM(closed)."""
DEFAULT_METHOD = "bottom_up"
"""The method that backtested best on real Binance markets (docs/totals.md has the figures)."""
QUANTILES = ("q10", "q50", "q90")
Z90 = 1.2815515655446004
"""The standard normal's 90% quantile: a log-normal's q90 is its median times exp(Z90 sigma)."""
COVERAGE = 0.8
"""The interval [q10, q90] should hold 80% of actual values."""
VALIDATION_DAYS = 28.0
"""The window before the test that reconciliation weights and the total's calibration learn
from: four weeks of daily origins."""
DIRECT = "direct"
"""The forecast of a series on its own, before reconciliation."""
MARKET_TOLERANCE = 0.01
"""How much worse than its own forecast a market's reconciled MAE may be (the issue's target:
the total no worse than forecast directly, each market within 1% of its own)."""


def check_method(method: str) -> str:
    if method not in METHODS:
        raise VolcastError(f"unknown reconciliation method '{method}'; choose one of "
                           f"{', '.join(METHODS)}")
    return method


def _reconciler(method: str) -> object:
    from hierarchicalforecast.methods import ERM, BottomUp, MinTrace

    if method == "bottom_up":
        return BottomUp()
    if method == "erm":
        return ERM(method="closed")
    return MinTrace(method=method)


def with_mean(forecasts: pd.DataFrame) -> pd.DataFrame:
    """``forecasts`` with ``mean``: the expected value of each row's forecast, estimated from
    its quantiles as a log-normal's (volume is positive and right-skewed) whose sigma is set by
    the upper distance, sigma = log(q90 / q50) / Z90: the mean of a right-skewed volume is
    carried by its upper tail, while the lower side, bounded by zero, says little about it
    (180 markets: docs/totals.md). mean = q50 exp(sigma^2 / 2), never below q50. Without an
    interval (a point forecast, NaN quantiles) the mean is the median. A median of zero (an
    illiquid market, idle most hours) has no log-normal: its mean is the area under the
    quantiles' piecewise-linear function, flat above q90 (a lower bound: 0.3 q90 when q10 is
    0 too), so that the market's expected volume still counts in the total's sum."""
    q10, q50, q90 = (forecasts[q].to_numpy(float) for q in QUANTILES)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.log(q90 / q50) / Z90
    known = np.isfinite(sigma) & (q50 > 0)
    mean = q50 * np.exp(np.where(known, sigma, 0.0) ** 2 / 2)
    idle = (q50 <= 0) & (q90 > 0)
    low = np.where(np.isfinite(q10), q10, q50)  # no q10: the median below it, a lower bound
    area = 0.1 * low / 2 + 0.4 * (low + q50) / 2 + 0.4 * (q50 + q90) / 2 + 0.1 * q90
    return forecasts.assign(mean=np.where(idle, np.maximum(area, q50), mean))


def reconcile(forecasts: pd.DataFrame, total: str, method: str,
              insample: pd.DataFrame | None = None) -> pd.DataFrame:
    """``forecasts`` (``unique_id, ds``, ``mean`` and the quantiles ``q10, q50, q90``, every
    series at the same ``ds``; other columns kept) with the means reconciled, so that at every
    ``ds`` the total's is the sum of the markets', and each series' quantiles moved by the
    change made to its mean (bottom-up changes no market). ``insample`` (``unique_id, ds, y,
    mean``: the base model's forecasts of earlier candles) is what methods that weigh series
    by their errors learn from. Quantiles a model does not give (NaN) stay NaN."""
    from hierarchicalforecast.core import HierarchicalReconciliation

    check_method(method)
    markets = sorted(u for u in forecasts["unique_id"].unique() if u != total)
    ids = [total, *markets]
    summing = pd.DataFrame(np.vstack([np.ones(len(markets)), np.eye(len(markets))]),
                           columns=markets).assign(unique_id=ids)[["unique_id", *markets]]
    tags = {"total": np.array([total]), "total/market": np.array(markets)}
    base = forecasts[["unique_id", "ds", "mean"]].sort_values(["unique_id", "ds"])
    learned = None if insample is None else insample[["unique_id", "ds", "y", "mean"]]\
        .sort_values(["unique_id", "ds"])
    done = HierarchicalReconciliation([_reconciler(method)]).reconcile(
        Y_hat_df=base, tags=tags, S_df=summing, Y_df=learned)
    made = next(n for n in done.columns if n.startswith("mean/"))
    moved = forecasts.merge(done[["unique_id", "ds", made]], on=["unique_id", "ds"])
    shift = moved.pop(made) - moved["mean"]
    return moved.assign(**{c: moved[c] + shift for c in ("mean", *QUANTILES)})


def interval_factors(y: np.ndarray, q10: np.ndarray, q50: np.ndarray, q90: np.ndarray,
                     coverage: float = COVERAGE) -> tuple[float, float]:
    """(lower, upper): the scales of the distances from the median below (q50 - q10) and above
    (q90 - q50) that leave (1 - coverage) / 2 of the actual values beyond each side, with the
    finite-sample correction of split conformal prediction; NaN where no interval is known
    (a point forecast)."""
    tail = 1 - (1 - coverage) / 2

    def scale(beyond: np.ndarray, distance: np.ndarray) -> float:
        ok = np.isfinite(beyond) & np.isfinite(distance) & (distance > 0)
        ratios = np.sort(beyond[ok] / distance[ok])
        if len(ratios) == 0:
            return math.nan
        rank = min(math.ceil((len(ratios) + 1) * tail), len(ratios))
        return float(max(ratios[rank - 1], 0.0))

    return scale(q50 - y, q50 - q10), scale(y - q50, q90 - q50)


def scale_intervals(frame: pd.DataFrame, factors: tuple[float, float]) -> pd.DataFrame:
    """``frame``'s distances from the median scaled by (lower, upper); its median and mean
    stay as they are."""
    lower, upper = factors
    return frame.assign(q10=frame["q50"] - lower * (frame["q50"] - frame["q10"]),
                        q90=frame["q50"] + upper * (frame["q90"] - frame["q50"]))


@dataclass(frozen=True)
class HierarchyBacktest:
    """The protocol's backtest of a total and its markets: ``scores`` has one row per series
    and forecast (``direct``, or a reconciliation method): n, mae, coverage, pinball;
    ``predictions`` the reconciled forecasts of ``method`` (``unique_id`` and the protocol's
    columns), ``factors`` the total's interval scales (lower, upper) per method."""

    total: str
    method: str
    cutoff: int
    validation_start: int
    scores: pd.DataFrame
    predictions: pd.DataFrame
    factors: dict[str, tuple[float, float]]


def backtest_hierarchy(make: Callable[[], Forecaster], long: pd.DataFrame, total: str,
                       protocol: BacktestSettings, method: str = DEFAULT_METHOD,
                       cutoff: int | None = None, validation_days: float = VALIDATION_DAYS,
                       progress: Progress | None = None) -> HierarchyBacktest:
    """Backtest the base model ``make()`` on every series of ``long`` (the total and its
    markets, one grid) at the protocol's origins, reconcile its forecasts with every method
    (weights and the total's calibration learned on the ``validation_days`` before the
    cutoff, from forecasts made there the same way) and score each series direct and
    reconciled. ``method``: whose reconciled forecasts are returned."""
    check_method(method)
    step = step_ms(long.loc[long["unique_id"] == total, "ds"].sort_values())
    cutoff = default_cutoff(long["ds"], step, protocol.test_days) if cutoff is None else cutoff
    start = cutoff - round(validation_days * DAY_MS / step) * step
    if start <= int(long["ds"].min()):
        raise VolcastError(f"the {validation_days:g} validation days before the test leave no "
                           f"history before them (the series start {format_time(long['ds'].min())}"
                           " UTC): store more history, or shorten the validation or test days")
    test = _base(make, long, cutoff, protocol.horizon, progress, "test")
    valid = _base(make, long[long["ds"] < cutoff], start, protocol.horizon, progress,
                  "validation")
    scales = {uid: naive_scale(series[series["ds"] < cutoff], step)
              for uid, series in long.groupby("unique_id")}
    insample = valid.rename(columns={"y_true": "y"})
    insample = insample[insample.groupby("ds")["y"].transform(lambda y: y.notna().all())]
    # ^ error weights compare the series' errors at the same candles: every actual known
    if not valid.loc[valid["unique_id"] == total, "y_true"].notna().any():
        raise VolcastError("the validation window has no candle that every series was forecast "
                           "at and the total has: store more history, or lengthen "
                           "--validation-days")
    rows = _scored(test, scales, DIRECT)
    kept, factors = pd.DataFrame(), {}
    for name in METHODS:
        both = reconcile(pd.concat([valid, test], ignore_index=True), total, name, insample)
        at_total = both[(both["unique_id"] == total) & (both["ds"] < cutoff)]
        factors[name] = interval_factors(*(at_total[c].to_numpy(float) for c in (
            "y_true", *QUANTILES)))
        reconciled = _calibrated(both[both["ds"] >= cutoff], total, factors[name])
        rows += _scored(reconciled, scales, name)
        if name == method:
            kept = reconciled
    predictions = kept.rename(columns={"ds": "timestamp", "q50": "y_pred"})[
        ["unique_id", "origin", "timestamp", "step", "y_true", "y_pred", "mean", "q10", "q90"]]
    return HierarchyBacktest(total, method, cutoff, start, pd.DataFrame(rows),
                             predictions.sort_values(["unique_id", "timestamp"]).reset_index(
                                 drop=True), factors)


def _calibrated(frame: pd.DataFrame, total: str, factors: tuple[float, float]
                ) -> pd.DataFrame:
    """``frame`` with the total's interval scaled by its ``factors``; the markets' untouched."""
    at_total = frame["unique_id"] == total
    return pd.concat([scale_intervals(frame[at_total], factors), frame[~at_total]]
                     ).sort_index()


def _base(make: Callable[[], Forecaster], long: pd.DataFrame, cutoff: int, horizon: int,
          progress: Progress | None, part: str) -> pd.DataFrame:
    """The base model's forecasts of every series from every origin after ``cutoff`` (the
    protocol's ``backtest``; a global model is trained once on every series before the
    cutoff): ``unique_id, origin, ds, step, y_true, q10, q50, q90, mean``, only the candles
    every series has a forecast of. ``progress`` shows the series done, and a shared training's
    epochs."""
    model = make()
    shared = model.learns_once
    if shared:
        model.fit(long[long["ds"] < cutoff],
                  progress.epochs(f"{model.name} ({part})") if progress else None)
    frames = []
    groups = long.groupby("unique_id", sort=True)
    done = progress.origins(f"{model.name} ({part}, per series)") if progress else None
    for number, (uid, series) in enumerate(groups, 1):
        own = model if shared or not model.needs_fitting else make()
        result = backtest(own, series, horizon=horizon, cutoff=cutoff, fit=not shared)
        frames.append(result.predictions.rename(columns={"timestamp": "ds", "y_pred": "q50"})
                      .assign(unique_id=uid))
        if done:
            done(number, len(groups))
    forecasts = pd.concat(frames, ignore_index=True)
    everyone = forecasts.groupby("ds")["unique_id"].transform("size") == len(frames)
    return with_mean(forecasts[everyone].reset_index(drop=True))


def _scored(forecasts: pd.DataFrame, scales: dict[str, float], forecast: str
            ) -> list[dict[str, object]]:
    """One row per series: the protocol's overall scores of these forecasts."""
    rows = []
    for uid, part in forecasts.groupby("unique_id", sort=True):
        overall = score(part.rename(columns={"ds": "timestamp", "q50": "y_pred"}),
                        scales[uid])["overall"]
        rows.append({"series": uid, "forecast": forecast, "n": int(overall["n"]),
                     "mae": overall["mae"], "coverage": overall["coverage"],
                     "pinball": overall["pinball"]})
    return rows


def methods_compared(result: HierarchyBacktest) -> pd.DataFrame:
    """One row per method: the total's MAE change against its direct forecast, the markets'
    worst and mean MAE change against their own (fractions), the total's and the markets'
    mean [q10, q90] coverage, and the total's interval scales; best total first."""
    scores = result.scores.set_index(["forecast", "series"])
    direct = scores.loc[DIRECT]
    rows = []
    for name in METHODS:
        change = scores.loc[name]["mae"] / direct["mae"] - 1
        markets = change.drop(result.total)
        coverage = scores.loc[name]["coverage"]
        rows.append({"method": name, "total_change": change[result.total],
                     "worst_market_change": markets.max(), "mean_market_change": markets.mean(),
                     "total_coverage": coverage[result.total],
                     "markets_coverage": coverage.drop(result.total).mean(),
                     "lower": result.factors[name][0], "upper": result.factors[name][1]})
    return pd.DataFrame(rows).sort_values("total_change", kind="stable").reset_index(drop=True)


def verdict(result: HierarchyBacktest) -> str:
    """One plain sentence on the chosen method against the targets: the total no worse than
    its direct forecast, every market within ``MARKET_TOLERANCE`` of its own."""
    row = methods_compared(result).set_index("method").loc[result.method]
    total = (f"the total's MAE {abs(row.total_change):.2%} "
             f"{'below' if row.total_change <= 0 else 'ABOVE'} its direct forecast's")
    worst = row.worst_market_change
    markets = (f"every market within {MARKET_TOLERANCE:.0%} of its own forecast (worst "
               f"{worst:+.2%})" if worst <= MARKET_TOLERANCE else
               f"a market {worst:+.2%} worse than its own forecast (target: within "
               f"{MARKET_TOLERANCE:.0%})")
    return f"{result.method}: {total}; {markets}"
