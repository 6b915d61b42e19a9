"""Covariate commands: ``volcast covariates import|list|fetch ...``: series beyond the candles
(docs/covariates.md), kept in the same store as the candles."""

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import (
    DbOpt,
    ExchangeOpt,
    SymbolOpt,
    app,
    emit,
    open_store,
    out,
    time_range,
    written_line,
)
from volcast.cli.data import ConfigOpt, RetriesOpt, TimeoutOpt, UrlOpt
from volcast.errors import VolcastError

if TYPE_CHECKING:
    import pandas as pd

    from volcast.cli.ui import FittedTable

covariates_app = typer.Typer(help="Series beyond the candles (sentiment, macro, derivatives), "
                             "each value stored with the time it became public.",
                             no_args_is_help=True)
app.add_typer(covariates_app, name="covariates")
fetch_app = typer.Typer(help="Download a covariate into the store: retried with backoff, "
                        "resumed from the newest stored value.", no_args_is_help=True)
covariates_app.add_typer(fetch_app, name="fetch")
MacroUrlOpt = Annotated[str | None, typer.Option(
    "--url", help="base URL (scheme://host[:port]) instead of the source's own: a proxy, or "
    "`volcast simulate-macro`")]


@covariates_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="fear_greed: timestamp,value[,classification]; "
                                         "vix: timestamp,open,high,low,close or CBOE's "
                                         "VIX_History.csv (DATE,OPEN,HIGH,LOW,CLOSE)")],
    source: Annotated[str, typer.Option("--source", help="fear_greed or vix")],
    db: DbOpt = None,
) -> None:
    """Import a covariate file; the whole file is validated before anything is stored."""
    from volcast.data.covariates import table
    from volcast.data.covariates.files import read_file

    batch = read_file(path, source)
    with open_store(db) as store:
        written = table.write(store, [batch])
    out.print(written_line(batch.name, len(batch.frame), written, "values"), soft_wrap=True)


@covariates_app.command("list")
def list_covariates(
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Every stored covariate series: rows, first and last time dated, newest publication."""
    from volcast.data.covariates import table

    if fmt not in ("table", "json"):
        raise VolcastError(f"unknown --format '{fmt}'; choose table or json")
    with open_store(db, read_only=True) as store:
        listing = table.listing(store)
    if fmt == "json":
        emit(json.dumps(listing.to_dict(orient="records")))
    elif listing.empty:
        out.print("no covariates stored; `volcast covariates import --help` and `volcast "
                  "covariates fetch --help` say how to add them", soft_wrap=True)
    else:
        out.print(_listing_table(listing))


def _listing_table(listing: "pd.DataFrame") -> "FittedTable":
    from volcast.cli.ui import FittedTable
    from volcast.data.timeframe import format_time

    return FittedTable("stored covariates (times UTC)", [
        "name", "scope", "source", "rows", "first", "last", "newest published"], [
        [row.name, row.scope or "-", row.source, f"{row.rows:,}", format_time(row.first),
         format_time(row.last), format_time(row.published)] for row in listing.itertuples()])


@fetch_app.command("fear_greed")
def fetch_fear_greed(url: MacroUrlOpt = None, db: DbOpt = None, retries: RetriesOpt = None,
                     timeout_ms: TimeoutOpt = None, config: ConfigOpt = None) -> None:
    """The Crypto Fear & Greed index from alternative.me (its /fng/ JSON API)."""
    _fetch_macro("fear_greed", db, url, config, retries, timeout_ms)


@fetch_app.command("vix")
def fetch_vix(url: MacroUrlOpt = None, db: DbOpt = None, retries: RetriesOpt = None,
              timeout_ms: TimeoutOpt = None, config: ConfigOpt = None) -> None:
    """The VIX close from CBOE's VIX_History.csv."""
    _fetch_macro("vix", db, url, config, retries, timeout_ms)


@fetch_app.command("fred")
def fetch_fred(
    series: Annotated[list[str], typer.Option(
        "--series", help="FRED series ids, comma-separated or repeated: VIXCLS,DGS10,DTWEXBGS "
        "(those with a known release time; docs/covariates.md)")],
    url: MacroUrlOpt = None, db: DbOpt = None, retries: RetriesOpt = None,
    timeout_ms: TimeoutOpt = None, config: ConfigOpt = None,
) -> None:
    """Daily series from FRED (stored as fred:SERIES). The API key comes from $FRED_API_KEY
    or the [covariates] table of --config, and is never shown."""
    from volcast.data.covariates.macro import fred_series

    _fetch_macro("fred", db, url, config, retries, timeout_ms, fred_series(series))


def _fetch_macro(source: str, db: Path | None, url: str | None, config: Path | None,
                 retries: int | None, timeout_ms: int | None, series: list[str] | None = None
                 ) -> None:
    """Run ``macro.fetch`` and say what each series brought."""
    from volcast.config import load_settings
    from volcast.data.covariates import macro
    from volcast.data.timeframe import format_time

    settings = load_settings(config, fetch={"retries": retries, "timeout_ms": timeout_ms})
    key = macro.fred_api_key(settings.covariates) if source == macro.FRED else None
    with open_store(db) as store:
        downloads = asyncio.run(macro.fetch(store, source, settings.fetch, url, series or [],
                                            key))
    for download in downloads:
        frame = download.batch.frame
        newest = f"; newest dated {format_time(frame['ts'].iloc[-1])} UTC" if len(frame) else ""
        out.print(f"{download.batch.name}: {download.sent} values received, {len(frame)} new"
                  f"{newest}", soft_wrap=True)


SinceOpt = Annotated[str | None, typer.Option(help="first time (ISO 8601 or ms); default: "
                                             "just after the newest stored value")]


@fetch_app.command("funding")
def fetch_funding(exchange: ExchangeOpt, symbol: SymbolOpt, since: SinceOpt = None,
                  db: DbOpt = None, exchange_url: UrlOpt = None, retries: RetriesOpt = None,
                  timeout_ms: TimeoutOpt = None, config: ConfigOpt = None) -> None:
    """Funding-rate history of the perpetual of --symbol (BTC/USDT -> BTC/USDT:USDT), through
    ccxt: paginated, retried, resumable (stored as funding_rate)."""
    _fetch_derivatives("funding_rate", exchange, symbol, None, since, db, exchange_url, retries,
                       timeout_ms, config)


@fetch_app.command("open_interest")
def fetch_open_interest(
    exchange: ExchangeOpt, symbol: SymbolOpt,
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="period of each value, "
                                           "e.g. 5m, 1h, 1d")] = "1h",
    since: SinceOpt = None, db: DbOpt = None, exchange_url: UrlOpt = None,
    retries: RetriesOpt = None, timeout_ms: TimeoutOpt = None, config: ConfigOpt = None,
) -> None:
    """Open-interest history of the perpetual of --symbol, through ccxt (stored as
    open_interest, in base units). Binance keeps only its last 30 days: run it regularly."""
    _fetch_derivatives("open_interest", exchange, symbol, timeframe, since, db, exchange_url,
                       retries, timeout_ms, config)


