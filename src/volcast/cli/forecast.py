"""Forecasting commands: train, predict, backtest, and the demo that runs them all."""

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from volcast.cli.common import (
    DbOpt,
    RayOpt,
    RayWorkersOpt,
    UnitOpt,
    app,
    emit,
    err,
    out,
    ray_flags,
    start_ray,
)
from volcast.models.lstm.settings import LSTMSettings

CsvOpt = Annotated[list[Path] | None, typer.Option("--csv", help="candle file(s) in any "
                                                   "format volcast imports; repeatable")]
ExchangesOpt = Annotated[str | None, typer.Option("--exchange", "-e", help="stored series: "
                                                  "ccxt exchange id")]
SymbolsOpt = Annotated[list[str] | None, typer.Option("--symbol", "-s", help="stored series: "
                                                      "BASE/QUOTE; repeatable")]
TfOpt = Annotated[str, typer.Option("--timeframe", "-t", help="stored series: timeframe")]
AllOpt = Annotated[bool, typer.Option("--all", help="stored series: every one of --exchange "
                                      "in --timeframe, instead of --symbol")]
TopOpt = Annotated[int | None, typer.Option(
    min=1, help="stored series: the N of --exchange in --timeframe with the most quote volume "
    "in the day before the newest stored candle, instead of --symbol")]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML file: [model.NAME], [backtest] and "
                                                "[ray] tables")]
ModelsOpt = Annotated[Path | None, typer.Option(help="folder of trained models and stored "
                                                "backtests [default: models/ beside the "
                                                "database]")]
if TYPE_CHECKING:
    from volcast.data.store import SeriesKey
    from volcast.models.base import Forecaster
    from volcast.workspace import Workspace

_LISTS = {"quantiles": float, "features": str, "covariates": str}
PANEL = "Neural model settings (also [model.lstm] / [model.transformer] in --config)"


def _neural_fields() -> dict[str, list[tuple[str, Any]]]:
    """Every setting of the neural models, with each model's field: one flag per name."""
    from volcast.models.transformer.settings import TransformerSettings

    found: dict[str, list[tuple[str, Any]]] = {}
    for model, settings in (("lstm", LSTMSettings), ("transformer", TransformerSettings)):
        for name, field in settings.model_fields.items():
            found.setdefault(name, []).append((model, field))
    return found


def _model_option(name: str, fields: list[tuple[str, Any]]) -> inspect.Parameter:
    field = fields[0][1]
    kind = field.annotation if name not in _LISTS else str
    if getattr(kind, "__origin__", None) is not None and name not in _LISTS:
        kind = str  # Literal choices and optional ints are passed through as text
    defaults = {model: f.default if name not in _LISTS else ",".join(map(str, f.default))
                for model, f in fields}
    default = next(iter(defaults.values())) if len(set(map(str, defaults.values()))) == 1 \
        else ", ".join(f"{value} ({model})" for model, value in defaults.items())
    only = "" if len(fields) > 1 else f"{fields[0][0]} only; "
    help_text = f"{only}{field.description or name.replace('_', ' ')} [default: {default}]"
    flag = name.replace("_", "-")
    declaration = f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}"
    option = typer.Option(declaration, help=help_text, show_default=False, rich_help_panel=PANEL)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind | None, option])


