"""The simulator's HTTP server: an exchange clock, fault injection, and ways to run it
(in the foreground for the CLI, or on a background thread for tests, demo and benchmarks)."""

import asyncio
import math
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web

from volcast.errors import VolcastError
from volcast.simulator.binance import BinanceDialect
from volcast.simulator.kraken import KrakenDialect
from volcast.simulator.market_data import MarketData

DIALECTS = {"binance": BinanceDialect, "kraken": KrakenDialect}
FAULTS = ("429", "418", "500", "502", "503", "stall", "truncated")
MAX_MARKETS = 10_000
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SimulatorConfig:
    """What to serve and how badly. ``now_ms`` starts the exchange clock (default: when the
    newest candle closes), which then runs at ``speed`` times real time; ``latency_s`` delays
    every answer as a distant exchange would. ``markets``: serve that many spot markets, the
    folder's own and then SYNTHETIC ones derived from them (``market_data``: XA01/USDT, ...,
    real candles shifted in time and scaled, drawn with ``seed``), of which the shares
    ``delisted`` and ``halted`` stop having candles before the clock starts; None: the
    folder's markets only."""

    data_dir: Path
    dialect: str = "binance"
    venue: str | None = None
    fail_rate: float = 0.0
    seed: int = 0
    retry_after_s: int = 1
    stall_s: float = 15.0
    now_ms: int | None = None
    speed: float = 1.0
    faults: tuple[str, ...] = FAULTS
    latency_s: float = 0.0
    markets: int | None = None
    delisted: float = 0.05
    halted: float = 0.05

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise VolcastError(f"unknown dialect '{self.dialect}'; choose from "
                               f"{', '.join(DIALECTS)}")
        self.venue = self.venue or self.dialect
        check_faults(self)
        if not 0 <= self.speed < math.inf:  # 0: a clock that stands still (tests)
            raise VolcastError(f"--speed must be 0 (a stopped clock) or more, times real "
                               f"time, not {self.speed}")
        if self.markets is not None and not 1 <= self.markets <= MAX_MARKETS:
            raise VolcastError(f"--markets must be between 1 and {MAX_MARKETS:,}, not "
                               f"{self.markets}")
        for name in ("delisted", "halted"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise VolcastError(f"--{name} must be a share between 0 and 1, not "
                                   f"{getattr(self, name)}")
        if self.delisted + self.halted > 1.0:
            raise VolcastError(f"--delisted {self.delisted} and --halted {self.halted} add up "
                               "to more than every synthetic market")


class Faults(Protocol):
    """How badly a simulator answers: a share ``fail_rate`` of requests (drawn with ``seed``)
    gets one of ``faults``; ``latency_s`` delays every answer."""

    fail_rate: float
    seed: int
    faults: tuple[str, ...]
    retry_after_s: int
    stall_s: float
    latency_s: float


def check_faults(config: Faults) -> None:
    """One line for a fail rate outside [0, 1], a negative delay, or an unknown fault kind."""
    if not 0.0 <= config.fail_rate <= 1.0:
        raise VolcastError(f"--fail-rate must be between 0 and 1, not {config.fail_rate}")
    for flag, value in (("--retry-after", config.retry_after_s), ("--stall", config.stall_s),
                        ("--latency-ms", config.latency_s * 1000)):
        if not 0 <= value < math.inf:  # NaN too
            raise VolcastError(f"{flag} must be a finite number, 0 or more, not {value}")
    unknown = [f for f in config.faults if f not in FAULTS]
    if unknown or not config.faults:
        raise VolcastError(f"unknown fault(s) {', '.join(unknown) or '(none given)'}; choose "
                           f"from {', '.join(FAULTS)}")


@dataclass
class Clock:
    start_ms: int
    speed: float
    _t0: float = field(default_factory=time.monotonic)

    def __call__(self) -> int:
        return self.start_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)


def _venue_folder(config: SimulatorConfig) -> Path:
    """``DIR/<venue>`` when DIR is laid out like shared/data, else DIR itself."""
    nested = config.data_dir / str(config.venue)
    return nested if nested.is_dir() else config.data_dir


