"""The training loop of every network, kept apart from the networks as nanoGPT keeps train.py
apart: the LSTM and the transformer differ only in the network ``train`` is given to build.

Windows come from every series (a global model), split in time (``windows.split_windows``);
training batches are made as they are needed, and the validation windows, capped at
``val_windows`` in all, are made once into one set of arrays the batches are views of.
Each member network: Adam, gradient clipping at 1, each batch's gradient summed over its
``shards`` in order (computed here, or spread over ranks: ``models.parallel``), early stopping
on validation pinball loss with the best weights restored, a per-quantile scale fitted on
validation (conformal-style) so that the intervals cover what they claim (on all held-out
windows, and on each series' own where it has ``MIN_SERIES_WINDOWS`` of them), then with
``refit`` the same seeded run again on every window, validation included, for the number of
epochs early stopping picked.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from volcast.errors import VolcastError
from volcast.models import parallel
from volcast.models.base import EpochProgress, stop_check
from volcast.models.lstm.network import QuantileNet, pinball
from volcast.models.lstm.settings import MIN_SERIES_WINDOWS, SCALE_RANGE, NeuralSettings
from volcast.models.lstm.windows import (
    Index,
    Pool,
    SeriesArrays,
    Split,
    batch_pairs,
    gather,
    split_windows,
    window_batch,
)

Batch = dict[str, torch.Tensor]
Build = Callable[[], QuantileNet]
"""Makes a fresh network (on the CPU, from the global torch seed)."""


@dataclass
class Validation:
    """What training held out, so that models built on a network (the ensemble) learn from the
    same split instead of recomputing it: every series' arrays, the split, the held-out windows
    (past [N, L, F], future [N, H, 9], target [N, H], mu [N], sigma [N]; N at most
    ``val_windows``, so their memory does not grow with the number of series) and each member's
    early-stopped prediction for them (pred [M, N, H, Q], normalised log volume, uncalibrated)."""

    arrays: list[SeriesArrays]
    split: Split
    windows: dict[str, np.ndarray]
    pred: np.ndarray


@dataclass
class Trained:
    """The member networks (on the CPU), their quantile scales (pooled over every held-out
    window, and per series number for the series with ``MIN_SERIES_WINDOWS`` of them), their
    early-stopping loss history (``member`` tells them apart) and the validation they were
    judged on."""

    nets: list[QuantileNet]
    scales: list[list[float]]
    series_scales: dict[int, list[list[float]]]
    history: list[dict[str, float]]
    validation: Validation


class EpochCounter:
    """One fit's epochs as ``base.EpochProgress`` sees them: ``done`` counts every epoch of every
    phase and member; ``total`` starts at the most the fit can take and shrinks by the epochs a
    phase will not use once early stopping has settled its length."""

    def __init__(self, progress: EpochProgress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def epoch(self, train: float, val: float, unused: int = 0) -> None:
        self.done += 1
        self.total -= unused
        if self.progress:
            self.progress(self.done, self.total, train, val)


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise VolcastError("device 'cuda' asked for, but torch sees no CUDA GPU")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def history_candles(settings: NeuralSettings, step: int) -> int | None:
    return None if settings.train_days is None else settings.train_days * 86_400_000 // step


def train(arrays: list[SeriesArrays], settings: NeuralSettings, build: Build,
          progress: EpochProgress | None) -> Trained:
    """Train ``members`` networks made by ``build`` (seeds seed, seed + 1, ...) on the same
    windows of ``arrays``: here, or on the ranks of a ``parallel.spread`` (the same weights)."""
    trained = parallel.run(partial(_train, arrays, settings, build), settings.shards, progress)
    trained.validation.arrays = arrays  # a rank's result comes back without its inputs
    return trained


def _train(arrays: list[SeriesArrays], settings: NeuralSettings, build: Build,
           ranks: parallel.Ranks, progress: EpochProgress | None) -> Trained:
    median = settings.quantiles.index(0.5)
    device = pick_device(settings.device)
    split = split_windows(arrays, settings, history_candles(settings, arrays[0].step))
    stop = stop_check(progress)  # before every batch: a stop request ends the fit within one
    pool = Pool.of(arrays, split.every, settings.lookback)  # a batch is one call
    held_out = gather(pool, split.validation, settings, stop)
    val_batches = [_to({k: v[start:start + settings.batch_size] for k, v in held_out.items()},
                       device)  # views of held_out on the CPU, not a second copy
                   for start in range(0, len(held_out["mu"]), settings.batch_size)]
    phases = 2 if settings.refit else 1
    counter = EpochCounter(progress, settings.members * phases * settings.epochs)
    nets, scales, history, preds = [], [], [], []
    for member in range(settings.members):
        seeded = settings.model_copy(update={"seed": settings.seed + member})
        net, member_history, pred = _train_member(build, pool, split, val_batches, seeded,
                                                  device, counter, stop, ranks)
        nets.append(net)
        scales.append(fit_scales(pred, held_out["target"], settings.quantiles, median))
        history += [h | {"member": member} for h in member_history]
        preds.append(pred)
    pred = np.stack(preds)  # [M, N, H, Q]
    own = series_scales(pred, held_out["target"], window_series(split.validation),
                        settings.quantiles, median)
    return Trained(nets, scales, own, history, Validation([], split, held_out, pred))


def _train_member(build: Build, pool: Pool, split: Split,
                  val_batches: list[Batch], settings: NeuralSettings, device: torch.device,
                  counter: EpochCounter, stop: Callable[[], None], ranks: parallel.Ranks
                  ) -> tuple[QuantileNet, list[dict[str, float]], np.ndarray]:
    """Early stopping, then (``refit``) the same seeded run on every window for the best
    epoch count. Returns the network on the CPU, the early-stopping history and what the
    early-stopped network predicted for the validation windows [N, H, Q]."""
    quantiles = torch.tensor(settings.quantiles, device=device)
    history: list[dict[str, float]] = []
    best_val, best_state, stale = math.inf, None, 0
    epochs = _epochs(build, pool, split.train, settings, device, stop, ranks)
    for epoch, (net, loss) in enumerate(epochs, 1):
        val = evaluate(net, val_batches, quantiles, stop, ranks)
        history.append({"epoch": epoch, "train": loss, "val": val})
        if val < best_val - 1e-5:
            best_val, stale = val, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
        best = min(history, key=lambda h: h["val"])
        refit_epochs = int(best["epoch"]) if settings.refit else 0
        done = stale >= settings.patience or epoch == settings.epochs
        # once done, both lengths are settled: drop the epochs this phase and the refit won't run
        unused = settings.epochs - epoch + (settings.epochs - refit_epochs if settings.refit else 0)
        counter.epoch(loss, val, unused if done else 0)
        if done:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    pred = predict_batches(net, val_batches, stop)
    refit = _epochs(build, pool, split.every, settings, device, stop, ranks)
    for _ in range(refit_epochs):
        net, loss = next(refit)
        counter.epoch(loss, best["val"])  # no validation in the refit: its epoch count's loss
    return net.cpu(), history, pred


def _epochs(build: Build, pool: Pool, index: Index, settings: NeuralSettings,
            device: torch.device, stop: Callable[[], None], ranks: parallel.Ranks
            ) -> Iterator[tuple[QuantileNet, float]]:
    """A seeded run from a fresh network: after each epoch, the network and its mean loss."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = build().to(device)
    quantiles = torch.tensor(settings.quantiles, device=device)
    optimiser = Adam(list(net.parameters()), settings.learning_rate)
    while True:
        net.train()
        losses = []
        epoch_index = [(n, e[rng.integers(settings.stride):: settings.stride]) for n, e in index]
        for pairs in batch_pairs(epoch_index, settings.batch_size, rng):
            stop()
            losses.append(_gradient(net, pool, pairs, settings, quantiles, rng, ranks))
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
        yield net, float(np.mean(losses))