def with_model_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add one CLI flag per setting of the neural models (LSTM, transformer; the ensemble's
    are the LSTM's), generated from their pydantic models (so flags, defaults and the config
    file never drift apart) and hand them to the command as a dict. A command's own option of
    the same name (backtest's --horizon) wins and is passed on by the command."""
    own = [p for p in inspect.signature(command).parameters.values()
           if p.name != "model_options"]
    taken = {p.name for p in own}
    extra = [_model_option(n, f) for n, f in _neural_fields().items() if n not in taken]

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


def _flags(names: list[str], options: dict[str, Any], strict: bool = True
           ) -> dict[str, dict[str, Any]]:
    """Each model's share of the flags; ``strict``: one line for a flag none of them has."""
    from volcast.workspace.flows import check_flags, model_flags

    if strict:
        check_flags(names, options)
    return {name: model_flags(name, options) for name in names}


def _check_out(path: Path | None) -> None:
    """Refuse an unusable --out before hours of training, not after."""
    from volcast.errors import VolcastError

    if path is not None and path.exists() and not path.is_dir():
        raise VolcastError(f"--out {path} is a file; give a folder for the model")


@app.command()
@with_model_options
def train(
    model: Annotated[str, typer.Option(help="model name, e.g. lstm")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="model folder to write "
                                                 "[stored series: also saved under --models "
                                                 "for every command to find]")] = None,
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h", config: ConfigOpt = None, db: DbOpt = None,
    models: ModelsOpt = None, ray: RayOpt = None, ray_workers: RayWorkersOpt = None,
    model_options: dict[str, Any] | None = None,
) -> None:
    """Train a model on one or many series (one global model) and save it (safetensors +
    JSON, no pickle). A model of stored series is saved for each of them, where predict,
    overview, report and the dashboard find it. With --ray, a network with --shards N trains
    data-parallel on N Ray workers (the same weights as here)."""
    from volcast.cli.ui import epoch_progress
    from volcast.config import load_settings
    from volcast.errors import VolcastError
    from volcast.models.runtime import configure_process
    from volcast.workspace import Workspace
    from volcast.workspace.flows import fit, make
    from volcast.workspace.sources import one_source, read_files

    _check_out(out_dir)
    flags = _flags([model], model_options or {})[model]
    settings = load_settings(config, ray=ray_flags(ray, ray_workers))
    shards = make(settings, model, flags).shards  # bad settings fail before any data is read
    one_source(csv, exchange, symbol)
    configure_process()
    if csv:
        if settings.ray.enabled:  # asked for; a configured address alone trains here
            raise VolcastError("--ray trains on stored series (-e with -s); a model of files "
                               "trains in this process")
        if out_dir is None:
            raise _needs_out("a model trained on files")
        long = read_files(csv)
        with epoch_progress(out) as progress:
            forecaster = fit(settings, model, flags, long, progress, db)
        folders = []
    else:
        if settings.ray.enabled and shards < 2:
            raise VolcastError(f"--ray trains a network with --shards N (N > 1) on N Ray "
                               f"workers; {model} has {shards} shard: give --shards or drop "
                               "--ray")
        if shards > 1:  # a configured [ray] address alone: only a spread fit goes there
            start_ray(settings.ray)
        with Workspace.open(db, models, settings=settings) as space, \
                epoch_progress(out) as progress:
            keys = _keys(exchange, symbol, timeframe)
            forecaster, folders = space.train(keys, model, flags, progress)
    if out_dir is not None:
        forecaster.save(out_dir)
        folders.append(out_dir)
    series = len(forecaster.info.get("series", []))
    what = (f"{model} trained on {series} series ({forecaster.info.get('rows', 0):,} candles)"
            if forecaster.needs_fitting else f"{model} needs no training (it is estimated on "
            "each series when it forecasts): its settings")
    out.print(f"{what}; saved to {', '.join(map(str, folders))}", soft_wrap=True)


def _untrained(name: str) -> "Forecaster":
    """A model that forecasts without training (files have no stored models)."""
    from volcast.errors import VolcastError
    from volcast.models import create

    model = create(name)
    if model.needs_fitting:
        raise VolcastError(f"{name} needs training: give --model-dir (volcast train --out)")
    return model


def _needs_out(what: str) -> Exception:
    from volcast.errors import VolcastError

    return VolcastError(f"{what} needs --out (only stored series have a place under --models)")


def _keys(exchange: str | None, symbols: list[str] | None, timeframe: str) -> list["SeriesKey"]:
    from volcast.data.store import SeriesKey
    from volcast.errors import VolcastError

    if not (exchange and symbols):
        raise VolcastError("give either --csv FILE or --exchange with --symbol, not both or "
                           "neither")
    return [SeriesKey.parse(exchange, s, timeframe) for s in dict.fromkeys(symbols)]


def _stored(space: "Workspace", exchange: str | None, symbols: list[str] | None,
            timeframe: str, every: bool, top: int | None) -> list["SeriesKey"]:
    """The stored series asked for: --symbol, or --all / --top N of the exchange."""
    from volcast.errors import VolcastError

    if not (every or top):
        return _keys(exchange, symbols, timeframe)
    if every and top:
        raise VolcastError(f"give --all or --top {top}, not both")
    if symbols or not exchange:
        raise VolcastError("--all and --top choose among the stored series of --exchange: give "
                           "--exchange, and no --symbol")
    return space.markets(exchange, timeframe, top)


