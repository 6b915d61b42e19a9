"""The core forecaster: an LSTM over the past window, a direct multi-horizon quantile head.

Shapes in comments: B windows, L lookback, F past features, H horizon, Q quantiles. The median
is predicted as a correction to the 7-day same-slot mean (a strong seasonal guess the network
then improves), the other quantiles as positive distances from it, so they never cross.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from volcast.data.frames import calendar, future_ds, on_grid, split_series, step_ms
from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError
from volcast.models.base import EpochProgress, Forecaster, training_info
from volcast.models.settings import LSTMSettings
from volcast.models.windows import (
    BASE_COLUMN,
    CONTEXT_DAYS,
    N_FUTURE,
    SeriesArrays,
    make_windows,
    n_past_features,
)


@dataclass
class NetConfig:
    n_past: int
    horizon: int
    quantiles: list[float]
    hidden: int
    layers: int
    dropout: float


class VolumeLSTM(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.LSTM(cfg.n_past, cfg.hidden, cfg.layers, batch_first=True,
                               dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.step = nn.Embedding(cfg.horizon, 16)
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden + N_FUTURE + 16, cfg.hidden), nn.GELU(),
            nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, len(cfg.quantiles)))
        self.median = cfg.quantiles.index(0.5)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        batch, horizon = future.shape[0], future.shape[1]
        _, (h, _) = self.encoder(past)  # h [layers, B, hidden]
        context = h[-1].unsqueeze(1).expand(-1, horizon, -1)  # [B, H, hidden]
        steps = self.step.weight[:horizon].unsqueeze(0).expand(batch, -1, -1)  # [B, H, 16]
        raw = self.head(torch.cat([context, future, steps], dim=-1))  # [B, H, Q]
        mid = future[..., BASE_COLUMN] + raw[..., self.median]  # [B, H]
        gaps = nn.functional.softplus(raw)  # [B, H, Q], distances between neighbours
        below = mid.unsqueeze(-1) - gaps[..., : self.median].flip(-1).cumsum(-1).flip(-1)
        above = mid.unsqueeze(-1) + gaps[..., self.median + 1:].cumsum(-1)
        return torch.cat([below, mid.unsqueeze(-1), above], dim=-1)  # [B, H, Q] ascending


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean quantile loss; pred [B, H, Q], target [B, H], quantiles [Q]."""
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise VolcastError("device 'cuda' asked for, but torch sees no CUDA GPU")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