def _fetch_derivatives(name: str, exchange: str, symbol: str, timeframe: str | None,
                       since: str | None, db: Path | None, url: str | None,
                       retries: int | None, timeout_ms: int | None, config: Path | None) -> None:
    from volcast.config import load_settings
    from volcast.data.covariates import derivatives
    from volcast.data.exchange import check_exchange_id
    from volcast.data.store import check_symbol
    from volcast.data.timeframe import format_time, timeframe_ms

    settings = load_settings(config, fetch={"retries": retries, "timeout_ms": timeout_ms}).fetch
    check_exchange_id(exchange)
    check_symbol(symbol)
    if timeframe is not None:
        timeframe_ms(timeframe)
    start, _ = time_range(since, None, past=True)
    with open_store(db) as store:
        done = asyncio.run(derivatives.fetch(exchange, symbol, store, settings, name, timeframe,
                                             start, url))
    out.print(f"{done.name} of {done.scope}: {done.added:,} new ({done.pages} pages); stored "
              f"{format_time(done.first)} .. {format_time(done.last)} UTC", soft_wrap=True)


@app.command("simulate-macro")
def simulate_macro(
    data: Annotated[Path | None, typer.Option(help="folder holding fear_greed.csv and vix.csv "
                                              "as shared/data/exogenous [default: the bundled "
                                              "ones]")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535,
                                      help="port on 127.0.0.1 (0: any free one)")] = 8766,
    fail_rate: Annotated[float, typer.Option(help="share of requests answered with a "
                                             "fault")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the fault generator")] = 0,
    fred_api_key: Annotated[str | None, typer.Option(
        help="the one FRED API key to accept [default: any]")] = None,
) -> None:
    """Serve alternative.me's Fear & Greed API, CBOE's VIX history and FRED's observations
    over HTTP from the exogenous files, for tests and offline use (FRED's DGS10 and DTWEXBGS
    are synthetic: docs/covariates.md)."""
    from volcast.simulator.macro import MacroConfig, running
    from volcast.simulator.server import serve_forever

    config = MacroConfig(data, fred_api_key, fail_rate, seed)
    try:
        serve_forever(config, port, lambda url: out.print(
            f"simulating alternative.me, CBOE and FRED at {url} (use --url {url}); Ctrl-C "
            "stops", soft_wrap=True), running)
    except OSError as exc:
        raise VolcastError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
