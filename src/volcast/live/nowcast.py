"""The nowcast of the open candle: its expected final volume (q10/q50/q90) from the minutes
already traded in it and the forecast made for it at its start (the prior).

Why this shape. A candle's final volume is what has traded (known) plus what remains; only the
remainder is forecast, so the nowcast never falls below the volume already traded and reaches
it exactly at the close. The rate of the remainder is a weighted geometric mean of up to three
estimates, each a full candle's volume:

- ``pace``: the volume so far over ``share(e)``, the typical fraction of a candle's volume
  traded by the elapsed fraction ``e`` (learned, not assumed linear);
- ``recent``: the volume of the last ``recent_fraction`` of the candle (5 minutes of an hour)
  over the share typically traded then: trading comes in bursts, and the last minutes say more
  about the next ones than the whole candle does (optional: a caller that only has the
  exchange's open candle has no minutes);
- ``prior``: the serving model's q50 for this candle, which knows the hour's usual level.

In log space, with weights ``w >= 0`` summing to one and a bias ``c``, both fitted by least
squares at each point of a grid of elapsed fractions (every 5 minutes of an hour)::

    log remaining = log(1 - share(e)) + sum_j w_j(e) * log estimate_j + c(e)

so the pace takes over from the prior as the candle fills up. Weights summing to one keep the
fit free of units: parameters learned on BTC serve ETH. Each subset of estimates a caller may
have is fitted on its own (a "variant"): with no prior (none yet, or a q50 of 0) the pace
alone is used, with its own bias and quantiles. Quantiles come from the empirical distribution
of actual / estimated remainder at each grid point, which keeps them ordered and positive.
Between grid points every parameter is interpolated linearly in ``e``, so any candle length
works given the fraction (the shares are those of the candle length fitted).

At ``e = 0`` the nowcast is the prior itself (its q50; q10/q90 from how far candles fell from
their prior in training); with neither a prior nor anything traded nothing is known, and every
quantile is the volume so far.

Parameters are JSON (``save``/``load``; never pickle); ``nowcast_default.json`` beside this
module was fitted by ``bench/nowcast.py --write-default`` (docs/nowcast.md).
"""

import json
import warnings
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
MOST_POINTS = 12
"""Grid points per candle: one per 5 minutes of an hour (the parameters change smoothly with
the elapsed fraction: a finer grid measured no better between its points, docs/nowcast.md)."""
DIGITS = 6
"""Significant digits kept of each fitted number: far beyond what a few hundred candles can
tell, and it keeps the saved file a few kB."""
RECENT_PART = 12
"""The recent window is this part of the candle (rounded to grid points, at least one)."""
MIN_ROWS = 20
"""Fewer training candles than this at a point: the variant drops its last estimate there."""
QUANTILES = (0.1, 0.5, 0.9)
ESTIMATES = ("pace", "recent", "prior")
VARIANTS = ("prior", "pace", "pace+recent", "pace+prior", "pace+recent+prior")
DEFAULT_FILE = "nowcast_default.json"

Ratios = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)],
               Annotated[float, Field(ge=0)]]


class Variant(BaseModel):
    """One subset of estimates: per grid point its weights (in the order of its name), bias
    and quantile ratios (actual / estimated remainder at q10, q50, q90)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    weights: list[list[Annotated[float, Field(ge=0, le=1)]]]
    bias: list[float]
    ratios: list[Ratios]


class NowcastParams(BaseModel):
    """What a fit learned, as saved. A params file is untrusted input: shapes, ranges and order
    are all checked here before any of it is used."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    format: Literal["volcast-nowcast"] = "volcast-nowcast"
    format_version: Literal[1] = 1
    candle_ms: int = Field(gt=0)
    grid: list[float] = Field(min_length=3, max_length=10_000)
    share: list[float]
    recent_points: int = Field(ge=1)
    variants: dict[Literal[VARIANTS], Variant]  # type: ignore[valid-type]
    training: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        grid, share = np.array(self.grid), np.array(self.share)
        if len(share) != len(grid):
            raise ValueError(f"the shares must have the grid's {len(grid)} entries")
        if grid[0] != 0 or grid[-1] != 1 or np.any(np.diff(grid) <= 0):
            raise ValueError("the grid must rise strictly from 0 to 1")
        if share[0] != 0 or share[-1] != 1 or np.any(np.diff(share) < 0):
            raise ValueError("the shares must rise from 0 to 1")
        if not (share[1] > 0 and share[-2] < 1):
            raise ValueError("the shares strictly inside the candle must be within (0, 1)")
        if self.recent_points >= len(grid) - 1:
            raise ValueError("the recent window must be shorter than the candle")
        if set(self.variants) != set(VARIANTS):
            raise ValueError(f"the variants must be exactly {', '.join(VARIANTS)}")
        for name, variant in self.variants.items():
            _check_variant(name, variant, len(grid))
        return self