def _gradient(net: QuantileNet, pool: Pool, pairs: np.ndarray,
              settings: NeuralSettings, quantiles: torch.Tensor, rng: np.random.Generator,
              ranks: parallel.Ranks) -> float:
    """The loss of the batch of windows ``pairs``, its gradient left in the network's
    ``grad``: each of ``shards`` parts on its own (this rank's parts here, the others' on
    theirs; with several, each with its own dropout seed from ``rng``), then summed in part
    order, so every rank ends with the same gradient whatever the number of ranks. One part
    (the default) is exactly the plain loss and gradient."""
    if settings.shards == 1 and ranks.world == 1:  # nothing to add up: the plain gradient
        return _part(net, pool, pairs, len(pairs), settings, quantiles)
    params, device = list(net.parameters()), quantiles.device
    parts = np.array_split(pairs, settings.shards)
    seeds = rng.integers(2**62, size=len(parts))
    local = []
    for number in ranks.mine(len(parts)):
        torch.manual_seed(int(seeds[number]))
        loss = _part(net, pool, parts[number], len(pairs), settings, quantiles)
        flat = [torch.zeros(p.numel(), device=device) if p.grad is None else p.grad.reshape(-1)
                for p in params]
        local.append(torch.cat([torch.cat(flat).double(),
                                torch.tensor([loss], dtype=torch.float64, device=device)]))
    every = ranks.gather(torch.stack(local), len(parts))
    total = every[0].clone()
    for row in every[1:]:
        total += row
    at = 0
    for p in params:
        p.grad = total[at:at + p.numel()].view_as(p).to(p.dtype)
        at += p.numel()
    return float(total[-1])


def _part(net: QuantileNet, pool: Pool, pairs: np.ndarray, count: int,
          settings: NeuralSettings, quantiles: torch.Tensor) -> float:
    """The loss of the windows ``pairs``, part of a batch of ``count``, with the network's
    ``grad`` left holding their gradient alone (None where none: an empty part)."""
    for p in net.parameters():
        p.grad = None
    if not len(pairs):
        return 0.0
    batch = _to(window_batch(pool, pairs, settings), quantiles.device)
    return _backward(net, batch, quantiles, settings.micro_batch, count)


