"""The networks' common ground (``QuantileNet``, the pinball loss, members) and the LSTM.

Shapes in comments: B windows, L lookback, F past features, H horizon, Q quantiles. Every
network predicts the median as a correction to the 7-day same-slot mean (a strong seasonal
guess the network then improves), the other quantiles as positive distances from it, so they
never cross (``QuantileNet.ordered``). Everything is in normalised log volume (``windows.py``).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from volcast.models.lstm.settings import LSTMSettings, NeuralSettings
from volcast.models.lstm.windows import BASE_COLUMN, N_FUTURE

STEP_EMBEDDING = 16


class QuantileNet(nn.Module, ABC):
    """A network of the neural path: windows past [B, L, F] and future [B, H, 9] in, ordered
    quantiles [B, H, Q] out. ``Config`` is the dataclass that rebuilds it (saved as
    ``state.net``); only the network differs between the neural models."""

    Config: ClassVar[type]

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.median = cfg.quantiles.index(0.5)

    @classmethod
    @abstractmethod
    def config(cls, settings: NeuralSettings, n_past: int) -> Any:
        """The ``Config`` the settings ask for, given the number of past inputs F."""

    def ordered(self, raw: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Raw outputs [B, H, Q] -> quantiles [B, H, Q]: the median relative to the 7-day
        same-slot mean (future input ``BASE_COLUMN``), the others softplus gaps from it."""
        mid = future[..., BASE_COLUMN] + raw[..., self.median]  # [B, H]
        gaps = nn.functional.softplus(raw)  # [B, H, Q], distances between neighbours
        below = mid.unsqueeze(-1) - gaps[..., : self.median].flip(-1).cumsum(-1).flip(-1)
        above = mid.unsqueeze(-1) + gaps[..., self.median + 1:].cumsum(-1)
        return torch.cat([below, mid.unsqueeze(-1), above], dim=-1)  # [B, H, Q]


@dataclass
class NetConfig:
    """Everything needed to rebuild the network; saved beside its weights (``state.net``)."""

    n_past: int  # F
    horizon: int  # H
    quantiles: list[float]  # Q levels, ascending, 0.5 among them
    hidden: int
    layers: int
    dropout: float


class VolumeLSTM(QuantileNet):
    """An LSTM over the past window; its last hidden state, the future inputs and a step
    embedding make each step's quantiles."""

    Config = NetConfig

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__(cfg)
        self.encoder = nn.LSTM(cfg.n_past, cfg.hidden, cfg.layers, batch_first=True,
                               dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.step = nn.Embedding(cfg.horizon, STEP_EMBEDDING)
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden + N_FUTURE + STEP_EMBEDDING, cfg.hidden), nn.GELU(),
            nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, len(cfg.quantiles)))

    @classmethod
    def config(cls, settings: LSTMSettings, n_past: int) -> NetConfig:  # type: ignore[override]
        return NetConfig(n_past, settings.horizon, settings.quantiles, settings.hidden_size,
                         settings.layers, settings.dropout)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """past [B, L, F], future [B, H, 9] -> quantiles [B, H, Q], ascending along Q."""
        batch, horizon = future.shape[0], future.shape[1]
        _, (h, _) = self.encoder(past)  # h [layers, B, hidden]
        context = h[-1].unsqueeze(1).expand(-1, horizon, -1)  # [B, H, hidden]
        steps = self.step.weight[:horizon].unsqueeze(0).expand(batch, -1, -1)  # [B, H, 16]
        return self.ordered(self.head(torch.cat([context, future, steps], dim=-1)), future)


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean quantile loss; pred [B, H, Q], target [B, H], quantiles [Q]."""
    diff = target.unsqueeze(-1) - pred  # [B, H, Q]
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()


def parameter_shapes(network: type[QuantileNet], cfg: Any) -> dict[str, tuple[int, ...]]:
    """Each parameter's shape, from a network built on the meta device (no memory) and left
    uninitialised (``Uninitialised``)."""
    with torch.device("meta"), Uninitialised():
        net = network(cfg)
    return {name: tuple(value.shape) for name, value in net.state_dict().items()}


class Uninitialised(TorchFunctionMode):
    """Skips in-place fills (``normal_``, ``uniform_``, ...) of meta tensors: their shapes are
    all a meta network is for, and a random fill on the meta device imports torch._dynamo
    (1 s and 65 MB on each process' first model load)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else kwargs.get("tensor")  # torch.nn.init passes it by name
        if (name.endswith("_") and not name.endswith("__") and isinstance(target, torch.Tensor)
                and target.is_meta):
            return target
        return func(*args, **kwargs)


@torch.no_grad()
def run_members(nets: list[QuantileNet], past: np.ndarray, future: np.ndarray
                ) -> list[np.ndarray]:
    """Each network's quantiles [B, H, Q] for windows past [B, L, F], future [B, H, 9], on
    the CPU (where a trained or loaded network lives)."""
    past_t, future_t = torch.from_numpy(past), torch.from_numpy(future)
    for net in nets:
        net.eval()
    return [net(past_t, future_t).numpy() for net in nets]


def load_members(network: type[QuantileNet], config: dict[str, Any], members: int,
                 tensors: dict[str, torch.Tensor]) -> list[QuantileNet]:
    """The member networks saved as ``{member}.{parameter}`` tensors beside their config."""
    nets = []
    for i in range(members):
        net = network(network.Config(**config))
        prefix = f"{i}."
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                             if k.startswith(prefix)})
        nets.append(net)
    return nets
