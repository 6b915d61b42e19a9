"""Looking at volume: analyze (tables or JSON), plot (PNG or interactive HTML), report."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import DbOpt, UnitOpt, app, emit, out
from volcast.cli.forecast import ConfigOpt, CsvOpt, ExchangesOpt, ModelsOpt, SymbolsOpt, TfOpt

if TYPE_CHECKING:
    import pandas as pd

    from volcast.analysis import Analysis
    from volcast.models.base import Forecaster
    from volcast.viz.spec import Chart
    from volcast.workspace.sources import Window
    from volcast.workspace.units import Unit

TzOpt = Annotated[str, typer.Option("--tz", help="time zone for hours and weekdays, e.g. "
                                    "Europe/Berlin")]
SinceOpt = Annotated[str | None, typer.Option(help="first candle, ISO 8601 or ms")]
UntilOpt = Annotated[str | None, typer.Option(help="stop before this open time")]
LastOpt = Annotated[str | None, typer.Option(help="only the last N hours, days or weeks "
                                             "(e.g. 90d), counted back from the newest "
                                             "candle")]
PLOT_KINDS = ("history", "heatmap", "shares", "fan", "horizon", "comparison", "calibration")


def _one_series(long: "pd.DataFrame", what: str) -> "pd.DataFrame":
    from volcast.errors import VolcastError

    if long["unique_id"].nunique() != 1:
        raise VolcastError(f"{what} covers one series; give one --csv or one --symbol")
    return long.sort_values("ds").reset_index(drop=True)


@app.command()
def analyze(
    csv: CsvOpt = None,
    exchange: Annotated[list[str] | None, typer.Option(
        "--exchange", "-e", help="stored series: ccxt exchange id; repeatable (each with "
                                 "every --symbol)")] = None,
    symbol: SymbolsOpt = None, timeframe: TfOpt = "1h", db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    tz: TzOpt = "UTC",
    spike_k: Annotated[float, typer.Option(help="spike: volume over the 7-day median plus "
                                           "this many MADs")] = 6.0,
    top: Annotated[int, typer.Option(help="largest spikes shown")] = 10,
    since: SinceOpt = None, until: UntilOpt = None, last: LastOpt = None,
    unit: UnitOpt = "base",
) -> None:
    """Coverage, seasonality, distribution and spikes, drivers, and (several series) each
    one's share of the volume."""
    import pandas as pd

    from volcast.analysis import analyze as run_analysis
    from volcast.analysis import to_json
    from volcast.analysis.profile import check_zone
    from volcast.errors import VolcastError
    from volcast.workspace.sources import Window, load_long, one_source
    from volcast.workspace.units import check_unit, in_unit, unit_names

    if fmt not in ("table", "json"):
        raise VolcastError(f"unknown --format '{fmt}'; choose table or json")
    kind = check_unit(unit)
    if not spike_k > 0 or top < 1:
        raise VolcastError("--spike-k must be above 0 and --top at least 1")
    one_source(csv, exchange, symbol)
    window = Window.parse(since, until, last)
    long = (load_long(csv, None, None, timeframe, db, window) if csv or not exchange else
            pd.concat([load_long(None, e, symbol, timeframe, db, window) for e in exchange],
                      ignore_index=True))
    result = run_analysis(in_unit(long, kind), check_zone(tz), spike_k, kind,
                          unit_names(long, kind, db))
    if fmt == "json":
        emit(json.dumps(to_json(result, top)))
        return
    _print_tables(result, top)


def _print_tables(result: "Analysis", top: int) -> None:
    from volcast.cli.ui import frame_table
    from volcast.viz import tables

    out.print(frame_table(tables.coverage_frame(result.series), "coverage"))
    out.print(frame_table(tables.seasonality_frame(result.series),
                          "seasonality (share of the detrended log-volume variance)"))
    out.print(frame_table(tables.distribution_frame(result.series), "volume distribution"))
    for a in result.series:
        tz = a.seasonality["tz"]
        out.print(frame_table(tables.profile_frame(a, "hour"), f"{a.unique_id}: by hour ({tz})"))
        out.print(frame_table(tables.profile_frame(a, "weekday"), f"{a.unique_id}: by weekday"))
        out.print(frame_table(tables.spikes_frame(a, top),
                              f"{a.unique_id}: largest spikes ({len(a.spikes)} in all)"))
        out.print(frame_table(tables.drivers_frame(a),
                              f"{a.unique_id}: Spearman correlation with volume, by lag"))
    if result.shares is not None:
        out.print(frame_table(tables.shares_frame(result),
                              "share of the quote volume (volume x typical price)"))


@app.command()
def plot(
    kind: Annotated[str, typer.Argument(help=f"one of: {', '.join(PLOT_KINDS)}")],
    out_path: Annotated[Path, typer.Option("--out", help="FILE.png (static) or FILE.html "
                                           "(interactive)")],
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h", db: DbOpt = None,
    predictions: Annotated[list[Path] | None, typer.Option(
        help="backtest predictions CSV (volcast backtest --out); repeatable")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="fan: forecast from the latest "
                                                   "candle with this model")] = None,
    origin: Annotated[str | None, typer.Option(help="fan: the backtest origin, ISO 8601 or "
                                               "ms [default: the last]")] = None,
    relative: Annotated[bool, typer.Option(help="heatmap: relative to the series' usual "
                                           "level")] = False,
    tz: TzOpt = "UTC",
    since: SinceOpt = None, until: UntilOpt = None, last: LastOpt = None,
    unit: UnitOpt = "base",
) -> None:
    """Draw one plot: history (spikes marked), heatmap (hour x weekday), shares (several
    series), fan (a forecast with its interval), horizon (error by step), comparison (MAE by
    model), calibration."""
    from volcast.analysis.profile import check_zone
    from volcast.viz import save
    from volcast.workspace.sources import Window
    from volcast.workspace.units import check_unit

    chart = _chart(kind, csv, exchange, symbol, timeframe, db, predictions, model_dir, origin,
                   relative, check_zone(tz), Window.parse(since, until, last), check_unit(unit))
    save(chart, out_path)
    out.print(f"{kind} plot written to {out_path}", soft_wrap=True)


