"""Data commands: fetch, symbols, import, export, data list/gaps/repair/delete,
simulate-exchange."""

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import (
    DbOpt,
    ExchangeOpt,
    RayOpt,
    RayWorkersOpt,
    SymbolOpt,
    TimeframeOpt,
    app,
    data_app,
    err,
    open_store,
    out,
    ray_flags,
    series_key,
    start_ray,
    time_ms,
    time_range,
    written_line,
)
from volcast.cli.ui import MANY_SERIES, fetch_progress, gaps_table, results_table, series_table
from volcast.data.timeframe import format_time
from volcast.errors import FetchFailed, VolcastError

if TYPE_CHECKING:
    import pandas as pd

    from volcast.config import FetchSettings
    from volcast.data.exchange import ExchangeClient
    from volcast.data.store import SeriesKey
    from volcast.data.sync import Scope, SyncResult
    from volcast.data.universe import Universe
    from volcast.workspace.executor import Executor

SinceOpt = Annotated[str | None, typer.Option(help="first open time (ISO 8601 or ms)")]
UntilOpt = Annotated[str | None, typer.Option(help="stop before this open time")]
UrlOpt = Annotated[str | None, typer.Option(
    "--exchange-url", help="REST base URL instead of the exchange's (proxy, testnet, simulator)")]
RetriesOpt = Annotated[int | None, typer.Option(help="retries per request [default: 8]")]
TimeoutOpt = Annotated[int | None, typer.Option(help="per-request timeout in ms "
                                                "[default: 10000]")]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML file with a [fetch] (and [ray]) "
                                                "section")]


@app.command()
def fetch(
    exchange: ExchangeOpt,
    symbol: Annotated[list[str] | None, typer.Option(
        "--symbol", "-s", help="BASE/QUOTE as ccxt spells it; several: -s BTC/USDT -s ETH/USDT, "
        "-s BTC/USDT,ETH/USDT or -s BTC/USDT ETH/USDT")] = None,
    timeframe: Annotated[list[str] | None, typer.Option(
        "--timeframe", "-t", help="ccxt timeframe [default: 1h]; several as for --symbol: "
        "-t 1h -t 4h, -t 1h,4h or -t 1h 4h")] = None,
    more: Annotated[list[str] | None, typer.Argument(
        metavar="SYMBOL|TIMEFRAME", show_default=False,
        help="more symbols (BASE/QUOTE) or timeframes (1h), as freqtrade takes them")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 or ms; default: the first stored "
                                              "candle (fill every hole, then resume)")] = None,
    until: Annotated[str | None, typer.Option(help="stop before this open time; default: now "
                                              "(closed candles only)")] = None,
    db: DbOpt = None,
    exchange_url: UrlOpt = None,
    follow: Annotated[bool, typer.Option(help="keep running, storing each candle as it "
                                         "closes")] = False,
    poll: Annotated[float | None, typer.Option(help="--follow: seconds between polls "
                                               "[default: 30]")] = None,
    retries: RetriesOpt = None,
    timeout_ms: TimeoutOpt = None,
    config: ConfigOpt = None,
    top: Annotated[int | None, typer.Option(
        min=1, max=5000, help="instead of --symbol: the N spot markets quoted in --quote with "
        "the most 24 h quote volume (ccxt's tickers); delisted and halted markets are left "
        "out and named")] = None,
    quote: Annotated[str | None, typer.Option(help="--top: the quote currency, e.g. "
                                              "USDT")] = None,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
) -> None:
    """Download candles through ccxt into the store: paginated, rate-limited, retried, resumable.

    Every symbol (or the --top N markets by volume) in every timeframe, all fetched
    concurrently (one rate limiter). Fills every hole between stored candles from --since on,
    then the tail up to --until. A market the exchange refuses (delisted, unknown) is skipped
    and named, not retried. With --ray, chunks of series download as Ray tasks."""
    from volcast.config import load_settings
    from volcast.data.exchange import check_exchange_id
    from volcast.workspace.executor import executor

    settings = load_settings(config, fetch={"poll_s": poll, "retries": retries,
                                            "timeout_ms": timeout_ms},
                             ray=ray_flags(ray, ray_workers))
    check_exchange_id(exchange)
    if follow and until is not None:
        raise VolcastError("--follow keeps storing each candle as it closes, with no end: "
                           "leave out --until (or --follow, to stop there)")
    if follow and settings.ray.enabled:
        raise VolcastError("--follow stores each candle as it closes, in this process: leave "
                           "out --ray (or give --no-ray)")
    # a configured [ray] address alone: --follow runs here, as it must
    tasks = settings.ray.model_copy(update={"enabled": False}) if follow else settings.ray
    symbols, timeframes = symbols_and_timeframes(symbol or [], timeframe or [], more or [])
    universe = _universe(top, quote, symbols)
    keys = [series_key(exchange, s, t) for s in symbols for t in timeframes]
    start_ray(tasks)
    _download(exchange, keys, db, settings.fetch, *time_range(since, until, past=True),
              exchange_url, None if follow else 0, "all", universe, timeframes,
              executor(tasks) if tasks.used else None)


