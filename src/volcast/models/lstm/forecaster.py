"""The neural models behind the Forecaster API: long frames in, calibrated quantiles out.

``NeuralForecaster`` is all of a neural model but its network: ``fit`` turns each series into
arrays on its grid (``inputs.py``) and hands them to the training loop (``train.py``);
``predict`` builds each series' newest window, runs every member network on all of them at
once (``batch_size`` windows a call) and averages their calibrated quantiles (an average of
ordered quantiles stays ordered); ``predict_origins`` does the same for every origin of a
backtest. Each window's quantiles are calibrated with its series' own scales where the fit
had enough of its held-out windows (``calibration = "series"``), else the pooled ones. The
state saved beside the weights is the network's config, the members' scales (pooled and per
series) and whether trade counts were an input; the covariates
are settings (so in ``model.json``) and in the weights' metadata. ``LSTMForecaster`` names its
network; so does the transformer (``models/transformer``).

torch is imported where a network is trained, run or rebuilt, not with this module, so that
the registry can read these classes' capabilities (``models.REFERENCE_MODELS``) without it.
"""

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from volcast.data.frames import split_series
from volcast.errors import VolcastError
from volcast.models.base import EpochProgress, Forecaster, training_info
from volcast.models.folder import brief, is_int, is_number
from volcast.models.lstm.inputs import Inputs, how_to_supply
from volcast.models.lstm.settings import (
    MAX_UID_CHARS,
    MIN_SERIES_WINDOWS,
    SCALE_RANGE,
    LSTMSettings,
    NeuralSettings,
)
from volcast.models.lstm.windows import n_past_features

if TYPE_CHECKING:
    from volcast.models.lstm.network import QuantileNet
    from volcast.models.lstm.train import Validation

