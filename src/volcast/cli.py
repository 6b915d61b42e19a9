"""The ``volcast`` command: parse, call one library function, print with rich.

Heavy libraries (ccxt, pandas, duckdb) are imported inside commands so ``volcast --help`` is
quick. Every ``VolcastError`` becomes one line on stderr and exit status 2; a download that gives
up exits 1 saying how far it got; Ctrl-C exits 130 with the stored candles kept.
"""

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from volcast.errors import FetchFailed, VolcastError
from volcast.ui import fetch_progress, results_table, series_table

if TYPE_CHECKING:
    from volcast.data.store import CandleStore, SeriesKey
    from volcast.data.sync import SyncResult

app = typer.Typer(help="Analyse and forecast cryptocurrency trading volume.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Inspect the candle store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
_PIPED_WIDTH = 160
"""Rich's default of 80 columns truncates tables written to a pipe or file; use more there."""
out = Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED_WIDTH)

DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file [default: $VOLCAST_DB, "
                                            "else volcast.duckdb in your user data folder]")]
ExchangeOpt = Annotated[str, typer.Option("--exchange", "-e", help="ccxt exchange id")]
SymbolOpt = Annotated[str, typer.Option("--symbol", "-s", help="BASE/QUOTE, as ccxt spells it")]
TimeframeOpt = Annotated[str, typer.Option("--timeframe", "-t", help="ccxt timeframe")]


def _store(db: Path | None, read_only: bool = False) -> "CandleStore":
    from volcast.config import db_path
    from volcast.data.store import CandleStore

    return CandleStore(db_path(db), read_only=read_only)


def _key(exchange: str, symbol: str, timeframe: str) -> "SeriesKey":
    from volcast.data.store import SeriesKey, check_symbol
    from volcast.data.timeframe import timeframe_ms

    timeframe_ms(timeframe)
    return SeriesKey(exchange, check_symbol(symbol), timeframe)


def _time(text: str | None) -> int | None:
    from volcast.data.timeframe import parse_time

    return None if text is None else parse_time(text)


@app.command()
def fetch(
    exchange: ExchangeOpt,
    symbol: Annotated[list[str], typer.Option("--symbol", "-s", help="BASE/QUOTE; repeat for "
                                              "several, fetched concurrently")],
    timeframe: TimeframeOpt = "1h",
    since: Annotated[str | None, typer.Option(help="ISO 8601 or ms; default: resume from the "
                                              "last stored candle")] = None,
    until: Annotated[str | None, typer.Option(help="stop before this open time; default: now "
                                              "(closed candles only)")] = None,
    db: DbOpt = None,
    exchange_url: Annotated[str | None, typer.Option(
        help="REST base URL instead of the exchange's (proxy, testnet, simulator)")] = None,
    follow: Annotated[bool, typer.Option(help="keep running, storing each candle as it "
                                         "closes")] = False,
    poll: Annotated[float | None, typer.Option(help="--follow: seconds between polls "
                                               "[default: 30]")] = None,
    retries: Annotated[int | None, typer.Option(help="retries per request [default: 8]")] = None,
    timeout_ms: Annotated[int | None, typer.Option(help="per-request timeout in ms "
                                                   "[default: 10000]")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with a [fetch] section")] = None,
) -> None:
    """Download candles through ccxt into the store: paginated, rate-limited, retried, resumable."""
    from volcast.config import load_settings
    from volcast.data.exchange import check_exchange_id
    from volcast.data.sync import fetch as run_fetch

    settings = load_settings(config, fetch={"poll_s": poll, "retries": retries,
                                            "timeout_ms": timeout_ms}).fetch
    check_exchange_id(exchange)
    keys = [_key(exchange, s, timeframe) for s in dict.fromkeys(symbol)]
    since_ms, until_ms = _time(since), _time(until)
    with _store(db) as store, fetch_progress(out) as progress:
        def show(results: "list[SyncResult]") -> None:
            out.print(results_table(results))

        try:
            results = asyncio.run(run_fetch(
                exchange, keys, store, settings, since=since_ms, until=until_ms, url=exchange_url,
                progress=progress, on_round=show, follow_rounds=None if follow else 0))
        except KeyboardInterrupt:
            err.print("interrupted: every stored candle is kept; run the same command to resume",
                      soft_wrap=True, markup=False)
            raise typer.Exit(130) from None
    failed = [r.error for r in results if r.error]
    if failed:
        raise FetchFailed("; ".join(failed))


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
) -> None:
    """Import a candle file; the whole file is validated before anything is stored."""
    from volcast.data.exchange import check_exchange_id
    from volcast.data.formats import read_candles

    check_exchange_id(exchange)
    key = _key(exchange, symbol, timeframe)
    frame = read_candles(path, key.tf_ms, fmt)
    with _store(db) as store:
        added = store.upsert(key, frame)
    out.print(f"{key}: {len(frame)} candles read, {added} new", soft_wrap=True)


