"""The LSTM's training loop, kept apart from the network as nanoGPT keeps train.py apart.

Windows come from every series (a global model), split in time: the newest ``val_fraction`` of
window end times is validation, and training windows end at least one horizon before it, so no
target is seen by both. Adam, gradient clipping at 1, early stopping on validation pinball loss
with the best weights restored, then a per-quantile scale fitted on validation (conformal-style)
so that the intervals cover what they claim.
"""

import ctypes
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

from volcast.errors import VolcastError
from volcast.models.base import EpochProgress
from volcast.models.lstm import NetConfig, VolumeLSTM, pick_device, pinball
from volcast.models.settings import LSTMSettings
from volcast.models.windows import SeriesArrays, make_windows

Index = list[tuple[int, np.ndarray]]
"""(series number, window end positions) pairs."""


def window_ends(a: SeriesArrays, lookback: int, horizon: int, newest: int | None) -> np.ndarray:
    """Every window end with a full past and a full target, within the newest candles."""
    first = lookback if newest is None else max(lookback, len(a.raw) - newest)
    return np.arange(first, len(a.raw) - horizon + 1)


def split_windows(arrays: list[SeriesArrays], lookback: int, horizon: int,
                  val_fraction: float, newest: int | None) -> tuple[Index, Index]:
    """Train and validation windows by time, with a horizon-long gap between them."""
    train, val = [], []
    for number, a in enumerate(arrays):
        ends = window_ends(a, lookback, horizon, newest)
        if len(ends) < 20:
            continue
        cut = ends[int(len(ends) * (1 - val_fraction))]
        train.append((number, ends[ends <= cut - horizon]))
        val.append((number, ends[ends >= cut]))
    if not train or sum(len(e) for _, e in train) < 10:
        need = lookback + horizon + 40
        raise VolcastError(f"too little history to train: each series needs well over {need} "
                           "candles (lookback + horizon + validation)")
    return train, val


def batches(arrays: list[SeriesArrays], index: Index, settings: LSTMSettings,
            rng: np.random.Generator | None) -> list[dict[str, np.ndarray]]:
    """Window batches, shuffled across series when rng is given."""
    pairs = np.concatenate([np.stack([np.full(len(e), n), e], axis=1) for n, e in index])
    if rng is not None:
        pairs = pairs[rng.permutation(len(pairs))]
    out = []
    for start in range(0, len(pairs), settings.batch_size):
        chunk = pairs[start:start + settings.batch_size]
        parts = [make_windows(arrays[n], chunk[chunk[:, 0] == n, 1], settings.lookback,
                              settings.horizon) for n in np.unique(chunk[:, 0])]
        out.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return out


def _to(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}