STATE_KEYS = frozenset({"net", "members", "scales", "series_scales", "has_trades", "history"})
OPTIONAL_STATE = frozenset({"history", "series_scales"})
"""State a folder may lack: saved before volcast wrote it (per-series scales: the pooled
ones then calibrate every series)."""
Head = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Prepared windows -> quantiles [B, H, Q] in normalised log volume."""


class NeuralForecaster(Forecaster):
    """A global probabilistic network on windows (``windows.py``); a subclass names its
    network (``network``) and its settings."""

    title: ClassVar[str]
    """The model's name in messages ("LSTM")."""
    needs_fitting = True
    supports_quantiles = True
    supports_exogenous = True

    def __init__(self, settings: NeuralSettings | None = None) -> None:
        super().__init__(settings)
        self.nets: list[QuantileNet] = []
        self.scales: list[list[float]] = []
        self.series_scales: dict[str, list[list[float]]] = {}
        """Each member's scales fitted on one series' held-out windows alone, by unique_id
        (as a string: the JSON key it is saved under)."""
        self.has_trades = False
        self.history: list[dict[str, float]] = []
        self.validation: Validation | None = None
        """The last fit's held-out windows and predictions, for models built on this one (the
        ensemble); not saved."""

    @staticmethod
    @abstractmethod
    def network() -> "type[QuantileNet]":
        """The network class (imported when called: it needs torch)."""

    @property
    def s(self) -> NeuralSettings:
        return self.settings  # type: ignore[return-value]

    @property
    def horizon(self) -> int:
        return self.s.horizon

    @property
    def is_fitted(self) -> bool:
        return bool(self.nets)

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        from volcast.models.lstm.train import train

        require_covariates(long, self.s.covariates, self.name)
        self.has_trades = bool("trades" in self.s.features and "trades" in long
                               and long["trades"].notna().all())
        arrays = [self.inputs.arrays(series) for series in split_series(long).values()]
        network = self.network()
        build = partial(network, network.config(self.s, self.n_past(self.has_trades)))
        trained = train(arrays, self.s, build, progress)
        self.nets, self.scales, self.history = trained.nets, trained.scales, trained.history
        uids = list(split_series(long))  # the arrays' order
        self.series_scales = {str(uids[n]): s for n, s in trained.series_scales.items()
                              if len(str(uids[n])) <= MAX_UID_CHARS}  # longer: pooled
        self.validation = trained.validation
        self.info = training_info(long) | {"epochs_run": len(self.history),
                                            "best_val_loss": min(h["val"] for h in self.history)}

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        return self.predict_with(long, horizon, self.quantiles)

    def predict_origins(self, long: pd.DataFrame, origins: list[int], horizon: int
                        ) -> pd.DataFrame:
        return self.predict_with(long, horizon, self.quantiles, origins)

    def predict_with(self, long: pd.DataFrame, horizon: int, head: Head,
                     origins: list[int] | None = None) -> pd.DataFrame:
        """Forecast from ``head``'s quantiles of each series' newest window, or with ``origins``
        of the one series' window at each origin (``predict_origins``): the one path from
        candles to volumes, shared by models built on this one (the ensemble). Every window is
        made first, then the head runs on all of them at once, ``batch_size`` windows a call
        (a network call per batch, not per series or origin; memory bounded by the batch)."""
        self.check_request(long, horizon)
        require_covariates(long, self.s.covariates, self.name)
        series = split_series(long)
        if origins is None:
            made = [self.inputs.last_window(one) for one in series.values()]
            windows = {k: np.concatenate([w[k] for w, _ in made]) for k in made[0][0]}
            ds, names = np.stack([d for _, d in made]), list(series)
        else:
            if len(series) != 1:
                raise VolcastError("forecasts from origins are made for one series at a time")
            (uid, one), = series.items()
            windows, ds = self.inputs.origin_windows(one, np.asarray(origins,
                                                                      dtype=np.int64))
            names = [uid] * len(origins)
        windows["scales"] = self.window_scales(names)  # [B, M, Q], sliced by batch with the rest
        values = self._volumes(windows, head, horizon, names)  # [B, h, Q]
        out = pd.DataFrame(values.reshape(-1, values.shape[2]),
                           columns=[f"q{round(q * 100)}" for q in self.s.quantiles])
        out.insert(0, "unique_id", np.repeat(names, horizon))
        out.insert(1, "ds", ds[:, :horizon].reshape(-1))
        for column in ("q10", "q90"):
            if column not in out:
                out[column] = np.nan
        first = ["unique_id", "ds", "q10", "q50", "q90"]
        if origins is not None:
            out["origin"], first = np.repeat(origins, horizon), ["origin", *first]
        return out[[*first, *[c for c in out if c.startswith("q") and c not in first]]]

    def _volumes(self, windows: dict[str, np.ndarray], head: Head, horizon: int,
                 names: list[str]) -> np.ndarray:
        """Volumes [B, horizon, Q] of prepared windows: the head on ``batch_size`` windows at a
        time, then out of normalised log volume. A forecast that is not finite is refused in one
        line naming its series."""
        size = self.s.batch_size
        log_volume = np.concatenate([head({k: v[at:at + size] for k, v in windows.items()})
                                     for at in range(0, len(names), size)])  # [B, H, Q]
        log_volume = log_volume * windows["sigma"][:, None, None] + windows["mu"][:, None, None]
        with np.errstate(over="ignore", invalid="ignore"):  # refused just below
            values = np.expm1(log_volume).clip(min=0.0)[:, :horizon]  # [B, h, Q]
        finite = np.isfinite(values).all(axis=(1, 2))
        if not finite.all():
            raise VolcastError(f"{names[int(np.argmin(finite))]}: the model forecast an infinite "
                               "or undefined volume; its weights or the candles are out of range")
        return values

    def window_scales(self, names: list[str]) -> np.ndarray:
        """Each window's members' calibration scales [B, M, Q] (float32, as the networks'
        output), by the name of its series: its own with ``calibration = "series"`` where the
        fit had them, else the pooled ones (a series the model never saw, or saw too little
        of)."""
        own = self.series_scales if self.s.calibration == "series" else {}
        table = {uid: np.asarray(own.get(str(uid), self.scales), dtype=np.float32)
                 for uid in dict.fromkeys(names)}  # [M, Q] per series
        return np.stack([table[uid] for uid in names])

    def quantiles(self, windows: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated quantiles [B, H, Q] for prepared windows (``scales`` [B, M, Q] from
        ``window_scales`` among them), in normalised log volume: the members' average."""
        from volcast.models.lstm.network import run_members

        raw = run_members(self.nets, windows["past"], windows["future"])  # M x [B, H, Q]
        median = self.s.quantiles.index(0.5)
        return np.mean([calibrate(r, windows["scales"][:, m, None, :], median)  # [B, 1, Q]
                        for m, r in enumerate(raw)], axis=0)

    def reach(self, step_ms: int) -> int:
        return self.inputs.reach(step_ms)

    @property
    def shards(self) -> int:
        return self.s.shards

    @property
    def inputs(self) -> Inputs:
        """Candles -> this model's arrays and windows."""
        return Inputs(self.s, self.has_trades, self.title)

    def n_past(self, has_trades: bool) -> int:
        """The network's past inputs per candle (F)."""
        return n_past_features(tuple(self.s.features), has_trades, len(self.s.covariates))

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.is_fitted:
            raise VolcastError(f"the {self.title} has not been trained")
        weights = {f"{i}.{k}": v.detach().cpu().contiguous()
                   for i, net in enumerate(self.nets) for k, v in net.state_dict().items()}
        return ({"net": asdict(self.nets[0].cfg), "members": len(self.nets),
                 "scales": self.scales, "series_scales": self.series_scales,
                 "has_trades": self.has_trades, "history": self.history}, weights)

    def check_state(self, state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The saved network, members, scales (pooled, and per series when there) and inputs
        must be exactly what the (validated) settings make; the tensors are each member's
        parameters, ``{member}.{name}``."""
        from volcast.models.lstm.network import parameter_shapes

        missing = sorted(STATE_KEYS - OPTIONAL_STATE - set(state))
        unknown = sorted(set(state) - STATE_KEYS)
        if missing:
            raise VolcastError(f"state.{missing[0]} is missing")
        if unknown:
            raise VolcastError(f"state.{unknown[0]} is not a field of the {self.title}'s state")
        has_trades, members = state["has_trades"], state["members"]
        if not isinstance(has_trades, bool) or (has_trades and "trades" not in self.s.features):
            raise VolcastError(f"state.has_trades is {brief(has_trades)}; the features are "
                               f"{', '.join(self.s.features)}")
        if not is_int(members) or members != self.s.members:
            raise VolcastError(f"state.members is {brief(members)}; the settings ask for "
                               f"{self.s.members}")
        network = self.network()
        expected = asdict(network.config(self.s, self.n_past(has_trades)))
        net = state["net"] if isinstance(state["net"], dict) else {}
        for key in sorted(set(expected) | set(net)):
            value, wanted = net.get(key), expected.get(key)
            if type(value) is not type(wanted) or value != wanted:
                raise VolcastError(f"state.net.{key} is {brief(value)}; the settings ask for "
                                   f"{brief(wanted)}")
        check_scales(state["scales"], members, self.s.quantiles)
        check_series_scales(state.get("series_scales", {}), members, self.s.quantiles,
                            self.s.val_windows // MIN_SERIES_WINDOWS)
        if not isinstance(state.get("history", []), list):
            raise VolcastError("state.history must be a list")
        shapes = parameter_shapes(network, network.Config(**expected))
        return {f"{i}.{name}": shape for i in range(members) for name, shape in shapes.items()}

    def weights_metadata(self, state: dict[str, Any]) -> dict[str, Any]:
        """The settings that shape a forecast but not the tensors (lookback above all, the
        covariates' names), and the calibration. No covariates: no entry; per-series scales
        only when the state has them (every save since they exist, ``{}`` included), as in the
        weights of models saved before either existed."""
        covariates = {"covariates": self.s.covariates} if self.s.covariates else {}
        own = {"series_scales": state["series_scales"]} if "series_scales" in state else {}
        return {"lookback": self.s.lookback, "horizon": self.s.horizon,
                "quantiles": self.s.quantiles, "features": self.s.features,
                "members": state.get("members"), "has_trades": state.get("has_trades"),
                "scales": state.get("scales")} | covariates | own

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        from volcast.models.lstm.network import load_members

        try:
            self.nets = load_members(self.network(), state["net"], state["members"], tensors)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise VolcastError(f"saved {self.title} does not match this volcast "
                               f"({str(exc)[:160]})") from None
        self.scales, self.has_trades = state["scales"], state["has_trades"]
        self.series_scales = state.get("series_scales", {})
        self.history = state.get("history", [])


class LSTMForecaster(NeuralForecaster):
    """A global probabilistic LSTM; see ``volcast.models.lstm``."""

    name = "lstm"
    title = "LSTM"
    Settings = LSTMSettings

    @staticmethod
    def network() -> "type[QuantileNet]":
        from volcast.models.lstm.network import VolumeLSTM

        return VolumeLSTM


def require_covariates(long: pd.DataFrame, covariates: list[str], model: str) -> None:
    """Refuse, in one line, candles that lack a covariate the model takes (no column, or no
    value in it at all)."""
    lacking = [name for name in covariates if name not in long or long[name].isna().all()]
    if lacking:
        raise VolcastError(f"the {model} model takes covariates {', '.join(covariates)}; the "
                           f"candles have no {', '.join(lacking)}: "
                           f"{how_to_supply(covariates)}")


def check_scales(scales: Any, members: int, quantiles: list[float],
                 field: str = "state.scales") -> None:
    """One list of finite calibration scales per member, one per quantile, in ``SCALE_RANGE``,
    the median's 1; ``field`` names them in a refusal."""
    low, high = SCALE_RANGE
    if not isinstance(scales, list) or len(scales) != members:
        raise VolcastError(f"{field} must hold one list per member ({members})")
    for member in scales:
        if not isinstance(member, list) or len(member) != len(quantiles):
            raise VolcastError(f"{field} must hold {len(quantiles)} numbers per member, "
                               f"one per quantile, not {brief(member)}")
        for q, scale in zip(quantiles, member, strict=True):
            if not is_number(scale) or not low <= scale <= high or (q == 0.5 and scale != 1):
                raise VolcastError(f"{field}: {brief(scale)} for quantile {q} is not a "
                                   f"calibration scale (finite, {low} to {high}, 1 for the "
                                   "median)")


def check_series_scales(series_scales: Any, members: int, quantiles: list[float],
                        most: int) -> None:
    """At most ``most`` series, each named by a string of at most ``MAX_UID_CHARS``, each
    with scales as ``check_scales`` wants them."""
    if not isinstance(series_scales, dict) or len(series_scales) > most:
        raise VolcastError(f"state.series_scales must be a table of at most {most:,} series' "
                           f"scales, not {brief(series_scales)}")
    for uid, scales in series_scales.items():
        if len(uid) > MAX_UID_CHARS:
            raise VolcastError(f"state.series_scales names a series of {len(uid):,} "
                               f"characters; at most {MAX_UID_CHARS}")
        check_scales(scales, members, quantiles, f"state.series_scales[{brief(uid)}]")


def calibrate(pred: np.ndarray, scales: np.ndarray, median: int) -> np.ndarray:
    """Stretch each quantile's distance from the median by its validation-fitted scale
    (``train.fit_scales``): pred [..., Q], scales broadcast to it. The median is exactly
    itself whatever the scales (its distance is 0)."""
    mid = pred[..., median : median + 1]
    return mid + (pred - mid) * scales