def _backward(net: QuantileNet, batch: Batch, quantiles: torch.Tensor, micro: int | None,
              count: int) -> float:
    """The pinball loss of ``batch`` (windows of a batch of ``count``) weighted by its share
    of them, its gradient accumulated over slices of at most ``micro`` windows: a network
    keeps every step's activations of the windows it runs at once (the LSTM's for 256
    windows of 168 candles: about 200 MB), so memory follows the slice. One slice of the
    whole batch (the default): exactly the plain loss and gradient; more: the same up to
    rounding, and each slice draws its own dropout."""
    size = min(micro or count, len(batch["target"]))
    total = 0.0
    for at in range(0, len(batch["target"]), size):
        part = {k: v[at:at + size] for k, v in batch.items()}
        loss = pinball(net(part["past"], part["future"]), part["target"], quantiles)
        if len(part["target"]) < count:
            loss = loss * (len(part["target"]) / count)
        loss.backward()
        total += loss.item()
    return total


class Adam:
    """``torch.optim.Adam`` with its defaults (betas 0.9 and 0.999, eps 1e-8), the same tensor
    operations in the same order, so the same weights to the last bit on the CPU
    (``test_adam_is_torch_adam``). Not torch's own because any ``torch.optim`` optimizer imports
    ``torch._dynamo`` when it is made: some 800 modules, 65 MB and 2 s that nothing else of a
    fit needs (a fifth of issue 16's 400 MB for a whole backtest)."""

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, params: list[torch.Tensor], lr: float) -> None:
        self.params, self.lr, self.steps = params, lr, 0
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        (beta1, beta2), self.steps = self.BETAS, self.steps + 1
        step_size = self.lr / (1 - beta1 ** self.steps)
        correction = (1 - beta2 ** self.steps) ** 0.5
        for p, (mean, square) in zip(self.params, self.moments, strict=True):
            if p.grad is None:
                continue
            mean.lerp_(p.grad, 1 - beta1)
            square.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            p.addcdiv_(mean, (square.sqrt() / correction).add_(self.EPS), value=-step_size)


def _to(batch: dict[str, np.ndarray], device: torch.device) -> Batch:
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate(net: QuantileNet, val_batches: list[Batch], quantiles: torch.Tensor,
             stop: Callable[[], None], ranks: parallel.Ranks) -> float:
    """The mean pinball loss over every validation window; with ranks, each runs its share of
    the batches and the batches' losses are added up in order on every rank."""
    net.eval()
    losses = []
    for number in ranks.mine(len(val_batches)):
        stop()
        b = val_batches[number]
        losses.append(pinball(net(b["past"], b["future"]), b["target"], quantiles).item()
                      * len(b["target"]))
    total = 0.0
    for loss in ranks.gather(torch.tensor(losses, dtype=torch.float64), len(val_batches)):
        total += float(loss)
    return total / sum(len(b["target"]) for b in val_batches)


@torch.no_grad()
def predict_batches(net: QuantileNet, val_batches: list[Batch], stop: Callable[[], None]
                    ) -> np.ndarray:
    """[N, H, Q] for every window of the batches, in their order."""
    net.eval()
    parts = []
    for b in val_batches:
        stop()
        parts.append(net(b["past"], b["future"]))
    return torch.cat(parts).cpu().numpy()


def window_series(index: Index) -> np.ndarray:
    """The series number of each window ``gather`` makes of ``index`` [N], in its order
    (``batches`` keeps the index's order when it does not shuffle; ``split_windows`` lists
    the series in ascending order)."""
    return np.concatenate([np.full(len(ends), number) for number, ends in index])


def series_scales(pred: np.ndarray, target: np.ndarray, series: np.ndarray,
                  quantiles: list[float], median: int) -> dict[int, list[list[float]]]:
    """Each member's ``fit_scales`` on one series' held-out windows alone, for every series
    number with at least ``MIN_SERIES_WINDOWS`` of them: a global model's pooled scales are
    too wide on its calm series and too narrow on its wild ones. pred [M, N, H, Q], target
    [N, H], series [N]."""
    numbers, counts = np.unique(series, return_counts=True)
    return {int(n): [fit_scales(member[series == n], target[series == n], quantiles, median)
                     for member in pred]
            for n, count in zip(numbers, counts, strict=True) if count >= MIN_SERIES_WINDOWS}


def fit_scales(pred: np.ndarray, target: np.ndarray, quantiles: list[float],
               median: int) -> list[float]:
    """Per quantile q, the factor s on its distance d from the median such that a share q of
    validation targets lies below median + s * d (median: 1). pred [N, H, Q], target [N, H]."""
    mid = pred[..., median]
    scales = []
    for i, q in enumerate(quantiles):
        distance = pred[..., i] - mid
        if i == median:
            scales.append(1.0)
            continue
        ratio = (target - mid) / np.where(np.abs(distance) < 1e-6, 1e-6, distance)
        level = q if q > 0.5 else 1 - q
        scales.append(float(np.clip(np.quantile(ratio, level), *SCALE_RANGE)))
    return scales
