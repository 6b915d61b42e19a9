"""The LSTM behind the Forecaster API: long frames in, calibrated quantiles of volume out.

``fit`` turns each series into arrays on its grid and hands them to the training loop
(``train.py``); ``predict`` builds each series' newest window, runs every member network and
averages their calibrated quantiles (an average of ordered quantiles stays ordered). The state
saved beside the weights is the network's config, the members' scales and whether trade counts
were an input.

torch is imported where a network is trained, run or rebuilt, not with this module, so that
the registry can read this class's capabilities (``models.REFERENCE_MODELS``) without it.
"""

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from volcast.data.frames import future_ds, on_grid, split_series, step_ms
from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError
from volcast.models.base import EpochProgress, Forecaster, training_info
from volcast.models.folder import brief, is_int, is_number
from volcast.models.lstm.settings import SCALE_RANGE, LSTMSettings
from volcast.models.lstm.windows import CONTEXT_DAYS, SeriesArrays, calendar_inputs, make_windows

if TYPE_CHECKING:
    from volcast.models.lstm.network import VolumeLSTM
    from volcast.models.lstm.train import Validation

STATE_KEYS = frozenset({"net", "members", "scales", "has_trades", "history"})
Head = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Prepared windows -> quantiles [B, H, Q] in normalised log volume."""


class LSTMForecaster(Forecaster):
    """A global probabilistic LSTM; see ``volcast.models.lstm``."""

    name = "lstm"
    Settings = LSTMSettings
    needs_fitting = True
    supports_quantiles = True

    def __init__(self, settings: LSTMSettings | None = None) -> None:
        super().__init__(settings)
        self.nets: list[VolumeLSTM] = []
        self.scales: list[list[float]] = []
        self.has_trades = False
        self.history: list[dict[str, float]] = []
        self.validation: Validation | None = None
        """The last fit's held-out windows and predictions, for models built on this one (the
        ensemble); not saved."""

    @property
    def s(self) -> LSTMSettings:
        return self.settings  # type: ignore[return-value]

    @property
    def horizon(self) -> int:
        return self.s.horizon

    @property
    def is_fitted(self) -> bool:
        return bool(self.nets)

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        from volcast.models.lstm.train import train

        self.has_trades = bool("trades" in self.s.features and "trades" in long
                               and long["trades"].notna().all())
        arrays = [self._arrays(series) for series in split_series(long).values()]
        trained = train(arrays, self.s, self.has_trades, progress)
        self.nets, self.scales, self.history = trained.nets, trained.scales, trained.history
        self.validation = trained.validation
        self.info = training_info(long) | {"epochs_run": len(self.history),
                                            "best_val_loss": min(h["val"] for h in self.history)}

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        return self.predict_with(long, horizon, self.quantiles)

    def predict_with(self, long: pd.DataFrame, horizon: int, head: Head) -> pd.DataFrame:
        """Forecast from ``head``'s quantiles of each series' newest window: the one path from
        candles to volumes, shared by models built on the LSTM."""
        self.check_request(long, horizon)
        frames = []
        for uid, series in split_series(long).items():
            windows, ds = self.last_window(series)
            sigma, mu = windows["sigma"][:, None, None], windows["mu"][:, None, None]
            log_volume = head(windows) * sigma + mu  # [1, H, Q]
            with np.errstate(over="ignore", invalid="ignore"):  # refused just below
                values = np.expm1(log_volume).clip(min=0.0)[0, :horizon]  # [h, Q]
            if not np.isfinite(values).all():
                raise VolcastError(f"{uid}: the model forecast an infinite or undefined volume; "
                                   "its weights or the candles are out of range")
            frame = pd.DataFrame(values, columns=[f"q{round(q * 100)}"
                                                  for q in self.s.quantiles])
            frames.append(frame.assign(unique_id=uid, ds=ds[:horizon]))
        out = pd.concat(frames, ignore_index=True)
        for column in ("q10", "q90"):
            if column not in out:
                out[column] = np.nan
        return out[["unique_id", "ds", "q10", "q50", "q90",
                    *[c for c in out if c.startswith("q") and c not in ("q10", "q50", "q90")]]]

    def last_window(self, series: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The window that forecasts the ``horizon`` candles after the series' last one (a batch
        of one, as ``windows.make_windows`` makes them) and those candles' open times."""
        step = step_ms(series["ds"])
        reach = max(self.s.lookback + 1, CONTEXT_DAYS * DAY_MS // step + 1)
        tail = series[series["ds"] > series["ds"].iloc[-1] - reach * step]
        arrays = self._arrays(tail)
        if len(arrays.raw) < self.s.lookback:
            raise VolcastError(f"{series['unique_id'].iloc[0]}: the LSTM needs "
                               f"{self.s.lookback} candles of history, got {len(arrays.raw)}")
        ds = future_ds(int(tail["ds"].iloc[-1]), step, self.s.horizon)
        future_cal = calendar_inputs(ds, tuple(self.s.features))[None]  # [1, H, 4]
        windows = make_windows(arrays, np.array([len(arrays.raw)]), self.s.lookback,
                               self.s.horizon, future_cal)
        return windows, ds

    def quantiles(self, windows: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated quantiles [B, H, Q] for prepared windows, in normalised log volume: the
        members' average."""
        from volcast.models.lstm.network import run_members

        raw = run_members(self.nets, windows["past"], windows["future"])  # M x [B, H, Q]
        median = self.s.quantiles.index(0.5)
        return np.mean([calibrate(r, scales, median)
                        for r, scales in zip(raw, self.scales, strict=True)], axis=0)

    def _arrays(self, series: pd.DataFrame) -> SeriesArrays:
        """Inputs on the grid; trade counts only when the model was trained with them."""
        if self.has_trades and ("trades" not in series or series["trades"].isna().any()):
            raise VolcastError("this model was trained with trade counts; the data has none")
        features = tuple(f for f in self.s.features if f != "trades" or self.has_trades)
        step = step_ms(series["ds"])
        return SeriesArrays.build(on_grid(series, step), step, features)

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.is_fitted:
            raise VolcastError("the LSTM has not been trained")
        weights = {f"{i}.{k}": v.detach().cpu().contiguous()
                   for i, net in enumerate(self.nets) for k, v in net.state_dict().items()}
        return ({"net": asdict(self.nets[0].cfg), "members": len(self.nets),
                 "scales": self.scales, "has_trades": self.has_trades,
                 "history": self.history}, weights)

    def check_state(self, state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The saved network, members, scales and inputs must be exactly what the (validated)
        settings make; the tensors are each member's parameters, ``{member}.{name}``."""
        from volcast.models.lstm.network import NetConfig, parameter_shapes

        missing = sorted(STATE_KEYS - {"history"} - set(state))
        unknown = sorted(set(state) - STATE_KEYS)
        if missing or unknown:
            raise VolcastError(f"state.{(missing or unknown)[0]} is "
                               f"{'missing' if missing else 'not an LSTM field'}")
        has_trades, members = state["has_trades"], state["members"]
        if not isinstance(has_trades, bool) or (has_trades and "trades" not in self.s.features):
            raise VolcastError(f"state.has_trades is {brief(has_trades)}; the features are "
                               f"{', '.join(self.s.features)}")
        if not is_int(members) or members != self.s.members:
            raise VolcastError(f"state.members is {brief(members)}; the settings ask for "
                               f"{self.s.members}")
        expected = asdict(NetConfig.of(self.s, has_trades))
        net = state["net"] if isinstance(state["net"], dict) else {}
        for key in sorted(set(expected) | set(net)):
            value, wanted = net.get(key), expected.get(key)
            if type(value) is not type(wanted) or value != wanted:
                raise VolcastError(f"state.net.{key} is {brief(value)}; the settings ask for "
                                   f"{brief(wanted)}")
        check_scales(state["scales"], members, self.s.quantiles)
        if not isinstance(state.get("history", []), list):
            raise VolcastError("state.history must be a list")
        shapes = parameter_shapes(NetConfig(**expected))
        return {f"{i}.{name}": shape for i in range(members) for name, shape in shapes.items()}

    def weights_metadata(self, state: dict[str, Any]) -> dict[str, Any]:
        """The settings that shape a forecast but not the tensors (lookback above all), and the
        calibration."""
        return {"lookback": self.s.lookback, "horizon": self.s.horizon,
                "quantiles": self.s.quantiles, "features": self.s.features,
                "members": state.get("members"), "has_trades": state.get("has_trades"),
                "scales": state.get("scales")}

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        from volcast.models.lstm.network import load_members

        try:
            self.nets = load_members(state["net"], state["members"], tensors)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise VolcastError(f"saved LSTM does not match this volcast ({str(exc)[:160]})"
                               ) from None
        self.scales, self.has_trades = state["scales"], state["has_trades"]
        self.history = state.get("history", [])


def check_scales(scales: Any, members: int, quantiles: list[float]) -> None:
    """One list of finite calibration scales per member, one per quantile, in ``SCALE_RANGE``,
    the median's 1."""
    low, high = SCALE_RANGE
    if not isinstance(scales, list) or len(scales) != members:
        raise VolcastError(f"state.scales must hold one list per member ({members})")
    for member in scales:
        if not isinstance(member, list) or len(member) != len(quantiles):
            raise VolcastError(f"state.scales must hold {len(quantiles)} numbers per member, "
                               f"one per quantile, not {brief(member)}")
        for q, scale in zip(quantiles, member, strict=True):
            if not is_number(scale) or not low <= scale <= high or (q == 0.5 and scale != 1):
                raise VolcastError(f"state.scales: {brief(scale)} for quantile {q} is not a "
                                   f"calibration scale (finite, {low} to {high}, 1 for the "
                                   "median)")


def calibrate(pred: np.ndarray, scales: list[float], median: int) -> np.ndarray:
    """Stretch each quantile's distance from the median by its validation-fitted scale
    (``train.fit_scales``)."""
    if not scales:
        return pred
    mid = pred[..., median : median + 1]
    return mid + (pred - mid) * np.asarray(scales, dtype=pred.dtype)