class LSTMForecaster(Forecaster):
    name = "lstm"
    Settings = LSTMSettings
    supports_quantiles = True

    def __init__(self, settings: LSTMSettings | None = None) -> None:
        super().__init__(settings)
        self.nets: list[VolumeLSTM] = []
        self.scales: list[list[float]] = []
        self.has_trades = False
        self.history: list[dict[str, float]] = []

    @property
    def s(self) -> LSTMSettings:
        return self.settings  # type: ignore[return-value]

    def _arrays(self, series: pd.DataFrame) -> SeriesArrays:
        """Inputs on the grid; trade counts only when the model was trained with them."""
        if self.has_trades and ("trades" not in series or series["trades"].isna().any()):
            raise VolcastError("this model was trained with trade counts; the data has none")
        features = tuple(f for f in self.s.features if f != "trades" or self.has_trades)
        step = step_ms(series["ds"])
        return SeriesArrays.build(on_grid(series, step), step, features)

    def fit(self, long: pd.DataFrame, progress: EpochProgress | None = None) -> None:
        from volcast.models.train import train

        parts = split_series(long)
        self.has_trades = bool("trades" in self.s.features and "trades" in long
                               and long["trades"].notna().all())
        arrays = [self._arrays(series) for series in parts.values()]
        cfg = NetConfig(n_past_features(tuple(self.s.features), self.has_trades),
                        self.s.horizon, self.s.quantiles, self.s.hidden_size, self.s.layers,
                        self.s.dropout)
        self.nets, self.scales, self.history, done = [], [], [], 0
        self.validation: list[dict[str, np.ndarray]] = []  # for models built on this one
        for member in range(self.s.members):  # same data, seeds seed, seed + 1, ...
            def shown(epoch: int, epochs: int, loss: float, val: float, base: int = done) -> None:
                if progress:
                    progress(base + epoch, base + epochs, loss, val)

            seeded = self.s.model_copy(update={"seed": self.s.seed + member})
            trained = train(cfg, arrays, seeded, shown)
            self.nets.append(trained.net)
            self.scales.append(trained.scales)
            self.history += [h | {"member": member} for h in trained.history]
            self.validation.append(trained.validation)
            done += len(trained.history)
        self.info = training_info(long) | {"epochs_run": len(self.history),
                                            "best_val_loss": min(h["val"] for h in self.history)}

    def predict(self, long: pd.DataFrame, horizon: int) -> pd.DataFrame:
        if not self.nets:
            raise VolcastError("the LSTM has not been trained")
        if horizon > self.s.horizon:
            raise VolcastError(f"this model forecasts {self.s.horizon} candles at most, "
                               f"not {horizon}")
        frames = []
        for uid, series in split_series(long).items():
            step = step_ms(series["ds"])
            reach = max(self.s.lookback + 1, CONTEXT_DAYS * DAY_MS // step + 1)
            tail = series[series["ds"] > series["ds"].iloc[-1] - reach * step]
            arrays = self._arrays(tail)
            if len(arrays.raw) < self.s.lookback:
                raise VolcastError(f"{uid}: the LSTM needs {self.s.lookback} candles of "
                                   f"history, got {len(arrays.raw)}")
            ds = future_ds(int(tail["ds"].iloc[-1]), step, self.s.horizon)
            windows = make_windows(arrays, np.array([len(arrays.raw)]), self.s.lookback,
                                   self.s.horizon, calendar(ds)[None].astype(np.float32)
                                   if "calendar" in self.s.features else None)
            sigma, mu = windows["sigma"][:, None, None], windows["mu"][:, None, None]
            log_volume = self._normalised(windows) * sigma + mu  # [1, H, Q]
            values = np.expm1(log_volume).clip(min=0.0)[0, :horizon]  # [H, Q]
            frame = pd.DataFrame(values, columns=[f"q{round(q * 100)}"
                                                  for q in self.s.quantiles])
            frames.append(frame.assign(unique_id=uid, ds=ds[:horizon]))
        out = pd.concat(frames, ignore_index=True)
        for column in ("q10", "q90"):
            if column not in out:
                out[column] = np.nan
        return out[["unique_id", "ds", "q10", "q50", "q90",
                    *[c for c in out if c.startswith("q") and c not in ("q10", "q50", "q90")]]]

    @torch.no_grad()
    def _normalised(self, windows: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated quantiles [B, H, Q] for prepared windows, in normalised log volume."""
        if "calendar" not in self.s.features:
            windows["future"][..., :4] = 0.0
        past, future = torch.from_numpy(windows["past"]), torch.from_numpy(windows["future"])
        members = []
        for net, scales in zip(self.nets, self.scales, strict=True):
            net.eval()
            raw = net(past, future).numpy()  # [B, H, Q], normalised log volume
            members.append(calibrate(raw, scales, net.median))
        return np.mean(members, axis=0)  # an average of ordered quantiles stays ordered

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.nets:
            raise VolcastError("the LSTM has not been trained")
        weights = {f"{i}.{k}": v.detach().cpu().contiguous()
                   for i, net in enumerate(self.nets) for k, v in net.state_dict().items()}
        return ({"net": asdict(self.nets[0].cfg), "members": len(self.nets),
                 "scales": self.scales, "has_trades": self.has_trades,
                 "history": self.history}, weights)

    def restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        try:
            self.nets = []
            for i in range(state["members"]):
                net = VolumeLSTM(NetConfig(**state["net"]))
                prefix = f"{i}."
                net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                     if k.startswith(prefix)})
                self.nets.append(net)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise VolcastError(f"saved LSTM does not match this volcast ({str(exc)[:160]})"
                               ) from None
        self.scales, self.has_trades = state["scales"], state["has_trades"]
        self.history = state.get("history", [])


def calibrate(pred: np.ndarray, scales: list[float], median: int) -> np.ndarray:
    """Stretch each quantile's distance from the median by its validation-fitted scale."""
    if not scales:
        return pred
    mid = pred[..., median : median + 1]
    return mid + (pred - mid) * np.asarray(scales, dtype=pred.dtype)
