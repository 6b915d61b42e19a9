"""Heavy work of the API (forecasts, the overview, analysis, stored backtests: pandas,
statsforecast, torch) runs in a few threads of its own, away from the request path.

Synchronous routes share the server's pool of 40 threads; when forty forecasts ran there at
once on two cores, every request queued behind them, ``/health`` included, and memory grew
with each one running. Here at most ``threads`` computations run at once, the other routes keep
the server's pool to themselves, and identical requests that arrive while one is computed wait
for its answer instead of computing it again (single flight; the workspace's cache does the
same for the forecasts that different requests share). An answer may also be kept for a
moment (``keep_s``) for the identical requests that follow, until a job ends.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
KEPT = 64
"""Answers kept at most (each is a small JSON document)."""


class Compute:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self._kept: OrderedDict[Hashable, tuple[int, float, Any]] = OrderedDict()
        self._generation = 0

    async def __call__(self, key: Hashable, work: Callable[[], T], keep_s: float = 0.0) -> T:
        """``work()``'s result, run in the pool, shared with every request of the same ``key``
        (the route and its parameters) that arrives before it is done, or within ``keep_s``
        seconds after, unless a job ended meanwhile."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] == self._generation and time.monotonic() < kept[1]:
            return kept[2]
        flight = self._flights.get(key)
        if flight is None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, "volcast-compute")
            flight = asyncio.get_running_loop().run_in_executor(self._pool, work)
            self._flights[key] = flight
            flight.add_done_callback(partial(self._landed, key, self._generation, keep_s))
        # a client that leaves cancels its own wait, never the others' shared computation
        return await asyncio.shield(flight)

    def _landed(self, key: Hashable, generation: int, keep_s: float,
                flight: "asyncio.Future[Any]") -> None:
        del self._flights[key]
        if flight.cancelled() or flight.exception() is not None:
            return  # the exception is seen, so a flight whose clients all left warns nothing
        if keep_s > 0 and generation == self._generation:
            self._kept[key] = (generation, time.monotonic() + keep_s, flight.result())
            self._kept.move_to_end(key)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)

    def forget(self) -> None:
        """Kept answers are out of date (a job ended: new candles, a new model); safe to call
        from any thread."""
        self._generation += 1

    def close(self) -> None:
        """Stop the threads once their current work ends (the app's shutdown)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
