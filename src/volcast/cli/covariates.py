"""Covariate commands: ``volcast covariates import|list|fetch ...``: series beyond the candles
(docs/covariates.md), kept in the same store as the candles."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import DbOpt, app, open_store, out
from volcast.errors import VolcastError

if TYPE_CHECKING:
    import pandas as pd

covariates_app = typer.Typer(help="Series beyond the candles (sentiment, macro, derivatives), "
                             "each value stored with the time it became public.",
                             no_args_is_help=True)
app.add_typer(covariates_app, name="covariates")


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
        added = table.write(store, [batch])
    out.print(f"{batch.name}: {len(batch.frame)} values read, {added} new", soft_wrap=True)


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
        out.print(json.dumps(listing.to_dict(orient="records")), soft_wrap=True, markup=False)
    elif listing.empty:
        out.print("no covariates stored; `volcast covariates import --help` and `volcast "
                  "covariates fetch --help` say how to add them", soft_wrap=True)
    else:
        out.print(_listing_table(listing))


def _listing_table(listing: "pd.DataFrame") -> object:
    from volcast.cli.ui import FittedTable
    from volcast.data.timeframe import format_time

    return FittedTable("stored covariates (times UTC)", [
        "name", "scope", "source", "rows", "first", "last", "newest published"], [
        [row.name, row.scope or "-", row.source, f"{row.rows:,}", format_time(row.first),
         format_time(row.last), format_time(row.published)] for row in listing.itertuples()])
