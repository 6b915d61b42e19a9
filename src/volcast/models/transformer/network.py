"""The transformer: a patch encoder (PatchTST's tokens) read by one query per forecast step.

The past window [B, L, F] is cut into P = L / patch_len patches of consecutive candles, each
patch's inputs flattened into one token (volume, price moves, covariates and calendar mixed),
embedded linearly with a learned position and encoded by pre-norm transformer layers. Each
forecast step then asks the encoded patches one question by cross-attention: a query made of
that step's known-future inputs (calendar, seasonal volumes) and a step embedding. An MLP turns
each step's answer into raw quantiles, ordered as every network's (``QuantileNet.ordered``).
Shapes: B windows, P patches, D d_model, H horizon, Q quantiles.
"""

from dataclasses import dataclass

import torch
from torch import nn

from volcast.models.lstm.network import QuantileNet
from volcast.models.lstm.windows import N_FUTURE
from volcast.models.transformer.settings import TransformerSettings


@dataclass
class TransformerConfig:
    """Everything needed to rebuild the network; saved beside its weights (``state.net``)."""

    n_past: int  # F
    lookback: int  # L, a multiple of patch_len
    horizon: int  # H
    quantiles: list[float]  # Q levels, ascending, 0.5 among them
    patch_len: int
    d_model: int  # D
    heads: int
    layers: int
    dropout: float


class VolumeTransformer(QuantileNet):
    Config = TransformerConfig

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__(cfg)
        d = cfg.d_model
        self.embed = nn.Linear(cfg.patch_len * cfg.n_past, d)
        self.position = nn.Parameter(0.02 * torch.randn(cfg.lookback // cfg.patch_len, d))
        self.encoder = nn.Sequential(*[  # one layer each, not nn.TransformerEncoder's clones
            nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, cfg.dropout, "gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(cfg.layers)])
        self.memory_norm = nn.LayerNorm(d)
        self.query = nn.Linear(N_FUTURE, d)
        self.step = nn.Embedding(cfg.horizon, d)
        self.query_norm = nn.LayerNorm(d)
        self.attend = nn.MultiheadAttention(d, cfg.heads, cfg.dropout, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(),
                                  nn.Dropout(cfg.dropout), nn.Linear(d, len(cfg.quantiles)))

    @classmethod
    def config(cls, settings: TransformerSettings, n_past: int  # type: ignore[override]
               ) -> TransformerConfig:
        return TransformerConfig(n_past, settings.lookback, settings.horizon,
                                 settings.quantiles, settings.patch_len, settings.d_model,
                                 settings.heads, settings.layers, settings.dropout)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """past [B, L, F], future [B, H, 9] -> quantiles [B, H, Q], ascending along Q."""
        batch, horizon = future.shape[0], future.shape[1]
        patches = past.reshape(batch, -1, self.cfg.patch_len * past.shape[2])  # [B, P, len*F]
        memory = self.memory_norm(self.encoder(self.embed(patches) + self.position))  # [B, P, D]
        queries = self.query(future) + self.step.weight[:horizon]  # [B, H, D]
        answer, _ = self.attend(self.query_norm(queries), memory, memory, need_weights=False)
        return self.ordered(self.head(queries + answer), future)  # [B, H, Q]
