"""Forecasting commands: train, predict, backtest, and the demo that runs them all."""

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from volcast.cli.common import DbOpt, app, out
from volcast.models.settings import LSTMSettings

CsvOpt = Annotated[list[Path] | None, typer.Option("--csv", help="candle file(s) in any "
                                                   "format volcast imports; repeatable")]
ExchangesOpt = Annotated[str | None, typer.Option("--exchange", "-e", help="stored series: "
                                                  "ccxt exchange id")]
SymbolsOpt = Annotated[list[str] | None, typer.Option("--symbol", "-s", help="stored series: "
                                                      "BASE/QUOTE; repeatable")]
TfOpt = Annotated[str, typer.Option("--timeframe", "-t", help="stored series: timeframe")]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML file: [model.NAME] and [backtest] "
                                                "tables")]
_LISTS = {"quantiles": float, "features": str}


def _model_option(name: str, field: Any) -> inspect.Parameter:
    kind = field.annotation if name not in _LISTS else str
    if getattr(kind, "__origin__", None) is not None and name not in _LISTS:
        kind = str  # Literal choices and optional ints are passed through as text
    default = field.default if name not in _LISTS else ",".join(map(str, field.default))
    help_text = f"{field.description or name.replace('_', ' ')} [default: {default}]"
    flag = name.replace("_", "-")
    declaration = f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}"
    option = typer.Option(declaration, help=help_text, show_default=False,
                          rich_help_panel="LSTM settings (also [model.lstm] in --config)")
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind | None, option])


def with_model_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add one CLI flag per LSTM setting, generated from the pydantic model (so flags, defaults
    and the config file never drift apart) and hand them to the command as a dict. A command's
    own option of the same name (backtest's --horizon) wins and is passed on by the command."""
    own = [p for p in inspect.signature(command).parameters.values()
           if p.name != "model_options"]
    extra = [_model_option(n, f) for n, f in LSTMSettings.model_fields.items()
             if n not in {p.name for p in own}]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        given = {p.name: kwargs.pop(p.name) for p in extra}
        for name, cast in _LISTS.items():
            if given.get(name) is not None:
                given[name] = [cast(v.strip()) if cast is str else _number(v, name)
                               for v in given[name].split(",") if v.strip()]
        command(model_options={k: v for k, v in given.items() if v is not None}, **kwargs)

    wrapper.__signature__ = inspect.signature(command).replace(parameters=own + extra)
    return wrapper


def _number(text: str, name: str) -> float:
    from volcast.errors import VolcastError

    try:
        return float(text)
    except ValueError:
        raise VolcastError(f"--{name}: '{text}' is not a number") from None


def _settings_for(name: str, config: Path | None, options: dict[str, Any]) -> dict[str, Any]:
    """[model.NAME] from the config file overridden by flags (flags only given for the LSTM)."""
    from volcast.config import load_settings

    model_flags = options if name in ("lstm", "ensemble") else {}
    return load_settings(config, model={name: model_flags}).model.get(name, {})


@app.command()
@with_model_options
def train(
    model: Annotated[str, typer.Option(help="model name, e.g. lstm")],
    out_dir: Annotated[Path, typer.Option("--out", help="model folder to write")],
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h", config: ConfigOpt = None, db: DbOpt = None,
    model_options: dict[str, Any] | None = None,
) -> None:
    """Train a model on one or many series and save it (safetensors + JSON, no pickle)."""
    from volcast.cli.ui import epoch_progress
    from volcast.models import create
    from volcast.workspace.sources import load_long

    forecaster = create(model, _settings_for(model, config, model_options or {}))
    long = load_long(csv, exchange, symbol, timeframe, db)
    with epoch_progress(out) as progress:
        forecaster.fit(long, progress)
    forecaster.save(out_dir)
    out.print(f"{model} trained on {long['unique_id'].nunique()} series ({len(long):,} candles);"
              f" saved to {out_dir}", soft_wrap=True)


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Option(help="folder written by volcast train")],
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h", db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    horizon: Annotated[int | None, typer.Option(help="candles ahead [default: the "
                                                "model's]")] = None,
) -> None:
    """Forecast the next candles' volume (q10/q50/q90) from the latest candle of each series."""
    from volcast.cli.ui import forecast_table
    from volcast.errors import VolcastError
    from volcast.models import load
    from volcast.workspace.sources import load_long

    if fmt not in ("table", "json", "csv"):
        raise VolcastError(f"unknown --format '{fmt}'; choose table, json or csv")
    forecaster = load(model_dir)
    steps = horizon or getattr(forecaster.settings, "horizon", 24)
    forecast = forecaster.predict(load_long(csv, exchange, symbol, timeframe, db), steps)
    if fmt == "csv":
        out.print(forecast.to_csv(index=False), end="", soft_wrap=True, markup=False)
    elif fmt == "json":
        out.print(forecast.to_json(orient="records"), soft_wrap=True, markup=False)
    else:
        out.print(forecast_table(forecast, forecaster.name))