def _chart(kind: str, csv: list[Path] | None, exchange: str | None, symbol: list[str] | None,
           timeframe: str, db: Path | None, predictions: list[Path] | None,
           model_dir: Path | None, origin: str | None, relative: bool, tz: str,
           window: "Window", unit: "Unit") -> "Chart":
    from volcast.data.timeframe import parse_time
    from volcast.errors import VolcastError
    from volcast.evaluation.predictions import read_predictions
    from volcast.viz import charts
    from volcast.workspace.sources import load_long, with_covariates
    from volcast.workspace.units import in_unit, unit_names

    if kind not in PLOT_KINDS:
        raise VolcastError(f"unknown plot '{kind}'; choose one of {', '.join(PLOT_KINDS)}")
    runs = dict(read_predictions(p) for p in predictions or [])
    if kind in ("horizon", "comparison", "calibration"):
        if not runs:
            raise VolcastError(f"the {kind} plot needs --predictions (volcast backtest --out)")
        return getattr(charts, f"{kind}_chart")(runs)
    long = load_long(csv, exchange, symbol, timeframe, db, window)
    if kind == "shares":
        return charts.shares_chart(long)
    series = in_unit(_one_series(long, f"the {kind} plot"), unit)
    name = str(series["unique_id"].iloc[0])
    label = unit_names(series, unit, db)[name]
    if kind == "history":
        return charts.history_chart(series, name, tz=tz, unit=label)
    if kind == "heatmap":
        return charts.heatmap_chart(series, name, relative, tz, label)
    if len(runs) == 1:
        model, frame = next(iter(runs.items()))
        return charts.origin_fan(series, frame, f"{name}, {model}",
                                 None if origin is None else parse_time(origin), label)
    if model_dir is None or runs:
        raise VolcastError("the fan plot needs one --predictions file or a --model-dir")
    from volcast.models import load

    forecaster = load(model_dir)
    inputs = with_covariates(series, [forecaster], db)
    return charts.fan_chart(series, forecaster.predict(inputs, forecaster.horizon or 24),
                            f"{name}, {forecaster.name}", unit=label)


@app.command()
def report(
    csv: CsvOpt = None, exchange: ExchangesOpt = None, symbol: SymbolsOpt = None,
    timeframe: TfOpt = "1h", db: DbOpt = None,
    model: Annotated[str, typer.Option(help="the model that forecasts and is backtested "
                                       "against MSTL and the references")] = "lstm",
    model_dir: Annotated[Path | None, typer.Option(help="forecast with this trained model "
                                                   "[default: the one trained for the stored "
                                                   "series, else the backtest's]")] = None,
    models: ModelsOpt = None, config: ConfigOpt = None, tz: TzOpt = "UTC",
    since: SinceOpt = None, until: UntilOpt = None, last: LastOpt = None,
    unit: UnitOpt = "base",
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path(
        "report.html"),
) -> None:
    """One self-contained HTML report (works offline) of one or several series: analysis,
    plots, the latest forecast and a backtest of the model against MSTL and the reference
    models (trained fresh before the cutoff, so its scores are honest)."""
    from volcast.analysis.profile import check_zone
    from volcast.cli.ui import backtest_progress
    from volcast.config import load_settings
    from volcast.data.frames import split_series
    from volcast.errors import VolcastError
    from volcast.models import load
    from volcast.models.runtime import configure_process
    from volcast.viz.report import write_report
    from volcast.workspace.flows import backtest_frames, report_inputs, versus
    from volcast.workspace.sources import Window, load_long
    from volcast.workspace.units import check_unit, in_unit, unit_names

    if out_path.suffix.lower() != ".html":
        raise VolcastError(f"--out must be an .html file, not '{out_path.name}'")
    zone, settings, kind = check_zone(tz), load_settings(config), check_unit(unit)
    long = load_long(csv, exchange, symbol, timeframe, db, Window.parse(since, until, last))
    names = unit_names(long, kind, db)
    long = in_unit(long, kind)
    loaded = load(model_dir) if model_dir else None
    name = loaded.name if loaded else model
    overrides = {name: loaded.settings.model_dump()} if loaded else None
    configure_process()
    parts = []
    with backtest_progress(out) as progress:
        for uid, series in split_series(long).items():
            backtests = backtest_frames(settings, versus(name), overrides, series, None, None,
                                        progress)
            forecaster = loaded or _trained(uid, name, db, models) or backtests[0].forecaster
            parts.append(report_inputs(series, forecaster, backtests,
                                       forecaster.horizon or settings.backtest.horizon, zone,
                                       unit=kind, unit_name=names[uid]))
    path = write_report(parts, out_path)
    out.print(f"report written to {path.resolve()}", soft_wrap=True)


def _trained(uid: str, model: str, db: Path | None, models: Path | None
             ) -> "Forecaster | None":
    """The model trained for a stored series (volcast train, the dashboard, the demo)."""
    from volcast.errors import NotFound
    from volcast.workspace import Workspace
    from volcast.workspace.sources import key_of

    key = key_of(uid)
    if key is None:
        return None
    with Workspace.open(db, models, read_only=True) as space:
        try:
            forecaster = space.forecaster(key, model)
        except NotFound:
            return None
    return forecaster if forecaster.needs_fitting else None
