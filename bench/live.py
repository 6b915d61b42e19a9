"""Live-service benchmark (issue 15): `volcast serve` following 20 series on 2 simulated exchanges
with a fast clock and injected faults, while CLI commands run on the same store.

    .venv/bin/python bench/live.py [--data ../shared/data] [--minutes 10] [--speed 120]

Prints one table: candles stored against the source files (lost, duplicated, differing),
store-access wait p50/p99 of a reader in this process (as a CLI command waits), close-to-stored
latency p50/p95 (exchange and wall seconds) as this script's reader sees it (it polls the store
every half second) and as serve measures it (``volcast_candle_delay_seconds`` on /metrics),
webhook deliveries per alert episode with a receiver that fails its first POSTs, each CLI
command's exit codes and wall time, the peak memory of `serve` and its exit code on SIGTERM.

The kraken venue is a temporary folder: shared/data's 4 kraken 1h files plus 3 binance 1h
files served in Kraken's dialect, since shared/data holds too few files for 20 series otherwise.
Its clock starts at --kraken-now: shared/data's kraken files end on 2023-04-01.
"""

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from volcast.data.formats import read_candles
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import format_time, timeframe_ms
from volcast.simulator import SimulatorConfig, running
from volcast.simulator.receiver import Receiver, receiving

CLI = [sys.executable, "-m", "volcast.cli"]
BINANCE = {"1h": ["BNB/USDT", "BTC/USDT", "DOGE/USDT", "ETH/USDT", "SOL/USDT"],
           "15m": ["BTC/USDT", "ETH/USDT"], "5m": ["BTC/USDT", "ETH/USDT"],
           "1d": ["BNB/USDT", "BTC/USDT", "DOGE/USDT", "ETH/USDT"]}
KRAKEN = {"1h": ["BTC/USD", "BTC/USDC", "BTC/USDT", "ETH/USD", "BNB/USDT", "DOGE/USDT",
                 "SOL/USDT"]}
BORROWED = ["BNB_USDT-1h.csv", "DOGE_USDT-1h.csv", "SOL_USDT-1h.csv"]
"""binance files the kraken venue serves too (shared/data holds 4 kraken files only)."""
FETCHED = SeriesKey("binance", "SOL/USDT", "1d")
"""The series `volcast fetch` downloads meanwhile: not in the watch-list."""
FAILURES = 3
"""POSTs the webhook receiver fails before it accepts."""
CUTOFF = int(datetime(2024, 8, 1, tzinfo=UTC).timestamp() * 1000)


def parse_args() -> argparse.Namespace:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=lambda p: Path(p).resolve(),
                        default=repo.parent / "shared" / "data")
    parser.add_argument("--now", default="2024-07-01", help="exchange clock start (UTC)")
    parser.add_argument("--kraken-now", default="2023-03-28",
                        help="the kraken venue's clock start (its files end 2023-04-01)")
    parser.add_argument("--speed", type=float, default=120.0, help="exchange clock speed")
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time serve runs")
    parser.add_argument("--since-days", type=float, default=2.0,
                        help="backfill before --now (kraken serves its last 720 candles only)")
    return parser.parse_args()


@dataclass
class Venue:
    """One simulated exchange: its URL, what it serves, and its clock (exchange ms)."""

    exchange: str
    url: str
    folder: Path
    series: dict[str, list[str]]
    start_ms: int
    since_ms: int
    speed: float
    t0: float

    def now_ms(self, at: float | None = None) -> float:
        return self.start_ms + ((time.monotonic() if at is None else at) - self.t0) * 1000 \
            * self.speed

    def watched(self) -> list[SeriesKey]:
        return [SeriesKey(self.exchange, s, tf) for tf, syms in self.series.items() for s in syms]