@app.command()
def export(
    exchange: ExchangeOpt,
    symbol: SymbolOpt,
    timeframe: TimeframeOpt,
    out_path: Annotated[Path, typer.Option("--out", help="file to write (.csv, .csv.gz, .json, "
                                           ".feather, .parquet)")],
    since: Annotated[str | None, typer.Option(help="first open time (ISO 8601 or ms)")] = None,
    until: Annotated[str | None, typer.Option(help="stop before this open time")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="override the suffix")] = None,
    db: DbOpt = None,
) -> None:
    """Write one stored series to a file (volcast CSV unless the suffix says otherwise)."""
    from volcast.data.formats import write_candles

    key = _key(exchange, symbol, timeframe)
    with _store(db, read_only=True) as store:
        frame = store.read(key, _time(since), _time(until))
    write_candles(frame, out_path, fmt)
    out.print(f"{key}: {len(frame)} candles written to {out_path}", soft_wrap=True)


@data_app.command("list")
def data_list(db: DbOpt = None) -> None:
    """Every stored series with rows, first and last candle, and gaps."""
    with _store(db, read_only=True) as store:
        out.print(series_table(store.series()))


@data_app.command("gaps")
def data_gaps(exchange: ExchangeOpt, symbol: SymbolOpt, timeframe: TimeframeOpt,
              db: DbOpt = None) -> None:
    """The missing candles of one series, one row per gap (never filled in)."""
    from volcast.ui import gaps_table

    key = _key(exchange, symbol, timeframe)
    with _store(db, read_only=True) as store:
        gaps = store.gaps(key)
    out.print(f"{key}: {len(gaps)} gaps, {int(gaps['missing'].sum())} missing candles",
              soft_wrap=True)
    if len(gaps):
        out.print(gaps_table(gaps))


@app.command("simulate-exchange")
def simulate_exchange(
    data: Annotated[Path, typer.Option(help="folder laid out as shared/data: "
                                       "<exchange>/<BASE>_<QUOTE>-<tf>.csv")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0: any free one)")] = 8765,
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
) -> None:
    """Serve candle files over HTTP in Binance's (or Kraken's) REST dialect, for tests and
    offline demos."""
    from volcast.simulator import SimulatorConfig, serve_forever

    config = SimulatorConfig(data, dialect=dialect, venue=venue, fail_rate=fail_rate, seed=seed,
                             retry_after_s=retry_after, stall_s=stall, now_ms=_time(now),
                             speed=speed, latency_s=latency_ms / 1000,
                             **({"faults": tuple(fault)} if fault else {}))
    try:
        serve_forever(config, port, lambda url: out.print(
            f"simulating {config.venue} ({dialect} dialect) at {url} "
            f"(use --exchange-url {url}); Ctrl-C stops",
            soft_wrap=True))
    except OSError as exc:
        raise VolcastError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def demo(db: Annotated[Path, typer.Option(help="DuckDB file for the demo")] = Path(
        "demo-data/volcast.duckdb")) -> None:
    """The main job, offline, on the bundled sample: import a file, download another series
    through ccxt from the local simulator, and summarise the store."""
    from volcast.demo import run_demo

    run_demo(db, out)


def main() -> None:
    """Entry point: the one place errors turn into messages and exit codes."""
    try:
        app(prog_name="volcast")
    except VolcastError as exc:
        err.print(f"error: {exc}", soft_wrap=True, markup=False, highlight=False)
        sys.exit(2)
    except FetchFailed as exc:
        err.print(f"error: {exc}", soft_wrap=True, markup=False, highlight=False)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("VOLCAST_DEBUG"):
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (set VOLCAST_DEBUG=1 for the "
                  "traceback, and please report it)", soft_wrap=True, markup=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
