"""``volcast models``: the kept versions of trained models, and rollback to one of them."""

from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import DbOpt, ExchangeOpt, SymbolOpt, TimeframeOpt, app, out, series_key
from volcast.cli.forecast import ModelsOpt

if TYPE_CHECKING:
    from volcast.cli.ui import FittedTable
    from volcast.data.store import SeriesKey
    from volcast.workspace import Workspace

models_app = typer.Typer(help="Versions of trained models: list them, roll back to one.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

ModelOpt = Annotated[str | None, typer.Option("--model", help="only this model, e.g. lstm")]


@models_app.command("list")
def models_list(
    exchange: Annotated[str | None, typer.Option("--exchange", "-e", help="only this "
                                                 "exchange")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="only this "
                                               "symbol")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="only this "
                                                  "timeframe")] = None,
    model: ModelOpt = None, db: DbOpt = None, models: ModelsOpt = None,
) -> None:
    """Every kept version of the models trained for the stored series: when trained, its
    validation MAE (retrained models), and which one serves."""
    from volcast.workspace import Workspace

    with Workspace.open(db, models, read_only=True) as space:
        keys = [k for k in space.keys(timeframe) if exchange in (None, k.exchange)
                and symbol in (None, k.symbol)]
        table = versions_table(space, keys, model)
    out.print(table)
    if not table.rows:
        out.print("no trained models match; train one with `volcast train` (or `volcast "
                  "serve` with a [train] schedule)", soft_wrap=True)


@models_app.command("rollback")
def models_rollback(
    exchange: ExchangeOpt, symbol: SymbolOpt, timeframe: TimeframeOpt,
    model: Annotated[str, typer.Option("--model", help="model name, e.g. lstm")],
    to: Annotated[int | None, typer.Option("--to", help="version number [default: the one "
                                           "that served before the serving one]")] = None,
    db: DbOpt = None, models: ModelsOpt = None,
) -> None:
    """Make an earlier version of the series' model the serving one: `volcast predict`, the
    overview and the dashboard use it from then on."""
    from volcast.models import model_class
    from volcast.workspace import Workspace

    key = series_key(exchange, symbol, timeframe)
    model_class(model)
    with Workspace.open(db, models, read_only=True) as space:
        chosen = space.rollback(key, model, to)
    out.print(f"{model} version {chosen.number} now serves {key}", soft_wrap=True)


def versions_table(space: "Workspace", keys: list["SeriesKey"], model: str | None
                   ) -> "FittedTable":
    """One row per kept version; a model trained before versions were kept is one row
    without a number."""
    from volcast.cli.ui import FittedTable

    rows = []
    for key in keys:
        for name in space.layout.trained(key):
            if model in (None, name):
                rows += _rows(space, key, name)
    return FittedTable("model versions (times UTC; score: validation MAE in base units)",
                       ["series", "model", "version", "trained at", "score", "promoted",
                        "serving"], rows)


def _rows(space: "Workspace", key: "SeriesKey", model: str) -> list[list[str]]:
    from volcast.data.timeframe import format_time

    history, serving = space.versions(key, model)
    if not history:
        return [[str(key), model, "-", "-", "-", "-", "yes"]]
    return [[str(key), model, str(v.number), format_time(v.trained_at),
             "-" if v.score is None else f"{v.score:,.1f}", "yes" if v.promoted else "no",
             "yes" if v.number == serving else ""] for v in history]