def start_venue(stack: ExitStack, exchange: str, folder: Path, series: dict[str, list[str]],
                args: argparse.Namespace, now: str) -> Venue:
    start = datetime.fromisoformat(now).replace(tzinfo=UTC)
    start_ms = int(start.timestamp() * 1000)
    if start_ms + args.minutes * 60_000 * args.speed >= CUTOFF:
        raise SystemExit(f"{now}, --speed and --minutes reach 2024-08-01: lower them")
    since_ms = start_ms - int(args.since_days * 86_400_000)
    config = SimulatorConfig(folder, dialect=exchange, now_ms=start_ms, speed=args.speed,
                             fail_rate=args.fail_rate, seed=len(exchange), stall_s=3.0)
    t0 = time.monotonic()  # the simulator's clock starts within a millisecond of this
    sim = stack.enter_context(running(config))
    return Venue(exchange, sim.url, folder, series, start_ms, since_ms, args.speed, t0)


def kraken_folder(data: Path, tmp: Path) -> Path:
    folder = tmp / "kraken"
    folder.mkdir()
    for path in (data / "kraken").iterdir():
        (folder / path.name).symlink_to(path)
    for name in BORROWED:
        (folder / name).symlink_to(data / "binance" / name)
    return folder


def iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_config(path: Path, venues: list[Venue], hook: str) -> None:
    lines = []
    for venue in venues:
        for tf, symbols in venue.series.items():
            lines += ["[[watch]]", f'exchange = "{venue.exchange}"',
                      f"symbols = {json.dumps(symbols)}", f'timeframes = ["{tf}"]',
                      f'since = "{iso(venue.since_ms)}"', f'url = "{venue.url}"', ""]
    for name, series in (("btc-capacity", "binance:BTC/USDT:1h"),
                         ("kraken-capacity", "kraken:BTC/USD:1h")):
        lines += ["[[alert]]", f'name = "{name}"', f'series = "{series}"', 'kind = "q90_above"',
                  "threshold = 0.000001", "horizon = 3", "debounce = 1", "resolve_after = 1",
                  f'webhook = "{hook}"', ""]
    lines += ["[live]", "max_sleep_s = 5", "", "[fetch]", "retries = 12", "backoff_s = 0.05",
              "backoff_max_s = 1.0", "timeout_ms = 2000", "rate_limit = false", ""]
    path.write_text("\n".join(lines))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Watcher:
    """Polls the store read-only every half second, as a CLI reader would: the seconds each
    opening waited for `serve`, and when each candle that closed during the run appeared."""

    db: Path
    venues: dict[str, Venue]
    waits: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    btc_stored: threading.Event = field(default_factory=threading.Event)
    """Set once binance BTC/USDT 1h (what the CLI commands read) is in the store."""

    def run(self) -> None:
        while not self.db.exists() and not self.stop.wait(0.5):
            pass
        store = CandleStore(self.db, read_only=True, on_wait=self.waits.append)
        first: dict[tuple[str, str, str], float] = {}  # exchange ms the series first appeared
        last: dict[tuple[str, str, str], int] = {}
        while not self.stop.wait(0.5):
            try:
                frame = store.series()
            except Exception as exc:  # counted and shown; the loop goes on
                self.errors.append(str(exc).splitlines()[0])
                continue
            seen = time.monotonic()
            for row in frame.itertuples():
                id_ = (row.exchange, row.symbol, row.timeframe)
                venue = self.venues.get(row.exchange)
                if venue is None:
                    continue
                now = venue.now_ms(seen)
                tf = timeframe_ms(row.timeframe)
                if id_ in last:
                    for opened in range(last[id_] + tf, int(row.last) + 1, tf):
                        if opened + tf > first[id_]:  # closed after the backfill began
                            self.latency_ms.append(now - (opened + tf))
                else:
                    first[id_] = now
                last[id_] = int(row.last)
                if id_ == ("binance", "BTC/USDT", "1h"):
                    self.btc_stored.set()


