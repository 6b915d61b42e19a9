"""Where many independent pieces of work run: one after another in this process (``Local``,
what volcast always did) or as Ray tasks (``RayExecutor``, ``--ray``) on a Ray cluster that
volcast starts on this machine or on a running one (``[ray] address``).

A piece of work is ``fn(item, shared)``: ``fn`` a module-level function (a worker imports it
by name), ``item`` what differs between pieces (one market's candles), ``shared`` what they all
read (a trained model's files). Ray stores ``shared`` once in its object store (``ray.put``),
so it crosses to each worker once, not once per task. Both executors call the same ``fn`` on
the same values, so a flow's results do not depend on where it ran.

Ray is an optional dependency: it is imported only when a ``RayExecutor`` runs, and a missing
package or an unreachable cluster is one ``VolcastError`` line. Each worker runs torch and
OpenMP with one thread, so that N workers on N cores do not oversubscribe them.

An executor may also train: ``launcher`` is what ``models.parallel.spread`` takes, so that a
network's fit with ``shards`` > 1 runs data-parallel on that many Ray workers (``RayExecutor``)
or in this process (``Local``: None), with the same weights either way.
"""

import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from volcast.config import RaySettings
from volcast.errors import VolcastError, one_line
from volcast.models.base import EpochProgress, stop_check
from volcast.models.parallel import Fit, Launch, joined

if TYPE_CHECKING:
    from ray.util.queue import Queue

Item = TypeVar("Item")
Shared = TypeVar("Shared")
Result = TypeVar("Result")
Work = Callable[[Item, Shared], Result]
Done = Callable[[int, int], None]
"""Called as (pieces done, pieces in all) after each piece."""

WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
"""Each Ray worker's environment, set when its process starts (before torch is imported):
one thread per worker, idle threads that do not spin (``models.runtime``)."""
RANK_ENV = {"CUDA_VISIBLE_DEVICES": ""}
"""A rank trains on its CPU: Ray (2.60) leaves every GPU visible to an actor that asks for none,
so N ranks would share GPU 0 unbeknown to Ray. A GPU machine trains faster in one process."""
PROGRESS_S = 0.5
"""How often a data-parallel fit's epochs are brought to the driver's progress."""
CONNECT_TIMEOUT_S = 5.0
"""How long a ray:// address gets to accept a connection before it is called unreachable
(Ray's own client would retry for 30 s and then say less)."""


class Executor(ABC):
    """Runs ``fn(item, shared)`` for every item; ``map`` returns the results in the items'
    order, ``each`` yields ``(index, result)`` as each piece finishes."""

    @abstractmethod
    def each(self, fn: Work[Item, Shared, Result], items: Sequence[Item], shared: Shared
             ) -> Iterator[tuple[int, Result]]: ...

    def map(self, fn: Work[Item, Shared, Result], items: Sequence[Item], shared: Shared,
            done: Done | None = None) -> list[Result]:
        results: list[Any] = [None] * len(items)
        for count, (index, result) in enumerate(self.each(fn, items, shared), 1):
            results[index] = result
            if done is not None:
                done(count, len(items))
        return results

    def launcher(self) -> Launch | None:
        """Where a data-parallel fit runs (``models.parallel.spread``); None: in this process."""
        return None


class Local(Executor):
    """Every piece in this process, one after another, in order."""

    def each(self, fn: Work[Item, Shared, Result], items: Sequence[Item], shared: Shared
             ) -> Iterator[tuple[int, Result]]:
        for index, item in enumerate(items):
            yield index, fn(item, shared)