def _universe(top: int | None, quote: str | None, symbols: list[str]) -> "Universe | None":
    """--top and --quote as a universe (None without --top); one line for what does not go
    together."""
    from volcast.data.universe import Universe

    if top is None:
        if quote is not None:
            raise VolcastError(f"--quote {quote} goes with --top N (the top N markets quoted in "
                               f"{quote}); to fetch given markets, name them with --symbol")
        if not symbols:
            raise VolcastError("nothing to fetch: give --symbol (-s BTC/USDT) or --top N "
                               "--quote USDT")
        return None
    if symbols:
        raise VolcastError(f"--top {top} picks the markets itself: give --top or --symbol "
                           f"({', '.join(symbols)}), not both")
    if quote is None:
        raise VolcastError(f"--top {top} needs --quote (e.g. --quote USDT): quote volumes in "
                           "different currencies do not compare")
    return Universe(top, quote.upper())


def _download(exchange: str, keys: "list[SeriesKey]", db: Path | None,
              settings: "FetchSettings", since: int | None, until: int | None, url: str | None,
              follow_rounds: int | None, scope: "Scope", universe: "Universe | None" = None,
              timeframes: Sequence[str] = (), runner: "Executor | None" = None) -> None:
    """Run ``sync.fetch`` with progress bars and the summary table: what fetch and repair
    share; ``universe``: also its markets in ``timeframes``, chosen once the exchange is open
    (said in one line); ``runner``: download as its tasks (``workspace.downloads``). Many
    series get one bar and a folded summary. Ctrl-C exits 130 keeping what was stored; a
    series that gave up exits 1; a named market the exchange refused exits 2 (one of the
    universe's is only reported)."""
    from volcast.data.sync import concurrently
    from volcast.data.sync import fetch as run_fetch
    from volcast.data.universe import select
    from volcast.workspace import downloads

    async def expand(client: "ExchangeClient") -> "list[SeriesKey]":
        assert universe is not None
        chosen = await select(client, universe)
        out.print(chosen.describe(), soft_wrap=True, markup=False, highlight=False)
        return [series_key(exchange, s, t) for s in chosen.symbols for t in timeframes]

    many = universe is not None or len(keys) > MANY_SERIES
    rounds = 0

    def show(results: "list[SyncResult]") -> None:
        """The first round's table; then (--follow) one line per round that stored or failed
        something, so a follower's output grows with what happens, not with each poll."""
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            out.print(results_table(results, many))
        elif line := follow_line(results):
            out.print(line, soft_wrap=True, markup=False, highlight=False)

    with open_store(db) as store:
        with fetch_progress(out, many) as progress:
            found = None if universe is None else expand
            try:
                download = (concurrently if runner is None
                            else downloads.tasks(runner, exchange, url, settings))
                results = asyncio.run(run_fetch(
                    exchange, keys, store, settings, since=since, until=until, url=url,
                    progress=progress, on_round=show, follow_rounds=follow_rounds,
                    scope=scope, expand=found, download=download))
            except KeyboardInterrupt:
                err.print("interrupted: every stored candle is kept; run the same command to "
                          "resume", soft_wrap=True, markup=False)
                raise typer.Exit(130) from None
        if scope == "holes":
            for key in keys:
                out.print(_gaps_summary(key, store.gaps(key)), soft_wrap=True)
    failed = [r.error for r in results if r.error]
    if failed:
        raise FetchFailed("; ".join(failed))
    refused = [f"{r.key}: {r.skipped}" for r in results if r.skipped and r.key in keys]
    if refused:
        raise VolcastError("; ".join(refused))