def _check_variant(name: str, variant: Variant, points: int) -> None:
    width = len(name.split("+"))
    if not len(variant.weights) == len(variant.bias) == len(variant.ratios) == points:
        raise ValueError(f"variant {name} must have the grid's {points} entries")
    if any(len(w) != width or abs(sum(w) - 1) > 1e-4 for w in variant.weights):
        raise ValueError(f"variant {name}: each point needs {width} weights summing to 1")
    if any(not low <= mid <= high for low, mid, high in variant.ratios):
        raise ValueError(f"variant {name}: the quantile ratios must be ordered")


class Nowcaster:
    """Nowcasts of an open candle, from a fit on closed 1-minute candles (``fit``) or from
    saved parameters (``load``, ``default``)."""

    def __init__(self, params: NowcastParams) -> None:
        self.params = params
        self._grid = np.array(params.grid)
        self._share = np.array(params.share)
        self._tables = {name: np.column_stack([v.weights, v.bias, v.ratios])
                        for name, v in params.variants.items()}

    @property
    def recent_fraction(self) -> float:
        """The part of the candle whose volume ``nowcast`` takes as ``recent`` (the last 5
        minutes of an hour)."""
        return self.params.recent_points / (len(self._grid) - 1)

    @classmethod
    def fit(cls, minutes: pd.DataFrame, candle_ms: int, priors: pd.DataFrame | None) -> Self:
        """Learn from closed 1-minute candles (long frame: ``ds``, ``y``, and ``unique_id``
        when several series) grouped into candles of ``candle_ms``, and from ``priors``: the
        forecast made at each candle's start (``ds`` = its open time, ``q50``, and
        ``unique_id`` as in ``minutes``), as models' forecasts come. Only complete candles
        count; those without a prior teach the variants without one."""
        cum, final, prior, series = _candles(minutes, candle_ms, priors)
        grid, at_points = _on_grid(cum, candle_ms)
        share = _shares(at_points, final)
        recent = max(1, (len(grid) - 1) // RECENT_PART)
        variants = _fit_variants(at_points, final, prior, share, recent)
        return cls(_params(
            candle_ms=candle_ms, grid=_rounded(grid.tolist()), share=_rounded(share.tolist()),
            recent_points=recent, variants=_rounded(variants),
            training={"candles": len(final), "series": series,
                      "with_prior": int(np.isfinite(prior).sum())}))

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
        """The parameters shipped with volcast: hourly candles, fitted on Binance.US BTC
        1-minute candles of March 2023 with MSTL priors (docs/nowcast.md)."""
        with resources.as_file(resources.files(__package__) / DEFAULT_FILE) as path:
            return cls.load(path)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.params.model_dump(mode="json")) + "\n")

    def nowcast(self, so_far: float, elapsed: float, prior_q50: float | None,
                open_ms: int | None = None, recent: float | None = None) -> dict[str, float]:
        """The open candle's expected final volume: ``q10``, ``q50``, ``q90``.

        ``so_far``: volume traded in the candle up to now; ``elapsed``: the fraction of the
        candle gone by on the exchange clock, in [0, 1]; ``prior_q50``: the forecast made for
        this candle at its start, None (or 0) when there is none; ``open_ms``: the candle's
        open time, only checked (the fit pools every hour of the day); ``recent``: the volume
        of the last ``recent_fraction`` of the candle (of all of it, when less has gone by),
        None when unknown."""
        _check(so_far, elapsed, prior_q50, open_ms, recent)
        values = {"pace": so_far if elapsed > 0 else 0.0, "prior": prior_q50 or 0.0,
                  "recent": recent or 0.0}
        if elapsed == 1 or values["pace"] == values["prior"] == 0:
            return dict.fromkeys(("q10", "q50", "q90"), float(so_far))
        name = "+".join(e for e in ESTIMATES if values[e] > 0) if values["pace"] else "prior"
        row = np.array([np.interp(elapsed, self._grid, c) for c in self._tables[name].T])
        share = float(np.interp(elapsed, self._grid, self._share))
        since = float(np.interp(max(elapsed - self.recent_fraction, 0), self._grid,
                                self._share))
        scale = {"pace": share, "recent": max(share - since, 1e-9), "prior": 1.0}
        names = name.split("+")
        log_rate = sum(w * np.log(values[e] / scale[e])
                       for w, e in zip(row[:len(names)], names, strict=True))
        remaining = (1 - share) * np.exp(log_rate + row[len(names)])
        return {f"q{round(q * 100)}": float(so_far + remaining * r)
                for q, r in zip(QUANTILES, row[-3:], strict=True)}


