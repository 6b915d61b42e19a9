"""``volcast totals``: an exchange's total quote volume as a stored series (``*/USDT``), and
forecasts of it and of its markets that add up (docs/totals.md)."""

from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import DbOpt, ExchangeOpt, TimeframeOpt, app, out, time_ms
from volcast.cli.forecast import ConfigOpt, ModelsOpt

if TYPE_CHECKING:
    from volcast.cli.ui import FittedTable
    from volcast.evaluation.hierarchy import HierarchyBacktest

totals_app = typer.Typer(help="An exchange's total quote volume: build it from the stored "
                         "markets, backtest forecasts of it and its markets that add up.",
                         no_args_is_help=True)
app.add_typer(totals_app, name="totals")

QuoteOpt = Annotated[str, typer.Option("--quote", help="the quote currency whose markets are "
                                       "summed, e.g. USDT")]


@totals_app.command("build")
def build(exchange: ExchangeOpt, quote: QuoteOpt, timeframe: TimeframeOpt = "1h",
          db: DbOpt = None) -> None:
    """(Re)compute the exchange's total */QUOTE from its stored spot markets quoted in QUOTE
    and store what changed; run it again after each fetch (a second run writes nothing)."""
    from volcast.workspace import Workspace
    from volcast.workspace.totals import build as build_total

    with Workspace.open(db) as space:
        built = build_total(space, exchange, quote, timeframe)
    out.print(built.describe(), soft_wrap=True, markup=False, highlight=False)


@totals_app.command("backtest")
def backtest(
    exchange: ExchangeOpt, quote: QuoteOpt,
    model: Annotated[str, typer.Option(help="the base model of every series, e.g. mstl")],
    timeframe: TimeframeOpt = "1h",
    method: Annotated[str | None, typer.Option(help="reconciliation: bottom_up, ols, "
                                               "wls_struct, wls_var, mint_shrink or erm "
                                               "[default: bottom_up]")] = None,
    cutoff: Annotated[str | None, typer.Option(help="first test candle, ISO 8601 or ms "
                                               "[default: start of the last --test-days]")] = None,
    test_days: Annotated[float | None, typer.Option(help="test period [default: 60]")] = None,
    validation_days: Annotated[float | None, typer.Option(
        min=1, help="days before the test that reconciliation weights and the total's "
        "calibration learn from [default: 28]")] = None,
    horizon: Annotated[int | None, typer.Option(help="candles per forecast [default: 24]")] = None,
    config: ConfigOpt = None, db: DbOpt = None, models: ModelsOpt = None,
) -> None:
    """The protocol's backtest of the total and of each market, forecast on its own (direct)
    and reconciled so that they add up, the total's interval calibrated on its own; every
    reconciliation method is compared."""
    from volcast.cli.ui import backtest_progress
    from volcast.config import load_settings
    from volcast.evaluation.hierarchy import (
        DEFAULT_METHOD,
        VALIDATION_DAYS,
        check_method,
        verdict,
    )
    from volcast.models import model_class
    from volcast.models.runtime import configure_process
    from volcast.workspace import Workspace
    from volcast.workspace.totals import backtest as backtest_total

    settings = load_settings(config, backtest={"horizon": horizon, "test_days": test_days})
    method = check_method(method or DEFAULT_METHOD)
    model_class(model)
    configure_process()
    with Workspace.open(db, models, settings=settings, read_only=True) as space, \
            backtest_progress(out) as progress:
        result = backtest_total(space, exchange, quote, timeframe, model, method,
                                time_ms(cutoff), validation_days or VALIDATION_DAYS, progress)
    out.print(series_table(result, quote.upper()))
    out.print(methods_table(result))
    out.print(verdict(result), soft_wrap=True, markup=False, highlight=False)


def series_table(result: "HierarchyBacktest", unit: str) -> "FittedTable":
    """Per series: MAE and coverage forecast on its own and reconciled."""
    from volcast.cli.ui import FittedTable
    from volcast.data.store import SeriesKey
    from volcast.data.timeframe import format_time
    from volcast.evaluation.hierarchy import DIRECT
    from volcast.viz.tables import fmt

    scores = result.scores.set_index(["series", "forecast"])
    rows = []
    for uid in [result.total, *sorted(set(result.scores["series"]) - {result.total})]:
        own, made = scores.loc[(uid, DIRECT)], scores.loc[(uid, result.method)]
        key = SeriesKey.of_unique_id(uid)
        rows.append([key.symbol if key else uid, fmt(own.mae, ",.0f"), fmt(made.mae, ",.0f"),
                     f"{made.mae / own.mae - 1:+.2%}", fmt(own.coverage, ".3f"),
                     fmt(made.coverage, ".3f")])
    return FittedTable(
        f"direct vs reconciled ({result.method}), test from {format_time(result.cutoff)} UTC "
        f"(weights and the total's interval learned from {format_time(result.validation_start)}"
        " UTC)", [
            "series", f"MAE direct ({unit})", f"MAE reconciled ({unit})", "change",
            "coverage direct", "coverage reconciled"], rows,
        caption="coverage: the share of actual values between q10 and q90, ideally 0.80")


def methods_table(result: "HierarchyBacktest") -> "FittedTable":
    """Every reconciliation method on this backtest, best total first."""
    from volcast.cli.ui import FittedTable
    from volcast.evaluation.hierarchy import methods_compared
    from volcast.viz.tables import fmt

    return FittedTable("reconciliation methods (MAE change against the direct forecasts)", [
        "method", "total", "worst market", "mean market", "total coverage",
        "markets coverage", "total interval scales"], [
        [r.method + (" (chosen)" if r.method == result.method else ""),
         f"{r.total_change:+.2%}", f"{r.worst_market_change:+.2%}",
         f"{r.mean_market_change:+.2%}", fmt(r.total_coverage, ".3f"),
         fmt(r.markets_coverage, ".3f"), f"{fmt(r.lower, '.2f')} / {fmt(r.upper, '.2f')}"]
        for r in methods_compared(result).itertuples()])