def follow_line(results: "list[SyncResult]") -> str | None:
    """One round of --follow in a line: the UTC time, the candles stored per series (a count
    when more than ``MANY_SERIES`` stored), the failures; None when nothing happened."""
    stored = [f"{r.key.symbol} {r.key.timeframe} +{r.added}" for r in results if r.added]
    if len(stored) > MANY_SERIES:
        stored = [f"{sum(r.added for r in results)} candles in {len(stored)} series"]
    failed = [f"{r.key.symbol} {r.key.timeframe}: {r.error}" for r in results if r.error]
    if not stored and not failed:
        return None
    when = time.strftime("%H:%M:%S UTC", time.gmtime())
    return f"{when} stored {', '.join(stored) or 'nothing'}" + "".join(
        f"; failed {f}" for f in failed)


@app.command()
def symbols(
    exchange: ExchangeOpt,
    quote: Annotated[str | None, typer.Option(help="only markets quoted in this currency, "
                                              "e.g. USDT")] = None,
    exchange_url: Annotated[str | None, typer.Option(
        help="REST base URL instead of the exchange's (proxy, testnet, simulator)")] = None,
) -> None:
    """The symbols an exchange lists, spelled as fetch takes them, with base and quote."""
    import pandas as pd

    from volcast.cli.ui import frame_table
    from volcast.data.exchange import check_exchange_id, list_markets

    check_exchange_id(exchange)
    markets = pd.DataFrame(asyncio.run(list_markets(exchange, url=exchange_url)),
                           columns=["symbol", "base", "quote", "settle", "type", "active"])
    if quote is not None:
        markets = markets[markets["quote"].str.upper() == quote.upper()]
    quoted = f" quoted in {quote.upper()}" if quote else ""
    out.print(frame_table(markets.fillna("-").astype(str),
                          f"{exchange}: {len(markets):,} markets{quoted}"))


def symbols_and_timeframes(symbols: list[str], timeframes: list[str], more: list[str]
                           ) -> tuple[list[str], list[str]]:
    """The symbols and the timeframes (default 1h), in the order given, each once. Values may
    be comma-separated, and extra values after the options are timeframes when they look like
    one (a number and a unit) and symbols otherwise (freqtrade's
    ``-p BTC/USDT ETH/USDT -t 1h 4h``)."""
    symbols, timeframes = _split(symbols), _split(timeframes)
    for value in _split(more):
        (timeframes if re.fullmatch(r"[0-9]+[A-Za-z]+", value) else symbols).append(value)
    return list(dict.fromkeys(symbols)), list(dict.fromkeys(timeframes or ["1h"]))


def _split(values: list[str]) -> list[str]:
    return [v.strip() for text in values for v in text.split(",") if v.strip()]


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="candle file: volcast CSV, freqtrade JSON/feather, "
                                         "Binance kline dump (.csv/.zip), Parquet")],
    exchange: ExchangeOpt,
    symbol: SymbolOpt,
    timeframe: TimeframeOpt,
    fmt: Annotated[str | None, typer.Option("--format", help="override format detection: csv, "
                                            "binance-dump, freqtrade-json, feather, "
                                            "parquet")] = None,
    db: DbOpt = None,
    max_rows: Annotated[int | None, typer.Option(help="refuse a file of more rows [default: "
                                                 "5,270,400, ten years of 1-minute "
                                                 "candles]")] = None,
    max_bytes: Annotated[int | None, typer.Option(help="refuse a file larger than this once "
                                                  "decompressed [default: 1 GiB]")] = None,
) -> None:
    """Import a candle file; the whole file is validated before anything is stored, and read
    as a stream that stops at --max-rows or --max-bytes (a compressed file can expand a
    thousandfold)."""
    from volcast.data.exchange import check_exchange_id
    from volcast.data.formats import Limits, read_candles
    from volcast.data.store import refuse_total

    check_exchange_id(exchange)
    key = series_key(exchange, symbol, timeframe)
    refuse_total(exchange, key.symbol, timeframe, "imported")
    frame = read_candles(path, key.tf_ms, fmt, Limits.given(max_rows, max_bytes))
    with open_store(db) as store:
        written = store.write(key, frame)
    out.print(written_line(str(key), len(frame), written, "candles"), soft_wrap=True)