def fault_middleware(config: Faults, stats: Counter[str]) -> Callable[..., object]:
    rng = random.Random(config.seed)
    lock = threading.Lock()

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        stats["requests"] += 1
        stats[request.path] += 1
        if config.latency_s:
            await asyncio.sleep(config.latency_s)
        with lock:
            fault = rng.choice(config.faults) if rng.random() < config.fail_rate else None
        if fault is None:
            return await handler(request)
        stats[f"fault:{fault}"] += 1
        stats[f"fault:{fault} {request.path}"] += 1
        retry_after = {"Retry-After": str(config.retry_after_s)}
        if fault == "429":
            return web.json_response({"code": -1003, "msg": "Too many requests."}, status=429,
                                     headers=retry_after)
        if fault == "418":
            return web.json_response({"code": -1003, "msg": "Way too many requests; IP banned."},
                                     status=418, headers=retry_after)
        if fault == "stall":
            await asyncio.sleep(config.stall_s)
            return await handler(request)
        if fault == "truncated":
            response = await handler(request)
            body = response.body
            return web.Response(body=body[: max(1, len(body) // 2)], status=200,
                                content_type="application/json")
        status = int(fault)  # 5xx come from Binance's front proxies as HTML, not JSON
        return web.Response(text=f"<html><body><h1>{status} {_REASONS[status]}</h1></body></html>",
                            status=status, content_type="text/html")

    return inject


def build_app(config: SimulatorConfig) -> tuple[web.Application, Counter[str]]:
    """The aiohttp application and the counters it updates (requests, per path, per fault)."""
    data = MarketData(_venue_folder(config))
    clock = Clock(config.now_ms if config.now_ms is not None else data.end_ms(), config.speed)
    if config.markets is not None:
        data.derive(config.markets, config.seed, config.delisted, config.halted,
                    clock.start_ms)
    stats: Counter[str] = Counter()
    app = web.Application(middlewares=[fault_middleware(config, stats)])
    app.add_routes(DIALECTS[config.dialect](data, clock).routes())
    return app, stats


@dataclass
class RunningSimulator:
    url: str
    stats: Counter[str]


@contextmanager
def running(config: SimulatorConfig, port: int = 0) -> Iterator[RunningSimulator]:
    """Serve on 127.0.0.1 from a background thread for the duration of the block."""
    with serving(*build_app(config), port) as sim:
        yield sim


@contextmanager
def serving(app: web.Application, stats: Counter[str], port: int = 0
            ) -> Iterator[RunningSimulator]:
    """Serve any aiohttp application on 127.0.0.1 from a background thread for the duration
    of the block (the exchange simulator, the macro one, a test's own)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="volcast-simulator", daemon=True)
    thread.start()

    def on_loop(step: Coroutine[Any, Any, Any]) -> Any:
        """Run a step on the server's own loop: the caller's thread may already run one (a
        test after Playwright's sync API, a notebook)."""
        return asyncio.run_coroutine_threadsafe(step, loop).result()

    runner = web.AppRunner(app, access_log=None)
    try:
        on_loop(runner.setup())
        on_loop(web.TCPSite(runner, "127.0.0.1", port).start())
        yield RunningSimulator(f"http://127.0.0.1:{runner.addresses[0][1]}", stats)
    finally:
        on_loop(runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


Config = TypeVar("Config")


def serve_forever(config: Config, port: int, ready: Callable[[str], None],
                  run: Callable[[Config, int], AbstractContextManager[RunningSimulator]]
                  = running) -> None:  # type: ignore[assignment]
    """Serve on 127.0.0.1:port in the foreground until interrupted; ``run``: how to serve
    ``config`` (the exchange simulator's ``running``, or the macro one's)."""
    with run(config, port) as sim:
        ready(sim.url)
        threading.Event().wait()


@contextmanager
def spawned(*args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`volcast simulate-exchange ARGS` as a child process on a free port of 127.0.0.1, for
    benchmarks that measure a client apart from the simulator: (the child, its URL) once it
    answers; stopped on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-m", "volcast.cli", "simulate-exchange",
                              "--port", str(port), *args], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v3/ping", timeout=1).close()
                break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.05)
        yield child, url
    finally:
        child.terminate()
        child.wait()
