"""The nowcast of the open candle: its expected final volume (q10/q50/q90) from the minutes
already traded in it and the forecast made for it at its start (the prior).

Why this shape. A candle's final volume is what has traded (known) plus what remains; only the
remainder is forecast, so the nowcast never falls below the volume already traded and reaches
it exactly at the close. The remainder's rate is a weighted geometric mean of two estimates:

- the *pace so far*, ``so_far / share(e)``: ``share(e)`` is the typical fraction of a candle's
  volume traded by the elapsed fraction ``e`` (learned, not assumed linear);
- the *prior*, the serving model's q50 for this candle, which knows the hour's usual level.

In log space::

    log remaining = log(1 - share) + w(e) * log(so_far / share) + (1 - w(e)) * log(prior) + c(e)

``w`` (clipped to [0, 1]) and ``c`` are fitted by least squares at each point of a grid of
elapsed fractions (one per minute of an hour), so the pace takes over from the prior as the
candle fills up. Early minutes are noisy (one burst of trades), late ones are informative. The
weights sum to one, so the fit carries no unit: parameters learned on BTC serve ETH. Quantiles
come from the empirical distribution of actual / estimated remainder at each grid point
(held-in residuals), which keeps them ordered and positive. Between grid points every
parameter is interpolated linearly in ``e``, so any candle length works given the fraction.

Without a prior (none yet, or a q50 of 0) ``w = 1``: the pace alone, with its own fitted bias
and quantiles. At ``e = 0`` the nowcast is the prior itself (its q50; q10/q90 from how far the
prior's candles fell from it in training); with neither a prior nor anything traded nothing is
known and every quantile is the volume so far.

Parameters are JSON (``save``/``load``; never pickle); ``nowcast_default.json`` beside this
module was fitted by ``bench/nowcast.py --write-default`` (docs/nowcast.md).
"""

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from volcast.errors import VolcastError
from volcast.evaluation.backtest import backtest
from volcast.models.base import Forecaster

MINUTE_MS = 60_000
MOST_POINTS = 60
"""Grid points per candle: one per minute of an hour; longer candles are sampled as often."""
QUANTILES = (0.1, 0.5, 0.9)
DEFAULT_FILE = "nowcast_default.json"

Ratios = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)],
               Annotated[float, Field(ge=0)]]