@app.command()
@with_model_options
def backtest(
    model: Annotated[list[str], typer.Option(help="model name; repeat to compare (the "
                                             "reference models are then added)")],
    out_path: Annotated[Path, typer.Option("--out", help="predictions CSV (several models: "
                                           "one file each, PATH.<model>.csv)")],
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h",
    cutoff: Annotated[str | None, typer.Option(help="first test candle, ISO 8601 or ms "
                                               "[default: start of the last --test-days]")] = None,
    test_days: Annotated[float | None, typer.Option(help="test period [default: 60]")] = None,
    horizon: Annotated[int | None, typer.Option(help="candles per forecast [default: 24]")] = None,
    also_csv: Annotated[list[Path] | None, typer.Option(
        help="more candle files a global model also learns from (before the same cutoff); "
             "never tested")] = None,
    config: ConfigOpt = None, db: DbOpt = None,
    model_options: dict[str, Any] | None = None,
) -> None:
    """Walk-forward backtest exactly as shared/bench/PROTOCOL.md says; prints its scores."""
    from volcast.cli.ui import backtest_progress, scores_table
    from volcast.config import load_settings
    from volcast.data.timeframe import parse_time
    from volcast.evaluation.compare import run_backtests, verdicts
    from volcast.evaluation.predictions import write_predictions
    from volcast.workspace.sources import load_long

    settings = load_settings(config, backtest={"horizon": horizon, "test_days": test_days})
    options = dict(model_options or {})
    if horizon is not None:
        options.setdefault("horizon", horizon)
    names = list(dict.fromkeys(model))
    cutoff_ms = None if cutoff is None else parse_time(cutoff)
    long = load_long(csv, exchange, symbol, timeframe, db)
    extra = load_long(also_csv, None, None, timeframe, db) if also_csv else None
    with backtest_progress(out) as progress:
        results = run_backtests(
            names, {n: _settings_for(n, config, options) for n in names}, long,
            settings.backtest, cutoff_ms, progress, extra)
    for result, path in zip(results, _output_paths(out_path, [r.model for r in results]),
                            strict=True):
        write_predictions(result, path)
    out.print(scores_table(results))
    for line in verdicts(results):
        out.print(line, soft_wrap=True)


def _output_paths(out_path: Path, names: list[str]) -> list[Path]:
    if len(names) == 1:
        return [out_path]
    return [out_path.with_name(f"{out_path.stem}.{n}{out_path.suffix or '.csv'}") for n in names]


@app.command()
def demo(db: Annotated[Path, typer.Option(help="DuckDB file for the demo")] = Path(
        "demo-data/volcast.duckdb"),
         epochs: Annotated[int, typer.Option(help="LSTM training epochs at most")] = 30) -> None:
    """The main job, offline, on the bundled sample: import and download candles, train the
    LSTM, backtest it against the reference models and forecast the next 24 hours."""
    from volcast.cli.demo import run_demo

    run_demo(db, out, epochs)