def _params(**fields: Any) -> NowcastParams:
    """Checked parameters; the first complaint as one line (never the whole, long input)."""
    try:
        return NowcastParams(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "parameters"
        raise VolcastError(f"nowcast {where}: {first['msg']}") from None


def _rounded(value: Any) -> Any:
    """``value`` with every float in it kept to ``DIGITS`` significant digits."""
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def _check(so_far: float, elapsed: float, prior_q50: float | None, open_ms: int | None,
           recent: float | None) -> None:
    if not (np.isfinite(so_far) and so_far >= 0):
        raise VolcastError(f"the volume so far must be a number >= 0, not {so_far}")
    if not (np.isfinite(elapsed) and 0 <= elapsed <= 1):
        raise VolcastError(f"the elapsed fraction of the candle must be within [0, 1], not "
                           f"{elapsed}")
    if prior_q50 is not None and not (np.isfinite(prior_q50) and prior_q50 >= 0):
        raise VolcastError(f"the prior forecast must be a number >= 0 or none, not {prior_q50}")
    if open_ms is not None and open_ms < 0:
        raise VolcastError(f"the candle's open time must be >= 0 ms, not {open_ms}")
    if recent is not None and not (np.isfinite(recent) and 0 <= recent <= so_far * (1 + 1e-9)):
        raise VolcastError(f"the recent volume must be a number within [0, volume so far "
                           f"{so_far}], not {recent}")


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
    traded by each point [N, points + 1] (0 at the open, the final volume at the close)."""
    length = candle_ms // MINUTE_MS
    points = min(length, MOST_POINTS)
    grid = np.arange(points + 1) / points
    ends = np.rint(grid[1:] * length).astype(int)  # whole minutes traded by each point
    return grid, np.column_stack([np.zeros(len(cum)), cum[:, ends - 1]])


def _shares(at_points: np.ndarray, final: np.ndarray) -> np.ndarray:
    """The typical share of the final volume traded by each grid point: the median over
    candles that traded at all, kept rising and strictly inside (0, 1) between the ends."""
    traded = final > 0
    inner = np.median(at_points[traded, 1:-1] / final[traded, None], axis=0)
    inner = np.clip(np.maximum.accumulate(inner), 1e-6, 1 - 1e-6)
    return np.concatenate([[0.0], inner, [1.0]])


def _fit_variants(at_points: np.ndarray, final: np.ndarray, prior: np.ndarray,
                  share: np.ndarray, recent: int) -> dict[str, dict[str, list[Any]]]:
    """Every variant's weights, bias and ratios at every grid point (the ends set by
    ``_ends``). While the recent window still covers the whole candle, the recent volume is
    the volume so far: nothing new, so variants with it repeat those without there."""
    rows: dict[str, list[tuple[list[float], float, tuple[float, ...]]]] = {v: [] for v in VARIANTS}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_prior = np.log(prior)
        for k in range(1, len(share) - 1):
            so_far = at_points[:, k]
            recent_share = share[k] - share[max(k - recent, 0)]
            estimates = {"pace": np.log(so_far / share[k]), "prior": log_prior,
                         "recent": np.log((so_far - at_points[:, max(k - recent, 0)])
                                          / recent_share)}
            if k <= recent:  # the window is the whole candle so far: nothing new
                estimates["recent"] = np.full(len(final), np.nan)
            remaining = final - so_far
            target = np.log(remaining) - np.log1p(-share[k])
            fitted: dict[str, tuple[list[float], float, tuple[float, ...]]] = {}
            for name in VARIANTS:
                fitted[name] = _fit_point(name, estimates, target, remaining, share[k], fitted)
                rows[name].append(fitted[name])
    return {name: _ends(name, points, final, prior) for name, points in rows.items()}


def _fit_point(name: str, estimates: dict[str, np.ndarray], target: np.ndarray,
               remaining: np.ndarray, share: float,
               fitted: dict[str, tuple[list[float], float, tuple[float, ...]]]
               ) -> tuple[list[float], float, tuple[float, ...]]:
    """(weights, bias, ratios) of one variant at one point, by least squares in log space with
    the weights summing to one; a negative weight drops its estimate and the rest is refitted.
    Too few candles with every estimate: the variant without the scarcest one (never the
    pace), that one weighing 0; ``fitted`` holds the smaller variants of this point."""
    names = name.split("+")
    features = np.column_stack([estimates[e] for e in names])
    usable = np.isfinite(features).all(axis=1)
    if usable.sum() < MIN_ROWS:
        if len(names) == 1:  # nothing at all to learn from: the estimate as it is
            return [1.0], 0.0, (1.0, 1.0, 1.0)
        scarce = min(names[1:], key=lambda e: np.isfinite(estimates[e]).sum())
        weights, bias, ratios = fitted["+".join(e for e in names if e != scarce)]
        weights = list(weights)
        weights.insert(names.index(scarce), 0.0)
        return weights, bias, ratios
    x, y = features[usable], target[usable]
    fit_rows = np.isfinite(y)
    active = list(range(len(names)))
    while True:
        base = x[:, active[-1]]
        design = np.column_stack([x[:, active[:-1]] - base[:, None], np.ones(len(x))])
        beta = np.linalg.lstsq(design[fit_rows], (y - base)[fit_rows], rcond=None)[0]
        weights = np.zeros(len(names))
        weights[active[:-1]] = beta[:-1]
        weights[active[-1]] = 1 - beta[:-1].sum()
        if (weights[active] >= 0).all():
            break
        active.remove(active[int(np.argmin(weights[active]))])
    estimate = (1 - share) * np.exp(x @ weights + beta[-1])
    return weights.tolist(), float(beta[-1]), _ratios(remaining[usable] / estimate)


def _ends(name: str, points: list[tuple[list[float], float, tuple[float, ...]]],
          final: np.ndarray, prior: np.ndarray) -> dict[str, list[Any]]:
    """The variant with its two ends added. At the close it repeats the last inner point (the
    remainder is 0 there anyway). At the open a variant with the prior is the prior itself:
    all weight on it, no bias, its q50 unchanged and q10/q90 from how the candles fell around
    it; one without repeats its first inner point (nothing traded yet)."""
    first = points[0]
    if "prior" in name:
        known = np.isfinite(prior)
        ratios = _ratios(final[known] / prior[known]) if known.sum() >= MIN_ROWS else (1, 1, 1)
        middle = ratios[1] if ratios[1] > 0 else 1.0
        first = ([0.0] * (len(first[0]) - 1) + [1.0], 0.0, tuple(r / middle for r in ratios))
    table = [first, *points, points[-1]]
    return {"weights": [p[0] for p in table], "bias": [p[1] for p in table],
            "ratios": [p[2] for p in table]}


def _ratios(ratios: np.ndarray) -> tuple[float, ...]:
    """The q10, q50, q90 of actual / estimated volumes."""
    return tuple(float(v) for v in np.quantile(ratios, QUANTILES))


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
        with warnings.catch_warnings():  # its scores, unused here, average empty steps
            warnings.simplefilter("ignore", RuntimeWarning)
            result = backtest(model, series, horizon=1, cutoff=start_ms)
        found = result.predictions.rename(columns={"timestamp": "ds", "y_pred": "q50"})
        parts.append(found.assign(unique_id=uid)[["unique_id", "ds", "q10", "q50", "q90"]])
    return pd.concat(parts, ignore_index=True)


def evaluate(nowcaster: Nowcaster, minutes: pd.DataFrame, priors: pd.DataFrame,
             at_minutes: Sequence[int]) -> pd.DataFrame:
    """Every complete candle of ``minutes`` that has a prior, nowcast ``at_minutes`` minutes
    after its open: one row per (candle, minute) with the actual final volume and the
    estimates compared in docs/nowcast.md: the prior, linear extrapolation, the nowcast from
    the volume so far (``q10, q50, q90``) and with the recent minutes too (``recent_q*``)."""
    candle_ms = nowcaster.params.candle_ms
    wide = minute_table(minutes, candle_ms)
    prior = _priors_of(wide.index, priors)
    wide, prior = wide[np.isfinite(prior)], prior[np.isfinite(prior)]
    cum, length = wide.to_numpy().cumsum(axis=1), candle_ms // MINUTE_MS
    window = round(nowcaster.recent_fraction * length)
    rows = []
    for minute in at_minutes:
        elapsed, start = minute / length, minute - 1 - window
        recent = cum[:, minute - 1] - (cum[:, start] if start >= 0 else 0)
        for (uid, ds), so_far, before, late, actual in zip(
                wide.index, cum[:, minute - 1], prior, recent, cum[:, -1], strict=True):
            with_recent = nowcaster.nowcast(so_far, elapsed, before, ds, late)
            rows.append({"unique_id": uid, "ds": ds, "minute": minute, "actual": actual,
                         "prior": before, "linear": so_far / elapsed,
                         **nowcaster.nowcast(so_far, elapsed, before, ds),
                         **{f"recent_{q}": v for q, v in with_recent.items()}})
    return pd.DataFrame(rows)