class NowcastParams(BaseModel):
    """What a fit learned, as saved. A params file is untrusted input: shapes, ranges and order
    are all checked here before any of it is used."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    format: Literal["volcast-nowcast"] = "volcast-nowcast"
    format_version: Literal[1] = 1
    candle_ms: int = Field(gt=0)
    grid: list[float] = Field(min_length=3, max_length=10_000)
    share: list[float]
    weight: list[Annotated[float, Field(ge=0, le=1)]]
    bias: list[float]
    bias_alone: list[float]
    ratios: list[Ratios]
    ratios_alone: list[Ratios]
    training: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        n = len(self.grid)
        columns = (self.share, self.weight, self.bias, self.bias_alone, self.ratios,
                   self.ratios_alone)
        if any(len(column) != n for column in columns):
            raise ValueError(f"every per-point list must have the grid's {n} entries")
        grid, share = np.array(self.grid), np.array(self.share)
        if grid[0] != 0 or grid[-1] != 1 or np.any(np.diff(grid) <= 0):
            raise ValueError("the grid must rise strictly from 0 to 1")
        if share[0] != 0 or share[-1] != 1 or np.any(np.diff(share) < 0):
            raise ValueError("the shares must rise from 0 to 1")
        if not (share[1] > 0 and share[-2] < 1):
            raise ValueError("the shares strictly inside the candle must be within (0, 1)")
        for ratios in (self.ratios, self.ratios_alone):
            if any(not low <= mid <= high for low, mid, high in ratios):
                raise ValueError("the quantile ratios must be ordered q10 <= q50 <= q90")
        return self


class Nowcaster:
    """Nowcasts of an open candle, from a fit on closed 1-minute candles (``fit``) or from
    saved parameters (``load``, ``default``)."""

    def __init__(self, params: NowcastParams) -> None:
        self.params = params
        self._grid = np.array(params.grid)
        self._table = np.column_stack([params.share, params.weight, params.bias,
                                       params.bias_alone, params.ratios, params.ratios_alone])

    @classmethod
    def fit(cls, minutes: pd.DataFrame, candle_ms: int, priors: pd.DataFrame | None) -> Self:
        """Learn from closed 1-minute candles (long frame: ``ds``, ``y``, and ``unique_id``
        when several series) grouped into candles of ``candle_ms``, and from ``priors``: the
        forecast made at each candle's start (``ds`` = its open time, ``q50``, and
        ``unique_id`` as in ``minutes``), as models' forecasts come. Only complete candles
        count; those without a prior teach the pace-only estimate alone."""
        cum, final, prior, series = _candles(minutes, candle_ms, priors)
        grid, at_points = _on_grid(cum, candle_ms)
        share = _shares(at_points, final)
        columns = [_fit_point(at_points[:, k - 1], final, prior, share[k])
                   for k in range(1, len(grid) - 1)]
        first = _prior_point(final, prior, columns[0])
        table = [first, *columns, (1.0, 1.0, 0.0, 0.0, (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))]
        weight, bias, alone, ratios, ratios_alone = (list(c) for c in zip(
            *[row[1:] for row in table], strict=True))
        return cls(_params(
            candle_ms=candle_ms, grid=grid.tolist(), share=share.tolist(), weight=weight,
            bias=bias, bias_alone=alone, ratios=ratios, ratios_alone=ratios_alone,
            training={"candles": len(final), "with_prior": int(np.isfinite(prior).sum()),
                      "series": series}))

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            text = path.read_text()
        except OSError as exc:
            raise VolcastError(f"cannot read nowcast parameters {path}: {exc.strerror}") from None
        try:
            return cls(_params(**json.loads(text)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise VolcastError(f"{path} is not a nowcast parameters file: {exc}") from None
        except VolcastError as exc:
            raise VolcastError(f"{path}: {exc}") from None

    @classmethod
    def default(cls) -> Self:
        """The parameters shipped with volcast (fitted on Binance.US BTC 1-minute candles of
        March 2023 with ``hour_of_day_median_7d`` priors; see docs/nowcast.md)."""
        with resources.as_file(resources.files(__package__) / DEFAULT_FILE) as path:
            return cls.load(path)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.params.model_dump(mode="json"), indent=1) + "\n")

    def nowcast(self, so_far: float, elapsed: float, prior_q50: float | None,
                open_ms: int | None = None) -> dict[str, float]:
        """The open candle's expected final volume: ``q10``, ``q50``, ``q90``.

        ``so_far``: volume traded in the candle up to now; ``elapsed``: the fraction of the
        candle gone by on the exchange clock, in [0, 1]; ``prior_q50``: the forecast made for
        this candle at its start, None (or 0) when there is none; ``open_ms``: the candle's
        open time, only checked (the fit pools every hour of the day)."""
        _check(so_far, elapsed, prior_q50, open_ms)
        has_prior = prior_q50 is not None and prior_q50 > 0
        if elapsed == 1 or (not has_prior and (elapsed == 0 or so_far == 0)):
            return dict.fromkeys(("q10", "q50", "q90"), float(so_far))
        row = np.array([np.interp(elapsed, self._grid, column) for column in self._table.T])
        share, weight, bias, alone = row[:4]
        if not has_prior:  # the pace alone
            log_rate, ratios = np.log(so_far / share) + alone, row[7:10]
        else:
            weight = weight if so_far > 0 else 0.0
            pace = np.log(so_far / share) if so_far > 0 else 0.0
            log_rate = weight * pace + (1 - weight) * np.log(prior_q50) + bias
            ratios = row[4:7]
        remaining = (1 - share) * np.exp(log_rate)
        return {f"q{round(q * 100)}": float(so_far + remaining * r)
                for q, r in zip(QUANTILES, ratios, strict=True)}


def _params(**fields: Any) -> NowcastParams:
    """Checked parameters; the first complaint as one line (never the whole, long input)."""
    try:
        return NowcastParams(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "parameters"
        raise VolcastError(f"nowcast {where}: {first['msg']}") from None


def _check(so_far: float, elapsed: float, prior_q50: float | None, open_ms: int | None) -> None:
    if not (np.isfinite(so_far) and so_far >= 0):
        raise VolcastError(f"the volume so far must be a number >= 0, not {so_far}")
    if not (np.isfinite(elapsed) and 0 <= elapsed <= 1):
        raise VolcastError(f"the elapsed fraction of the candle must be within [0, 1], not "
                           f"{elapsed}")
    if prior_q50 is not None and not (np.isfinite(prior_q50) and prior_q50 >= 0):
        raise VolcastError(f"the prior forecast must be a number >= 0 or none, not {prior_q50}")
    if open_ms is not None and open_ms < 0:
        raise VolcastError(f"the candle's open time must be >= 0 ms, not {open_ms}")


def minute_table(minutes: pd.DataFrame, candle_ms: int) -> pd.DataFrame:
    """Complete candles of ``candle_ms`` from 1-minute candles (long frame: ``ds``, ``y``,
    ``unique_id`` when several series): one row per (unique_id, open time), one column per
    minute of the candle holding that minute's volume. Candles missing a minute are left out."""
    if candle_ms < 2 * MINUTE_MS or candle_ms % MINUTE_MS:
        raise VolcastError(f"a nowcast needs candles of whole minutes, at least 2, not "
                           f"{candle_ms} ms")
    missing = {"ds", "y"} - set(minutes.columns)
    if missing:
        raise VolcastError(f"the 1-minute candles lack column(s) {', '.join(sorted(missing))}")
    frame = minutes.assign(unique_id=minutes.get("unique_id", ""))[["unique_id", "ds", "y"]]
    if not (frame["y"].notna().all() and (frame["y"] >= 0).all()):
        raise VolcastError("the 1-minute volumes must be numbers >= 0")
    frame = frame.drop_duplicates(["unique_id", "ds"]).assign(
        open=lambda f: f["ds"] // candle_ms * candle_ms,
        minute=lambda f: (f["ds"] % candle_ms) // MINUTE_MS)
    wide = frame.pivot_table(index=["unique_id", "open"], columns="minute", values="y",
                             aggfunc="sum").reindex(columns=range(candle_ms // MINUTE_MS))
    return wide[wide.notna().all(axis=1)]


def _candles(minutes: pd.DataFrame, candle_ms: int, priors: pd.DataFrame | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(cumulative volume after each minute [N, L], final volume [N], prior q50 [N] (NaN where
    none), series) over the complete candles of every series."""
    wide = minute_table(minutes, candle_ms)
    if len(wide) < 10:
        raise VolcastError(f"a nowcast fit needs at least 10 complete candles of "
                           f"{candle_ms // MINUTE_MS} minutes, not {len(wide)}")
    cum = wide.to_numpy().cumsum(axis=1)
    return cum, cum[:, -1], _priors_of(wide.index, priors), sorted(
        set(wide.index.get_level_values(0)) - {""})


def _priors_of(candles: pd.Index, priors: pd.DataFrame | None) -> np.ndarray:
    """Each candle's prior q50 (NaN where there is none, or it is not positive)."""
    if priors is None:
        return np.full(len(candles), np.nan)
    keyed = priors.assign(unique_id=priors.get("unique_id", "")).set_index(
        ["unique_id", "ds"])["q50"]
    found = keyed.reindex(candles).to_numpy(dtype=float)
    return np.where(found > 0, found, np.nan)


def _on_grid(cum: np.ndarray, candle_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid of elapsed fractions (0, ..., 1; at most ``MOST_POINTS`` steps) and the volume
    traded by each inner point [N, points - 1]."""
    length = candle_ms // MINUTE_MS
    points = min(length, MOST_POINTS)
    grid = np.arange(points + 1) / points
    ends = np.rint(grid[1:-1] * length).astype(int)  # whole minutes traded by each inner point
    return grid, cum[:, ends - 1]


def _shares(at_points: np.ndarray, final: np.ndarray) -> np.ndarray:
    """The typical share of the final volume traded by each grid point: the median over
    candles that traded at all, kept rising and strictly inside (0, 1) between the ends."""
    traded = final > 0
    inner = np.median(at_points[traded] / final[traded, None], axis=0)
    inner = np.clip(np.maximum.accumulate(inner), 1e-6, 1 - 1e-6)
    return np.concatenate([[0.0], inner, [1.0]])


def _fit_point(so_far: np.ndarray, final: np.ndarray, prior: np.ndarray, share: float
               ) -> tuple[float, float, float, float, tuple[float, ...], tuple[float, ...]]:
    """(share, w, c, c alone, ratios, ratios alone) at one inner grid point."""
    remaining = final - so_far
    with np.errstate(divide="ignore"):
        target = np.log(remaining) - np.log1p(-share)
        pace = np.log(so_far) - np.log(share)
        log_prior = np.log(prior)
    usable = np.isfinite(target) & np.isfinite(pace)
    alone = float(np.mean(target[usable] - pace[usable]))
    ratios_alone = _ratios(remaining, so_far / share * (1 - share) * np.exp(alone), so_far > 0)
    with_prior = usable & np.isfinite(log_prior)
    if with_prior.sum() < 3:  # no priors to learn from: the prior counts for nothing
        return share, 1.0, alone, alone, ratios_alone, ratios_alone
    x, y = pace[with_prior] - log_prior[with_prior], target[with_prior] - log_prior[with_prior]
    spread = np.var(x)
    weight = float(np.clip(np.cov(x, y, bias=True)[0, 1] / spread, 0, 1)) if spread else 1.0
    bias = float(np.mean(y - weight * x))
    w = np.where(so_far > 0, weight, 0.0)
    estimate = (1 - share) * np.exp(w * np.where(so_far > 0, pace, 0) + (1 - w) * log_prior
                                    + bias)
    return share, weight, bias, alone, _ratios(remaining, estimate, np.isfinite(log_prior)), \
        ratios_alone


def _prior_point(final: np.ndarray, prior: np.ndarray, after: tuple[Any, ...]
                 ) -> tuple[float, float, float, float, tuple[float, ...], tuple[float, ...]]:
    """The point e = 0: the prior itself (its q50 unchanged; q10/q90 from how the candles fell
    around it); the pace-only columns repeat the first inner point's (nothing traded yet)."""
    known = np.isfinite(prior)
    ratios = _ratios(final, np.where(known, prior, 1.0), known)
    if known.any():
        ratios = tuple(r / ratios[1] for r in ratios) if ratios[1] > 0 else (1.0, 1.0, 1.0)
    return 0.0, 0.0, 0.0, after[3], ratios, after[5]


def _ratios(actual: np.ndarray, estimate: np.ndarray, rows: np.ndarray) -> tuple[float, ...]:
    """Quantiles of actual / estimate over ``rows`` (1, 1, 1 when there are none)."""
    if not rows.any():
        return (1.0, 1.0, 1.0)
    return tuple(float(v) for v in np.quantile(actual[rows] / estimate[rows], QUANTILES))


def candles_of(minutes: pd.DataFrame, candle_ms: int) -> pd.DataFrame:
    """The complete candles of ``candle_ms`` as a long frame (unique_id, ds, y): what a
    forecasting model sees of the same minutes."""
    wide = minute_table(minutes, candle_ms)
    return pd.DataFrame({"unique_id": wide.index.get_level_values(0),
                         "ds": wide.index.get_level_values(1).astype(np.int64),
                         "y": wide.sum(axis=1).to_numpy()})


def walk_priors(model: Forecaster, candles: pd.DataFrame, start_ms: int) -> pd.DataFrame:
    """The forecast each candle from ``start_ms`` on had at its open (``unique_id, ds, q10,
    q50, q90``): ``model`` predicts one candle ahead from every candle before it, as the live
    service's serving model does at each close (the protocol's backtest with a horizon of 1)."""
    parts = []
    for uid, series in candles.groupby("unique_id", sort=True):
        result = backtest(model, series, horizon=1, cutoff=start_ms)
        found = result.predictions.rename(columns={"timestamp": "ds", "y_pred": "q50"})
        parts.append(found.assign(unique_id=uid)[["unique_id", "ds", "q10", "q50", "q90"]])
    return pd.concat(parts, ignore_index=True)


def evaluate(nowcaster: Nowcaster, minutes: pd.DataFrame, priors: pd.DataFrame,
             at_minutes: Sequence[int]) -> pd.DataFrame:
    """Every complete candle of ``minutes`` that has a prior, nowcast ``at_minutes`` minutes
    after its open: one row per (candle, minute) with the actual final volume and the three
    estimates compared in docs/nowcast.md (the prior, linear extrapolation, the nowcast)."""
    candle_ms = nowcaster.params.candle_ms
    wide = minute_table(minutes, candle_ms)
    prior = _priors_of(wide.index, priors)
    wide, prior = wide[np.isfinite(prior)], prior[np.isfinite(prior)]
    cum, length = wide.to_numpy().cumsum(axis=1), candle_ms // MINUTE_MS
    rows = []
    for minute in at_minutes:
        so_far, elapsed = cum[:, minute - 1], minute / length
        for (uid, ds), traded, before, actual in zip(wide.index, so_far, prior, cum[:, -1],
                                                     strict=True):
            rows.append({"unique_id": uid, "ds": ds, "minute": minute, "actual": actual,
                         "prior": before, "linear": traded / elapsed,
                         **nowcaster.nowcast(traded, elapsed, before, ds)})
    return pd.DataFrame(rows)