RAY_STORED = ("--ray runs the work of many stored series (-e with several -s, --all or --top "
              "N); files and a single series run in this process")


@app.command()
def predict(
    model_dir: Annotated[Path | None, typer.Option(help="folder written by volcast train")] = None,
    model: Annotated[str | None, typer.Option(help="instead of --model-dir: the model trained "
                                              "for the stored series, or a reference "
                                              "model")] = None,
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h", db: DbOpt = None, models: ModelsOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    horizon: Annotated[int | None, typer.Option(min=1, help="candles ahead [default: the "
                                                "model's]")] = None,
    unit: UnitOpt = "base", every: AllOpt = False, top: TopOpt = None,
    config: ConfigOpt = None, ray: RayOpt = None, ray_workers: RayWorkersOpt = None,
) -> None:
    """Forecast the next candles' volume (q10/q50/q90) from the latest candle of each series;
    every row says its unit. With --ray, the series that share a trained model are one
    Ray task (one batched forecast); a model made per series, one task each."""
    from volcast.cli.ui import count_progress, forecast_table
    from volcast.config import load_settings
    from volcast.errors import VolcastError
    from volcast.models import load
    from volcast.workspace import Workspace
    from volcast.workspace.sources import load_long, with_covariates
    from volcast.workspace.units import check_unit, in_unit, unit_names

    if fmt not in ("table", "json", "csv"):
        raise VolcastError(f"unknown --format '{fmt}'; choose table, json or csv")
    kind = check_unit(unit)
    if (model_dir is None) == (model is None):
        raise VolcastError("give --model-dir FOLDER or --model NAME (one of them)")
    settings = load_settings(config, ray=ray_flags(ray, ray_workers))
    if model_dir is not None or csv:
        if settings.ray.enabled:  # asked for; a configured address alone runs these here
            raise VolcastError(RAY_STORED)
        forecaster = load(model_dir) if model_dir is not None else _untrained(model or "")
        long = load_long(csv, exchange, symbol, timeframe, db)
        forecast = forecaster.predict(with_covariates(in_unit(long, kind), [forecaster], db),
                                      horizon or forecaster.horizon or 24)
        forecast["unit"] = forecast["unique_id"].map(unit_names(long, kind, db))
        name = forecaster.name
    else:
        start_ray(settings.ray)
        with Workspace.open(db, models, read_only=True, settings=settings) as space, \
                count_progress(err, "series forecast") as done:
            keys = _stored(space, exchange, symbol, timeframe, every, top)
            # a series asked for by name must forecast: refused before the others are made
            made = space.forecast_many(keys, model or "", horizon, kind, done,
                                       strict=not (every or top))
        for why in made.left_out.values():
            err.print(f"left out: {why}", soft_wrap=True, markup=False, highlight=False)
        forecast, name = made.frame, model or ""
    if fmt == "csv":
        emit(forecast.to_csv(index=False))
    elif fmt == "json":
        emit(forecast.to_json(orient="records"))
    else:
        out.print(forecast_table(forecast, name))