@dataclass
class Commands:
    """Runs CLI commands on the store one after another until stopped: exit codes, wall time."""

    db: Path
    tmp: Path
    binance_url: str
    since: str
    until: str
    results: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def commands(self) -> list[tuple[str, list[str]]]:
        btc = ["-e", "binance", "-s", "BTC/USDT", "-t", "1h"]
        return [
            ("data list", ["data", "list"]),
            ("data gaps", ["data", "gaps", *btc]),
            ("export", ["export", *btc, "--out", str(self.tmp / "btc.csv")]),
            ("analyze", ["analyze", *btc, "--format", "json"]),
            ("overview", ["overview", "-t", "1h", "--format", "json"]),
            ("predict mstl", ["predict", "--model", "mstl", *btc, "--format", "json"]),
            ("fetch", ["fetch", "-e", FETCHED.exchange, "-s", FETCHED.symbol, "-t",
                       FETCHED.timeframe, "--since", self.since, "--until", self.until,
                       "--exchange-url", self.binance_url, "--retries", "12",
                       "--timeout-ms", "2000"]),
        ]

    def run(self, ready: threading.Event) -> None:
        """From when ``ready`` is set (the series the commands read is stored) until stopped."""
        while not ready.wait(0.5):
            if self.stop.is_set():
                return
        while not self.stop.is_set():
            for name, argv in self.commands():
                if self.stop.is_set():
                    return
                began = time.monotonic()
                done = subprocess.run([*CLI, *argv, "--db", str(self.db)], capture_output=True,
                                      text=True)
                self.results.setdefault(name, []).append((done.returncode,
                                                          time.monotonic() - began))
                if done.returncode:
                    self.failures.append(f"{name}: {(done.stderr or done.stdout).strip()[-300:]}")


def delay_quantiles(port: int, quantiles: tuple[float, ...]) -> list[float]:
    """Serve's own close-to-stored figure (``volcast_candle_delay_seconds``, all series
    together), its quantiles interpolated within the buckets as Prometheus'
    histogram_quantile does: the follower's latency without this script's polling."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counts: Counter[float] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "volcast_candle_delay_seconds_bucket":
                counts[float(sample.labels["le"])] += sample.value
    edges = sorted(counts)
    if not edges or counts[edges[-1]] == 0:
        return [float("nan")] * len(quantiles)
    cumulative = np.array([counts[e] for e in edges])
    lows = [0.0, *edges[:-1]]
    found = []
    for q in quantiles:
        rank = q * cumulative[-1]
        i = int(np.searchsorted(cumulative, rank))
        below = cumulative[i - 1] if i else 0.0
        share = (rank - below) / max(cumulative[i] - below, 1e-12)
        found.append(lows[i] + (min(edges[i], 1e9) - lows[i]) * share)
    return found


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def compare(store: CandleStore, venues: list[Venue], notes: list[str]) -> dict[str, int]:
    """Every stored candle against its source file from ``since`` to the newest stored one;
    a line in ``notes`` per series with lost candles."""
    figures = {"series": 0, "stored": 0, "lost": 0, "extra": 0, "differing": 0}
    for venue in venues:
        since_ms = venue.since_ms
        for key in venue.watched():
            stored = store.read(key, since_ms) if store.bounds(key) else None
            figures["series"] += stored is not None
            if stored is None or stored.empty:
                notes.append(f"{key}: nothing stored")
                continue
            base, quote = key.symbol.split("/")
            source = read_candles(venue.folder / f"{base}_{quote}-{key.timeframe}.csv", key.tf_ms)
            source = source[(source["timestamp"] >= since_ms)
                            & (source["timestamp"] <= stored["timestamp"].iloc[-1])
                            & (source["timestamp"] < CUTOFF)]
            joined = source.merge(stored, on="timestamp", how="outer", suffixes=("", "_db"),
                                  indicator=True)
            figures["stored"] += len(stored)
            lost = joined.loc[joined["_merge"] == "left_only", "timestamp"]
            figures["lost"] += len(lost)
            if len(lost):
                notes.append(f"{key}: {len(lost)} lost, first {format_time(int(lost.min()))}, "
                             f"stored {format_time(int(stored['timestamp'].iloc[0]))} .. "
                             f"{format_time(int(stored['timestamp'].iloc[-1]))}")
            figures["extra"] += int((joined["_merge"] == "right_only").sum())
            both = joined[joined["_merge"] == "both"]
            columns = ["open", "high", "low", "close", "volume"]
            figures["differing"] += int((~np.isclose(both[columns].to_numpy(float),
                                                     both[[f"{c}_db" for c in columns]]
                                                     .to_numpy(float))).any(axis=1).sum())
    with store.connection() as con:
        [(figures["duplicated"],)] = con.execute(
            "SELECT count(*) - count(DISTINCT (series_id, ts)) FROM candles").fetchall()
    return figures


def alert_figures(store: CandleStore, hook: Receiver) -> dict[str, int]:
    """Episodes in the store against the firings the receiver accepted (after its failures)."""
    with store.connection() as con:
        rows = con.execute("SELECT episode, delivered_at_ms, attempts FROM alert_events "
                           "WHERE state = 'firing'").fetchall()
    accepted = [json.loads(body) for body in hook.bodies[FAILURES:]]
    per_episode = {episode: 0 for episode, _, _ in rows}
    for event in accepted:
        if event.get("state") == "firing":
            per_episode[event["episode"]] = per_episode.get(event["episode"], 0) + 1
    return {"episodes": len(rows), "posts": len(hook.bodies), "failed": min(FAILURES,
                                                                              len(hook.bodies)),
            "accepted": hook.accepted,
            "exactly_one": sum(n == 1 for n in per_episode.values()),
            "lost": sum(n == 0 for n in per_episode.values()),
            "duplicated": sum(n > 1 for n in per_episode.values()),
            "marked_delivered": sum(delivered is not None for _, delivered, _ in rows)}


def errors_in(log: str) -> list[str]:
    """The distinct last lines of the tracebacks in serve's log (what went wrong, once each)."""
    lines = log.splitlines()
    ends = [next((line for line in lines[i + 1:] if line and not line[0].isspace()), "")
            for i, line in enumerate(lines) if line.startswith("Traceback")]
    return [f"serve: {count} x {end}" for end, count in Counter(ends).items()]


