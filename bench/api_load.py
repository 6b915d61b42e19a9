"""The API under load (issue 14, item 8): `volcast serve` answering a paced mix of GETs.

    .venv/bin/python bench/api_load.py [--requests 2000] [--seconds 30] [--connections 64]

Starts `volcast serve` in its own process on a free 127.0.0.1 port over a temporary store
holding the bundled sample (BTC/USDT and ETH/USDT hourly), then sends a fixed number of
requests, evenly paced over the given time, cycling through /health, /api/overview,
/api/candles (the dashboard's last 14 days) and /api/forecast (a reference model), with at
most --connections open at once. Prints p50/p95/p99 latency and errors per endpoint and the
server's resident memory (VmRSS from /proc) before and after, then stops the server.
Targets: p99 under 1 s for /health and under 2 s for the rest, no errors, memory growth under
100 MB. Latency counts from the moment a request was due, so a client that falls behind
cannot hide the server's delay. The client shares the machine's cores with the server.
"""

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from volcast.data.formats import read_candles
from volcast.data.sample import sample_file
from volcast.data.store import CandleStore, SeriesKey

PAIRS = ("BTC/USDT", "ETH/USDT")
DAY_MS = 86_400_000
LAST = 1_722_466_800_000
"""The sample's last candle (2024-07-31 23:00 UTC): the dashboard asks for 14 days before it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_store(db: Path) -> None:
    with CandleStore(db) as store:
        for symbol in PAIRS:
            key = SeriesKey("binance", symbol, "1h")
            store.upsert(key, read_candles(sample_file(pair=symbol.replace("/", "_")),
                                           key.tf_ms))


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process (``VmHWM``: its peak), from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "volcast.cli", "serve", "--db", str(folder / "load.duckdb"),
         "--models", str(folder / "models"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            httpx.get(f"{url}/health", timeout=2).raise_for_status()
            return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"volcast serve did not start: {server.communicate()[1]}")


def requests_mix(n: int) -> list[tuple[str, str, dict[str, str | int]]]:
    """(endpoint, path, query) for each request: the four endpoints in turn, both pairs."""
    kinds = []
    for i in range(n):
        series = {"exchange": "binance", "symbol": PAIRS[(i // 4) % 2], "timeframe": "1h"}
        kinds.append([
            ("/health", "/health", {}),
            ("/api/overview", "/api/overview", {}),
            ("/api/candles", "/api/candles", series | {"start": LAST - 14 * DAY_MS,
                                                       "limit": 5000}),
            ("/api/forecast", "/api/forecast", series | {"model": "hour_of_week_median_4w"}),
        ][i % 4])
    return kinds


async def load(url: str, n: int, seconds: float, connections: int, timeout: float
               ) -> dict[str, list[float | None]]:
    """Latency in seconds per endpoint (None: an error), each request sent when it is due."""
    results: dict[str, list[float | None]] = defaultdict(list)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        began = time.perf_counter()

        async def one(i: int, name: str, path: str, query: dict[str, str | int]) -> None:
            due = began + i * seconds / n
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                answer = await client.get(path, params=query)
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            results[name].append(time.perf_counter() - due if ok else None)

        await asyncio.gather(*(one(i, *r) for i, r in enumerate(requests_mix(n))))
    return results


def report(results: dict[str, list[float | None]], rss: tuple[float, float, float],
           took: float, args: argparse.Namespace) -> None:
    table = Table(title=f"volcast serve: {args.requests} GETs paced over {args.seconds:g} s "
                        f"(answered in {took:.1f} s), at most {args.connections} connections")
    for column in ("endpoint", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, latencies in results.items():
        ok = np.array([x for x in latencies if x is not None]) * 1000
        figures = [*np.percentile(ok, [50, 95, 99]), ok.max()] if len(ok) else []
        table.add_row(name, str(len(latencies)), str(len(latencies) - len(ok)),
                      *(f"{x:,.0f}" for x in figures))
    console = Console(width=140)
    console.print(table)
    console.print(f"server memory (VmRSS): {rss[0]:,.0f} MB before, {rss[1]:,.0f} MB after "
                  f"({rss[1] - rss[0]:+,.0f} MB), peak {rss[2]:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_store(folder / "load.duckdb")
        server, url = start_server(folder)
        try:
            before = rss_mb(server.pid)
            began = time.perf_counter()
            results = asyncio.run(asyncio.wait_for(
                load(url, args.requests, args.seconds, args.connections, args.timeout),
                args.seconds + 2 * args.timeout))
            took = time.perf_counter() - began
            rss = (before, rss_mb(server.pid), rss_mb(server.pid, "VmHWM"))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    report(results, rss, took, args)


if __name__ == "__main__":
    main()