@app.command()
def export(
    exchange: ExchangeOpt,
    symbol: SymbolOpt,
    timeframe: TimeframeOpt,
    out_path: Annotated[Path, typer.Option("--out", help="file to write (.csv, .csv.gz, .json, "
                                           ".feather, .parquet)")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="override the suffix")] = None,
    db: DbOpt = None,
) -> None:
    """Write one stored series to a file (volcast CSV unless the suffix says otherwise)."""
    from volcast.data.formats import write_candles

    key = series_key(exchange, symbol, timeframe)
    with open_store(db, read_only=True) as store:
        frame = store.read(key, *time_range(since, until))
    write_candles(frame, out_path, fmt)
    out.print(f"{key}: {len(frame)} candles written to {out_path}", soft_wrap=True)


@data_app.command("list")
def data_list(db: DbOpt = None) -> None:
    """Every stored series with rows, first and last candle, and gaps."""
    with open_store(db, read_only=True) as store:
        out.print(series_table(store.series()))


@data_app.command("gaps")
def data_gaps(exchange: ExchangeOpt, symbol: SymbolOpt, timeframe: TimeframeOpt,
              db: DbOpt = None) -> None:
    """The missing candles of one series, one row per gap: those the exchange confirmed it
    has none of, and those not fetched yet (`volcast data repair` fetches them)."""
    key = series_key(exchange, symbol, timeframe)
    with open_store(db, read_only=True) as store:
        gaps = store.gaps(key)
    out.print(_gaps_summary(key, gaps), soft_wrap=True)
    if len(gaps):
        out.print(gaps_table(gaps))


def _gaps_summary(key: "SeriesKey", gaps: "pd.DataFrame") -> str:
    missing, confirmed = int(gaps["missing"].sum()), int(gaps["confirmed"].sum())
    text = (f"{key}: {len(gaps)} gaps, {missing} missing candles ({confirmed:,} the exchange "
            f"confirmed it has none of, {missing - confirmed:,} unfetched)")
    if missing > confirmed:
        text += (f"; `volcast data repair -e {key.exchange} -s {key.symbol} -t "
                 f"{key.timeframe}` fetches them")
    return text


@data_app.command("repair")
def data_repair(exchange: ExchangeOpt, symbol: SymbolOpt, timeframe: TimeframeOpt,
                since: SinceOpt = None, until: UntilOpt = None, db: DbOpt = None,
                exchange_url: UrlOpt = None, retries: RetriesOpt = None,
                timeout_ms: TimeoutOpt = None, config: ConfigOpt = None) -> None:
    """Fill the holes between stored candles (as fetch does, without the tail): what the
    exchange has is stored, what it lacks is recorded as confirmed empty."""
    from volcast.config import load_settings
    from volcast.data.exchange import check_exchange_id

    settings = load_settings(config, fetch={"retries": retries, "timeout_ms": timeout_ms}).fetch
    check_exchange_id(exchange)
    key = series_key(exchange, symbol, timeframe)
    _download(exchange, [key], db, settings, *time_range(since, until, past=True), exchange_url,
              0, "holes")


