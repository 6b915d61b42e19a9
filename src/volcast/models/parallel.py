"""Data-parallel training: the processes (ranks) a fit's gradient shards are computed on.

A network's training batch is cut into ``shards`` (a model setting) and each shard's gradient
is computed on its own, then every shard's gradient is summed in shard order. The sum is the
same operations in the same order whichever rank computed each shard, so the weights depend
on ``shards`` and never on how many processes shared the work: this process alone
(``ALONE``), or ranks joined over ``torch.distributed`` with gloo (``joined``), such as the Ray
workers ``--ray`` starts (``workspace.executor``). The rest of a fit (validation, early
stopping, Adam) runs the same on every rank.

Who spreads a fit is decided by the program, not the model: a flow that has workers wraps its
fits in ``spread(launch)``; a fit reads it through ``run``. So the ``Forecaster`` API stays
``fit(long, progress)``.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from volcast.models.base import EpochProgress

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
JOIN_TIMEOUT = timedelta(minutes=10)
"""How long a rank waits for the others (to join, or in a step) before it fails: a rank that
died must not hang the others for gloo's default half an hour."""


class Ranks:
    """This process' place among the ranks of one fit: ``rank`` of ``world``. A group of one
    computes every shard itself."""

    rank = 0
    world = 1

    def mine(self, count: int) -> range:
        """Which of ``count`` pieces (shards, validation batches) this rank computes."""
        return range(self.rank, count, self.world)

    def gather(self, local: "torch.Tensor", count: int) -> "torch.Tensor":
        """Every rank's rows for its ``mine(count)`` pieces as one [count, ...] tensor in
        piece order, the same on every rank."""
        return local


ALONE = Ranks()

Fit = Callable[[Ranks, EpochProgress | None], T]
"""A fit as ranks run it: given its place and (rank 0 only) the progress to report to."""
Launch = Callable[[Fit[T], int, EpochProgress | None], T]
"""Runs a fit on up to ``shards`` ranks and returns rank 0's result."""

_launch: ContextVar[Launch | None] = ContextVar("launch", default=None)


@contextmanager
def spread(launch: Launch | None) -> Iterator[None]:
    """Fits inside this block run through ``launch`` (None: in this process)."""
    token = _launch.set(launch)
    try:
        yield
    finally:
        _launch.reset(token)


def run(fit: Fit[T], shards: int, progress: EpochProgress | None) -> T:
    """``fit`` on the ranks of the surrounding ``spread``, or alone when there are none or
    nothing to share (one shard)."""
    launch = _launch.get()
    if launch is None or shards < 2:
        return fit(ALONE, progress)
    return launch(fit, shards, progress)


class Gloo(Ranks):
    """A rank of a ``torch.distributed`` group (CPU tensors over gloo)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def gather(self, local: "torch.Tensor", count: int) -> "torch.Tensor":
        import torch
        import torch.distributed as dist

        per = -(-count // self.world)  # pieces of the busiest rank; the others pad
        padded = torch.zeros((per, *local.shape[1:]), dtype=local.dtype)
        padded[:len(local)] = local.cpu()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        # piece i is row i // world of rank i % world
        every = torch.stack(parts, dim=1).reshape(per * self.world, *local.shape[1:])
        return every[:count].to(local.device)


@contextmanager
def joined(rank: int, world: int, address: str) -> Iterator[Ranks]:
    """This process as ``rank`` of ``world`` ranks meeting at ``address`` (tcp://HOST:PORT,
    which rank 0 serves), until the block ends."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=world,
                            timeout=JOIN_TIMEOUT)
    try:
        yield Gloo(rank, world)
    finally:
        dist.destroy_process_group()