def pct(values: list[float], q: float, scale: float = 1.0) -> str:
    return f"{np.percentile(values, q) * scale:.3g}" if values else "-"


def report(console: Console, args: argparse.Namespace, *, stored: dict[str, int],
           watcher: Watcher, commands: Commands, alerts: dict[str, int], peak_mb: float,
           delays: list[float], serve_rc: int | None, serve_log: str) -> None:
    table = Table(title=f"volcast serve, {args.minutes:g} min wall, speed x{args.speed:g}, "
                        f"fail rate {args.fail_rate:g}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [("series watched / stored", f"{20} / {stored['series']}"),
            ("candles stored (since)", stored["stored"]),
            ("lost / extra / duplicated", f"{stored['lost']} / {stored['extra']} / "
                                          f"{stored['duplicated']}"),
            ("candles differing from source", stored["differing"]),
            ("store wait p50 / p99 (ms)", f"{pct(watcher.waits, 50, 1e3)} / "
                                          f"{pct(watcher.waits, 99, 1e3)}"),
            ("store wait max (ms), openings", f"{pct(watcher.waits, 100, 1e3)}, "
                                              f"{len(watcher.waits)}"),
            ("reader errors", len(watcher.errors)),
            ("closes seen live", len(watcher.latency_ms)),
            ("close-to-stored p50 / p95 (exchange s)",
             f"{pct(watcher.latency_ms, 50, 1e-3)} / {pct(watcher.latency_ms, 95, 1e-3)}"),
            ("close-to-stored p50 / p95 (wall s, seen by a reader)",
             f"{pct(watcher.latency_ms, 50, 1e-3 / args.speed)} / "
             f"{pct(watcher.latency_ms, 95, 1e-3 / args.speed)}"),
            ("close-to-stored p50 / p95 (wall s, serve's /metrics)",
             " / ".join(f"{q:.3g}" for q in delays)),
            ("alert episodes", alerts["episodes"]),
            ("webhook POSTs / failed / accepted",
             f"{alerts['posts']} / {alerts['failed']} / {alerts['accepted']}"),
            ("episodes delivered once / lost / twice",
             f"{alerts['exactly_one']} / {alerts['lost']} / {alerts['duplicated']}"),
            ("episodes marked delivered in store", alerts["marked_delivered"]),
            ("serve peak memory (VmHWM, MiB)", f"{peak_mb:.0f}"),
            ("serve exit code on SIGTERM", serve_rc),
            ("tracebacks in serve's log", serve_log.count("Traceback"))]
    for name, results in commands.results.items():
        codes = sorted({rc for rc, _ in results})
        walls = [wall for _, wall in results]
        rows.append((f"CLI {name}: runs, exit codes, wall p50/max (s)",
                     f"{len(results)}, {codes}, {pct(walls, 50)}/{pct(walls, 100)}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    for line in commands.failures[:5] + watcher.errors[:5]:
        console.print(f"[red]{line}", markup=True, highlight=False)


def wait_for_serve(child: subprocess.Popen, port: int, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"serve exited with {child.returncode}:\n{log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("serve did not answer within 120 s")


def main() -> None:
    args = parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as name, ExitStack() as stack:
        tmp = Path(name)
        db, config, log = tmp / "live.duckdb", tmp / "volcast.toml", tmp / "serve.log"
        venues = [start_venue(stack, "binance", args.data / "binance", BINANCE, args, args.now),
                  start_venue(stack, "kraken", kraken_folder(args.data, tmp), KRAKEN, args,
                              args.kraken_now)]
        hook = stack.enter_context(receiving(Receiver(failures=FAILURES)))
        write_config(config, venues, hook.url)  # holds the webhook URL: never printed
        port = free_port()
        with log.open("w") as sink:
            child = subprocess.Popen([*CLI, "serve", "--config", str(config), "--db", str(db),
                                      "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT)
        watcher = Watcher(db, {v.exchange: v for v in venues})
        binance = venues[0]
        until = iso(binance.start_ms + args.minutes * 60_000 * args.speed)
        commands = Commands(db, tmp, binance.url, iso(binance.since_ms), until)
        try:
            wait_for_serve(child, port, log)
            threads = [threading.Thread(target=watcher.run),
                       threading.Thread(target=commands.run, args=(watcher.btc_stored,))]
            for thread in threads:
                thread.start()
            with Progress(TextColumn("serve + CLI"), BarColumn(), TextColumn("{task.fields[t]}"),
                          TimeRemainingColumn(), console=console) as progress:
                task = progress.add_task("run", total=args.minutes * 60, t="")
                began = time.monotonic()
                while (elapsed := time.monotonic() - began) < args.minutes * 60:
                    clock = datetime.fromtimestamp(venues[0].now_ms() / 1000, UTC)
                    progress.update(task, completed=elapsed,
                                    t=f"exchange {clock:%m-%d %H:%M}, "
                                      f"{len(watcher.latency_ms)} closes, "
                                      f"{sum(len(r) for r in commands.results.values())} commands")
                    time.sleep(1)
            peak_mb = peak_memory_mb(child.pid)
            delays = delay_quantiles(port, (0.5, 0.95))
            commands.stop.set()
            watcher.stop.set()
            for thread in threads:
                thread.join()
            child.send_signal(signal.SIGTERM)
            serve_rc = child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
        store = CandleStore(db, read_only=True)
        notes: list[str] = []
        report(console, args, stored=compare(store, venues, notes), watcher=watcher,
               commands=commands, alerts=alert_figures(store, hook), peak_mb=peak_mb,
               delays=delays, serve_rc=serve_rc, serve_log=log.read_text())
        for line in notes + errors_in(log.read_text()):
            console.print(line, markup=False)
        if serve_rc or notes:
            console.print(log.read_text()[-2000:], markup=False)


if __name__ == "__main__":
    main()
