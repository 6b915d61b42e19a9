"""What every command shares: the typer apps, the consoles and the common options."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from volcast.config import RaySettings
    from volcast.data.store import CandleStore, SeriesKey, Written

app = typer.Typer(help="Analyse and forecast cryptocurrency trading volume.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  rich_markup_mode=None)
data_app = typer.Typer(help="Inspect the candle store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
_PIPED_WIDTH = 160
"""Rich's default of 80 columns truncates tables written to a pipe or file; use more there."""
out = Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED_WIDTH)


def emit(text: str) -> None:
    """Machine-readable output (CSV, JSON) exactly as it is, a newline at its end: straight to
    stdout, not through rich, which would highlight it and took 0.9 s to render the CSV of
    200 markets' forecasts."""
    out.file.write(text if text.endswith("\n") else f"{text}\n")
    out.file.flush()

DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file [default: $VOLCAST_DB, "
                                            "else volcast.duckdb in your user data folder]")]
ExchangeOpt = Annotated[str, typer.Option("--exchange", "-e", help="ccxt exchange id")]
SymbolOpt = Annotated[str, typer.Option("--symbol", "-s", help="BASE/QUOTE, as ccxt spells it")]
TimeframeOpt = Annotated[str, typer.Option("--timeframe", "-t", help="ccxt timeframe")]
UnitOpt = Annotated[str, typer.Option("--unit", help="base: volume in the pair's base currency "
                                      "(BTC for BTC/USDT); quote: volume x the candle's typical "
                                      "price, in the quote currency, comparable across pairs")]

RAY_PANEL = "Scale-out on Ray (pip install 'volcast[ray]'; [ray] in --config, docs/scale.md)"
RayOpt = Annotated[bool | None, typer.Option(
    "--ray/--no-ray", rich_help_panel=RAY_PANEL, show_default=False,
    help="run each series' work as a Ray task, on a local Ray cluster or at [ray] address "
         "[default: on when --config gives an address]")]
RayWorkersOpt = Annotated[int | None, typer.Option(
    "--ray-workers", min=1, max=1024, rich_help_panel=RAY_PANEL, show_default=False,
    help="--ray on a local cluster of N worker processes [default: every CPU]")]


def ray_flags(ray: bool | None, workers: int | None) -> dict[str, Any]:
    """--ray/--no-ray and --ray-workers as overrides of the config's [ray] section; a worker
    count asks for Ray unless --no-ray says otherwise."""
    return {"enabled": ray if ray is not None or workers is None else True, "workers": workers}


def start_ray(settings: "RaySettings") -> None:
    """Connect to Ray now when the command will use it, so that a missing package or an
    unreachable cluster is one line before any work, not after training."""
    from volcast.workspace.executor import RayExecutor

    if settings.used:
        RayExecutor(settings.address, settings.workers).start()


def open_store(db: Path | None, read_only: bool = False) -> "CandleStore":
    from volcast.config import db_path
    from volcast.data.store import CandleStore

    return CandleStore(db_path(db), read_only=read_only)


def written_line(what: str, read: int, written: "Written", unit: str) -> str:
    """An import's summary: rows read and new, and stored rows it replaced with other values
    (an import never does that in silence)."""
    changed = (f", {written.changed} stored {unit} replaced with the file's other values"
               if written.changed else "")
    return f"{what}: {read} {unit} read, {written.new} new{changed}"


def series_key(exchange: str, symbol: str, timeframe: str) -> "SeriesKey":
    from volcast.data.store import SeriesKey

    return SeriesKey.parse(exchange, symbol, timeframe)


def time_ms(text: str | None) -> int | None:
    from volcast.data.timeframe import parse_time

    return None if text is None else parse_time(text)


def time_range(since: str | None, until: str | None, *, past: bool = False
               ) -> tuple[int | None, int | None]:
    """--since and --until as ms; ``until`` must come after ``since``, and with ``past`` (a
    download) ``since`` must not be in the future: both would otherwise "succeed" at nothing."""
    import time

    from volcast.errors import VolcastError

    start, end = time_ms(since), time_ms(until)
    if start is not None and end is not None and end <= start:
        raise VolcastError(f"--until {until} must come after --since {since}")
    if past and start is not None and start > time.time() * 1000:
        raise VolcastError(f"--since {since} is in the future: no candle has opened since then")
    return start, end