@app.command()
@with_model_options
def backtest(
    model: Annotated[list[str], typer.Option(help="model name; repeat to compare (the "
                                             "reference models are then added)")],
    out_path: Annotated[Path | None, typer.Option("--out", help="predictions CSV (several "
                                                  "models: one file each, PATH.<model>.csv); "
                                                  "stored series are also kept under "
                                                  "--models")] = None,
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h",
    cutoff: Annotated[str | None, typer.Option(help="first test candle, ISO 8601 or ms "
                                               "[default: start of the last --test-days]")] = None,
    test_days: Annotated[float | None, typer.Option(help="test period [default: 60]")] = None,
    horizon: Annotated[int | None, typer.Option(help="candles per forecast [default: 24]")] = None,
    also_csv: Annotated[list[Path] | None, typer.Option(
        help="with --csv: more candle files a global model also learns from (before the same "
             "cutoff); never tested. One stored series learns from every stored series of its "
             "timeframe; several (-s A -s B, --all, --top) from one another")] = None,
    every: AllOpt = False, top: TopOpt = None,
    config: ConfigOpt = None, db: DbOpt = None, models: ModelsOpt = None,
    ray: RayOpt = None, ray_workers: RayWorkersOpt = None,
    model_options: dict[str, Any] | None = None,
) -> None:
    """Walk-forward backtest exactly as shared/bench/PROTOCOL.md says; prints its scores.

    Several stored series (-s A -s B, --all, --top N) share one global model per learned
    model, trained once on them all before one cutoff; each series' backtest is then one piece
    of work (a Ray task with --ray)."""
    from volcast.cli.ui import backtest_progress, scores_table
    from volcast.config import load_settings
    from volcast.data.timeframe import parse_time
    from volcast.errors import VolcastError
    from volcast.evaluation.compare import verdicts
    from volcast.evaluation.predictions import write_predictions
    from volcast.models.runtime import configure_process
    from volcast.workspace import Workspace
    from volcast.workspace.flows import backtest_frames
    from volcast.workspace.sources import one_source, read_files
    from volcast.workspace.units import unit_names

    settings = load_settings(config, backtest={"horizon": horizon, "test_days": test_days},
                             ray=ray_flags(ray, ray_workers))
    names = list(dict.fromkeys(model))
    options = dict(model_options or {})
    _flags(names, options)  # a flag none of the models has: one line
    if horizon is not None:
        options.setdefault("horizon", horizon)  # the protocol's horizon, for models with one
    overrides = _flags(names, options, strict=False)
    cutoff_ms = None if cutoff is None else parse_time(cutoff)
    one_source(csv, exchange, symbol, every, top)
    configure_process()
    if csv:
        if out_path is None:
            raise _needs_out("a backtest of files")
        if settings.ray.enabled:  # asked for; a configured address alone runs these here
            raise VolcastError(RAY_STORED)
        long = read_files(csv)
        extra = read_files(also_csv) if also_csv else None
        with backtest_progress(out) as progress:
            results = backtest_frames(settings, names, overrides, long, extra, cutoff_ms,
                                      progress, db)
        unit = next(iter(unit_names(long, "base").values()))
    else:
        if also_csv:
            raise VolcastError("--also-csv goes with --csv; stored series learn from every "
                               "stored series of their timeframe")
        with Workspace.open(db, models, settings=settings) as space:
            keys = _stored(space, exchange, symbol, timeframe, every, top)
            if len(keys) > 1 or every or top:
                _backtest_many(space, keys, names, overrides, cutoff_ms, out_path)
                return
            if settings.ray.enabled:
                raise VolcastError(RAY_STORED)
            with backtest_progress(out) as progress:
                results = space.backtest(keys[0], names, overrides, progress, cutoff_ms)
            unit = space.unit_name(keys[0])
    if out_path is not None:
        paths = _output_paths(out_path, [r.model for r in results])
        for result, path in zip(results, paths, strict=True):
            write_predictions(result, path)
        out.print(f"predictions (and .scores.json beside each) written to "
                  f"{', '.join(map(str, paths))}", soft_wrap=True)
    out.print(scores_table(results, unit))
    for line in verdicts(results):
        out.print(line, soft_wrap=True)


def _backtest_many(space: "Workspace", keys: list["SeriesKey"], names: list[str],
                   overrides: dict[str, dict[str, Any]], cutoff: int | None,
                   out_path: Path | None) -> None:
    """The backtest of many stored series (``Workspace.backtest_many``) and its summary."""
    from volcast.cli.ui import backtest_progress, batch_table
    from volcast.data.timeframe import format_time
    from volcast.errors import VolcastError

    if out_path is not None:
        raise VolcastError("--out writes the predictions of one series; the backtests of several "
                           "are kept under --models (EXCHANGE/SYMBOL/TIMEFRAME/MODEL/"
                           "backtest.csv)")
    start_ray(space.settings.ray)
    with backtest_progress(out) as progress:
        batch = space.backtest_many(keys, names, overrides, progress, cutoff)
    for why in batch.left_out.values():
        out.print(f"left out: {why}", soft_wrap=True, markup=False, highlight=False)
    out.print(batch_table(batch))
    out.print(f"{len(batch.results):,} series backtested from {format_time(batch.cutoff)} UTC; "
              f"each one's predictions and scores are kept under {space.models_dir}",
              soft_wrap=True)


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