@dataclass(frozen=True)
class RayExecutor(Executor):
    """Every piece as one Ray task (one CPU each). ``address``: a running cluster (``auto``,
    ``ray://HOST:PORT``); None: a cluster of ``workers`` processes (default: every CPU)
    started on this machine on first use and shut down when the process exits."""

    address: str | None = None
    workers: int | None = None

    def start(self) -> None:
        """Connect now (``connect``): a missing package or an unreachable cluster is then one
        line before any work is done, not after it."""
        connect(self.address, self.workers)

    def each(self, fn: Work[Item, Shared, Result], items: Sequence[Item], shared: Shared
             ) -> Iterator[tuple[int, Result]]:
        if not items:
            return
        ray = connect(self.address, self.workers)
        task = ray.remote(num_cpus=1)(_run)
        shared_ref = ray.put(shared)
        pending = {task.remote(fn, item, shared_ref): index for index, item in enumerate(items)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    yield pending.pop(ref), _result(ray, ref)
        finally:  # an error, Ctrl-C or a caller that stopped early: stop what is left
            for ref in pending:
                ray.cancel(ref)

    def launcher(self) -> Launch:
        return self.spread_fit

    def spread_fit(self, fit: Fit[Result], shards: int, progress: EpochProgress | None
                   ) -> Result:
        """``fit`` on one ``Rank`` actor per shard (at most one per free CPU of the cluster,
        so that every rank starts), joined over gloo at an address rank 0 serves; rank 0's
        epochs reach ``progress`` here through a Ray queue as they end. Returns rank 0's
        result; the first rank to fail has its error raised as itself, rank 0's first."""
        from ray.util.queue import Empty, Queue

        ray = connect(self.address, self.workers)
        world = max(1, min(shards, int(ray.available_resources().get("CPU", 1))))
        started: list[Any] = []  # every actor made, killed however the fit ends
        try:
            epochs = Queue(actor_options={"num_cpus": 0})  # an actor too: beside the ranks
            started.append(epochs.actor)
            rank = ray.remote(num_cpus=1, runtime_env={"env_vars": RANK_ENV})(Rank)
            started += [rank.remote() for _ in range(world)]
            actors = started[1:]
            address = _result(ray, actors[0].address.remote())
            shared = ray.put(fit)  # the training data crosses once, not once per rank
            runs = [a.run.remote(shared, r, world, address, epochs if r == 0 else None)
                    for r, a in enumerate(actors)]
            results, stop, pending = {}, stop_check(progress), list(runs)
            while pending:
                finished, pending = ray.wait(pending, num_returns=len(pending),
                                             timeout=PROGRESS_S)
                for ref in sorted(finished, key=runs.index):  # a failed rank now, not after
                    results[runs.index(ref)] = _result(ray, ref)  # the others time out
                while progress is not None:
                    try:
                        progress(*epochs.get_nowait())
                    except Empty:
                        break
                stop()
            return results[0]
        finally:
            for actor in started:
                ray.kill(actor)


class Rank:
    """One rank of a data-parallel fit, a Ray actor in its own worker process (one torch
    thread, as ``configure_process`` gives a program). Rank 0 serves the group's address and
    puts its epochs on a queue the driver reads. The fit runs in the actor's main thread (an
    actor with threads would run it in another, where glibc's per-thread arena gave memory
    back after every step: 1.8x slower)."""

    def __init__(self) -> None:
        from volcast.models.runtime import configure_process

        configure_process(threads=1)

    def address(self) -> str:
        import ray

        with socket.socket() as probe:  # a free port; rank 0's store takes it in ``joined``
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        return f"tcp://{ray.util.get_node_ip_address()}:{port}"

    def run(self, fit: Fit[Result], rank: int, world: int, address: str,
            epochs: "Queue | None") -> Result | None:
        """Rank ``rank``'s part of ``fit``; rank 0 (given the queue ``epochs``) returns the
        result, the others None."""
        def record(*epoch: float) -> None:
            epochs.put_nowait(epoch)

        with joined(rank, world, address) as ranks:
            result = fit(ranks, record if epochs is not None else None)
        return result if rank == 0 else None


def executor(settings: RaySettings) -> Executor:
    """Ray when ``[ray]`` asks for it (``--ray``, an address), else this process."""
    if not settings.used:
        return Local()
    return RayExecutor(settings.address, settings.workers)


def _run(fn: Work[Item, Shared, Result], item: Item, shared: Shared) -> Result:
    """A task's body: the same call ``Local`` makes."""
    return fn(item, shared)


def _result(ray: ModuleType, ref: Any) -> Any:
    """A finished task's value; the error it raised as itself (a ``VolcastError`` stays one
    line), and Ray's own failures (a worker that died) as one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        raise error.cause from None
    except ray.exceptions.RayError as error:
        raise VolcastError(f"a Ray task failed: {one_line(str(error), 300)}") from None


_connected_to: list[str | None] = [None]
"""The address of this process' Ray connection (None: a local cluster)."""


def connect(address: str | None, workers: int | None) -> ModuleType:
    """Ray, connected: to the cluster at ``address``, or to a local one of ``workers``
    processes, started once per process. A connection made for another address, or a local
    cluster of another size, is shut down first, so work never lands on a cluster it was not
    meant for. Ray shuts it down when the process exits."""
    ray = _import_ray()
    if address is not None:
        _reachable(address)
    if ray.is_initialized():
        same_size = address is not None or workers in (None, ray.cluster_resources().get("CPU"))
        if _connected_to[0] == address and same_size:
            return ray
        ray.shutdown()
    _connected_to[0] = address
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR,
             "runtime_env": {"env_vars": WORKER_ENV}}
    if address is None:
        ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)
        return ray
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as error:
        raise VolcastError(f"no Ray cluster at [ray] address = {address}: "
                           f"{one_line(str(error), 200)}") from None
    return ray


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise VolcastError("--ray needs Ray, an optional dependency: pip install "
                           "'volcast[ray]'") from None
    return ray


def _reachable(address: str) -> None:
    """A ray:// address must accept a connection within ``CONNECT_TIMEOUT_S``."""
    if not address.startswith("ray://"):
        return
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise VolcastError(f"no Ray cluster answers at {address} ({reason}); start one (ray "
                           "start --head) or fix [ray] address") from None