@data_app.command("delete")
def data_delete(exchange: ExchangeOpt, symbol: SymbolOpt, timeframe: TimeframeOpt,
                since: SinceOpt = None, until: UntilOpt = None, db: DbOpt = None,
                yes: Annotated[bool, typer.Option("--yes", help="delete; without it, only say "
                                                  "what would be deleted")] = False) -> None:
    """Delete one series' candles (all, or those from --since until --until) and what is
    known of which candles the exchange lacks there, so a later fetch asks again."""
    key = series_key(exchange, symbol, timeframe)
    since_ms, until_ms = time_range(since, until)
    with open_store(db, read_only=not yes) as store:
        count, first, last = store.extent(key, since_ms, until_ms)
        if count == 0:
            raise VolcastError(f"{key} holds no candles from {since or 'the first'} until "
                               f"{until or 'the last'}; nothing to delete")
        what = (f"{count:,} candles of {key} from {format_time(first)} to {format_time(last)} "
                "UTC")
        if not yes:
            raise VolcastError(f"would delete {what}; nothing deleted: add --yes to delete them")
        store.delete(key, since_ms, until_ms)
    out.print(f"deleted {what}", soft_wrap=True)


@app.command("simulate-exchange")
def simulate_exchange(
    data: Annotated[Path | None, typer.Option(help="folder laid out as shared/data: "
                                              "<exchange>/<BASE>_<QUOTE>-<tf>.csv[.gz] "
                                              "[default: the bundled sample]")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535,
                                      help="port on 127.0.0.1 (0: any free one)")] = 8765,
    fail_rate: Annotated[float, typer.Option(help="share of requests answered with a "
                                             "fault")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the fault generator")] = 0,
    dialect: Annotated[str, typer.Option(help="REST dialect: binance or kraken")] = "binance",
    venue: Annotated[str | None, typer.Option(help="subfolder of --data to serve "
                                              "[default: the dialect's name]")] = None,
    now: Annotated[str | None, typer.Option(help="exchange clock start (ISO 8601 or ms) "
                                            "[default: when the newest candle closes]")] = None,
    speed: Annotated[float, typer.Option(help="exchange clock speed, times real time")] = 1.0,
    retry_after: Annotated[int, typer.Option(help="Retry-After seconds on 429/418")] = 1,
    stall: Annotated[float, typer.Option(help="seconds a stalled response hangs")] = 15.0,
    latency_ms: Annotated[float, typer.Option(help="delay every answer, as a distant exchange "
                                              "would")] = 0.0,
    fault: Annotated[list[str] | None, typer.Option(help="fault kinds to draw from, repeatable "
                                                    "[default: all: 429 418 500 502 503 stall "
                                                    "truncated]")] = None,
    markets: Annotated[int | None, typer.Option(help="serve this many spot markets: the "
                                                "folder's, then SYNTHETIC ones (XA01/USDT, "
                                                "...) derived from them by shifting in time "
                                                "and scaling, drawn with --seed [default: the "
                                                "folder's only]")] = None,
    delisted: Annotated[float, typer.Option(help="--markets: share of the synthetic markets "
                                            "listed as not trading, their candles ending 1 to "
                                            "60 days before the clock starts")] = 0.05,
    halted: Annotated[float, typer.Option(help="--markets: share of the synthetic markets "
                                          "listed as trading, their candles ending 1 to 60 "
                                          "days before the clock starts")] = 0.05,
) -> None:
    """Serve candle files over HTTP in Binance's (or Kraken's) REST dialect, for tests and
    offline demos; --markets adds synthetic markets for universe-wide tests and benchmarks."""
    from volcast.data.sample import sample_dir
    from volcast.simulator import SimulatorConfig, serve_forever

    config = SimulatorConfig(data or sample_dir(), dialect=dialect, venue=venue,
                             fail_rate=fail_rate, seed=seed,
                             retry_after_s=retry_after, stall_s=stall, now_ms=time_ms(now),
                             speed=speed, latency_s=latency_ms / 1000, markets=markets,
                             delisted=delisted, halted=halted,
                             **({"faults": tuple(fault)} if fault else {}))
    try:
        serve_forever(config, port, lambda url: out.print(
            f"simulating {config.venue} ({dialect} dialect"
            f"{f', {markets:,} markets, synthetic ones beyond the folder' if markets else ''}"
            f") at {url} (use --exchange-url {url}); Ctrl-C stops",
            soft_wrap=True))
    except OSError as exc:
        raise VolcastError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
