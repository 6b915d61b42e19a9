"""The network: an LSTM over the past window and a direct multi-horizon quantile head.

Shapes in comments: B windows, L lookback, F past features, H horizon, Q quantiles. The median
is predicted as a correction to the 7-day same-slot mean (a strong seasonal guess the network
then improves), the other quantiles as positive distances from it, so they never cross.
Everything is in normalised log volume (see ``windows.py``).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from volcast.models.lstm.settings import LSTMSettings
from volcast.models.lstm.windows import BASE_COLUMN, N_FUTURE, n_past_features

STEP_EMBEDDING = 16


@dataclass
class NetConfig:
    """Everything needed to rebuild the network; saved beside its weights (``state.net``)."""

    n_past: int  # F
    horizon: int  # H
    quantiles: list[float]  # Q levels, ascending, 0.5 among them
    hidden: int
    layers: int
    dropout: float

    @classmethod
    def of(cls, settings: LSTMSettings, has_trades: bool) -> "NetConfig":
        """The network the settings ask for (with trade counts as an input or not)."""
        return cls(n_past_features(tuple(settings.features), has_trades), settings.horizon,
                   settings.quantiles, settings.hidden_size, settings.layers, settings.dropout)


class VolumeLSTM(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.LSTM(cfg.n_past, cfg.hidden, cfg.layers, batch_first=True,
                               dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.step = nn.Embedding(cfg.horizon, STEP_EMBEDDING)
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden + N_FUTURE + STEP_EMBEDDING, cfg.hidden), nn.GELU(),
            nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, len(cfg.quantiles)))
        self.median = cfg.quantiles.index(0.5)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """past [B, L, F], future [B, H, 9] -> quantiles [B, H, Q], ascending along Q."""
        batch, horizon = future.shape[0], future.shape[1]
        _, (h, _) = self.encoder(past)  # h [layers, B, hidden]
        context = h[-1].unsqueeze(1).expand(-1, horizon, -1)  # [B, H, hidden]
        steps = self.step.weight[:horizon].unsqueeze(0).expand(batch, -1, -1)  # [B, H, 16]
        raw = self.head(torch.cat([context, future, steps], dim=-1))  # [B, H, Q]
        mid = future[..., BASE_COLUMN] + raw[..., self.median]  # [B, H]
        gaps = nn.functional.softplus(raw)  # [B, H, Q], distances between neighbours
        below = mid.unsqueeze(-1) - gaps[..., : self.median].flip(-1).cumsum(-1).flip(-1)
        above = mid.unsqueeze(-1) + gaps[..., self.median + 1:].cumsum(-1)
        return torch.cat([below, mid.unsqueeze(-1), above], dim=-1)  # [B, H, Q]


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean quantile loss; pred [B, H, Q], target [B, H], quantiles [Q]."""
    diff = target.unsqueeze(-1) - pred  # [B, H, Q]
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()


def parameter_shapes(cfg: NetConfig) -> dict[str, tuple[int, ...]]:
    """Each parameter's shape, from a network built on the meta device (no memory)."""
    with torch.device("meta"):
        net = VolumeLSTM(cfg)
    return {name: tuple(value.shape) for name, value in net.state_dict().items()}


@torch.no_grad()
def run_members(nets: list[VolumeLSTM], past: np.ndarray, future: np.ndarray
                ) -> list[np.ndarray]:
    """Each network's quantiles [B, H, Q] for windows past [B, L, F], future [B, H, 9], on
    the CPU (where a trained or loaded network lives)."""
    past_t, future_t = torch.from_numpy(past), torch.from_numpy(future)
    for net in nets:
        net.eval()
    return [net(past_t, future_t).numpy() for net in nets]


def load_members(config: dict[str, Any], members: int, tensors: dict[str, torch.Tensor]
                 ) -> list[VolumeLSTM]:
    """The member networks saved as ``{member}.{parameter}`` tensors beside their config."""
    nets = []
    for i in range(members):
        net = VolumeLSTM(NetConfig(**config))
        prefix = f"{i}."
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                             if k.startswith(prefix)})
        nets.append(net)
    return nets