def keep_freed_memory() -> None:
    """Stop glibc from handing the LSTM's large per-step buffers back to the OS after every
    step: re-faulting them cost 40% of training time on two cores (sys time). Linux only."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)


@dataclass
class Trained:
    """A trained network (on the CPU), its quantile scales, its loss history, and what the
    early-stopped network predicted for the held-out validation windows (normalised log
    volume: pred [N, H, Q] before calibration, target [N, H], and each window's mu and sigma)."""

    net: VolumeLSTM
    scales: list[float]
    history: list[dict]
    validation: dict[str, np.ndarray]


def history_candles(settings: LSTMSettings, step: int) -> int | None:
    return None if settings.train_days is None else settings.train_days * 86_400_000 // step


def train(cfg: NetConfig, arrays: list[SeriesArrays], settings: LSTMSettings,
          progress: EpochProgress | None) -> Trained:
    """Train a network.

    Early stopping on validation picks the number of epochs and the calibration; with
    ``refit`` the network is then trained again from scratch on every window, validation
    included, for that many epochs, so the newest weeks (most like the future) are learned too.
    """
    keep_freed_memory()
    torch.set_num_threads(settings.threads or os.cpu_count() or 1)
    device = pick_device(settings.device)
    newest = history_candles(settings, arrays[0].step)
    train_index, val_index = split_windows(arrays, settings.lookback, settings.horizon,
                                           settings.val_fraction, newest)
    val_batches = [_to(b, device) for b in batches(arrays, val_index, settings, None)]
    net, history = _fit(cfg, arrays, train_index, val_batches, settings.epochs, settings,
                        device, progress)
    validation = predict_batches(net, val_batches)
    scales = fit_scales(validation, cfg, net.median)
    if settings.refit:
        best = min(history, key=lambda h: h["val"])
        everything = [(n, window_ends(a, settings.lookback, settings.horizon, newest))
                      for n, a in enumerate(arrays) if n in {i for i, _ in train_index}]
        shown = len(history)

        def more(epoch: int, epochs: int, loss: float, val: float) -> None:
            if progress:
                progress(shown + epoch, shown + epochs, loss, best["val"])

        net, _ = _fit(cfg, arrays, everything, None, best["epoch"], settings, device, more)
    return Trained(net.cpu(), scales, history, validation)


def _fit(cfg: NetConfig, arrays: list[SeriesArrays], index: Index,
         val_batches: list[dict[str, torch.Tensor]] | None, epochs: int,
         settings: LSTMSettings, device: torch.device, progress: EpochProgress | None
         ) -> tuple[VolumeLSTM, list[dict]]:
    """One training run from a seeded start; with validation batches it stops early and
    restores the best weights."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = VolumeLSTM(cfg).to(device)
    quantiles = torch.tensor(cfg.quantiles, device=device)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    best, best_state, history, stale = float("inf"), None, [], 0
    for epoch in range(1, epochs + 1):
        net.train()
        losses = []
        epoch_index = [(n, e[rng.integers(settings.stride):: settings.stride]) for n, e in index]
        for batch in batches(arrays, epoch_index, settings, rng):
            b = _to(batch, device)
            loss = pinball(net(b["past"], b["future"]), b["target"], quantiles)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            losses.append(loss.item())
        val = evaluate(net, val_batches, quantiles) if val_batches else float("nan")
        history.append({"epoch": epoch, "train": float(np.mean(losses)), "val": val})
        if progress:
            progress(epoch, epochs, history[-1]["train"], val)
        if val_batches is None:
            continue
        if val < best - 1e-5:
            best, stale = val, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net, history


@torch.no_grad()
def evaluate(net: VolumeLSTM, val_batches: list[dict[str, torch.Tensor]],
             quantiles: torch.Tensor) -> float:
    net.eval()
    total = sum(pinball(net(b["past"], b["future"]), b["target"], quantiles).item()
                * len(b["target"]) for b in val_batches)
    return total / sum(len(b["target"]) for b in val_batches)


@torch.no_grad()
def predict_batches(net: VolumeLSTM, val_batches: list[dict[str, torch.Tensor]]
                    ) -> dict[str, np.ndarray]:
    net.eval()
    found = {"pred": torch.cat([net(b["past"], b["future"]) for b in val_batches])}
    found |= {k: torch.cat([b[k] for b in val_batches]) for k in ("target", "mu", "sigma")}
    return {k: v.cpu().numpy() for k, v in found.items()}


def fit_scales(validation: dict[str, np.ndarray], cfg: NetConfig, median: int) -> list[float]:
    """Per quantile q, the factor s on its distance d from the median such that a share q of
    validation targets lies below median + s * d (median: 1)."""
    pred, target = validation["pred"], validation["target"]
    mid = pred[..., median]
    scales = []
    for i, q in enumerate(cfg.quantiles):
        distance = pred[..., i] - mid
        if i == median:
            scales.append(1.0)
            continue
        ratio = (target - mid) / np.where(np.abs(distance) < 1e-6, 1e-6, distance)
        level = q if q > 0.5 else 1 - q
        scales.append(float(np.clip(np.quantile(ratio, level), 0.05, 20.0)))
    return scales
