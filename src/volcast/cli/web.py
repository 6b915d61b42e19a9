"""volcast serve (the web dashboard and HTTP API) and volcast overview (its first table, in the
terminal: the CLI can do what the dashboard does)."""

from pathlib import Path
from typing import Annotated

import typer

from volcast.cli.common import DbOpt, app, err, out
from volcast.cli.forecast import ConfigOpt

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on (loopback unless told "
                                      "otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    db: DbOpt = None,
    models: Annotated[Path | None, typer.Option(help="folder of trained models and backtests "
                                                "[default: models/ beside the database]")] = None,
    exchange_url: Annotated[str | None, typer.Option(
        help="REST base URL for fetch jobs instead of the exchange's (proxy, simulator)")] = None,
    max_jobs: Annotated[int, typer.Option(min=1, max=16, help="background jobs at once")] = 2,
    config: ConfigOpt = None,
) -> None:
    """Serve the dashboard at / and the API under /api (OpenAPI at /docs)."""
    import uvicorn

    from volcast.config import db_path, load_settings
    from volcast.data.store import CandleStore
    from volcast.web.app import create_app
    from volcast.web.service import Workspace

    settings = load_settings(config)
    path = db_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    with CandleStore(path) as store:
        space = Workspace(store, models or path.parent / "models", settings.fetch,
                          exchange_url, settings.backtest)
        if host not in LOOPBACK:
            err.print(f"warning: listening on {host}: anyone who reaches this machine can use "
                      "the API and start jobs", soft_wrap=True)
        out.print(f"volcast dashboard on http://{host}:{port}/ (database {path}); Ctrl-C stops",
                  soft_wrap=True)
        uvicorn.run(create_app(space, max_jobs), host=host, port=port, log_level="warning")


@app.command()
def overview(
    timeframe: Annotated[str, typer.Option("--timeframe", "-t")] = "1h",
    model: Annotated[str, typer.Option(help="forecasting model: a reference model, or one "
                                       "trained with `volcast serve` or into --models")] = (
        "hour_of_week_median_4w"),
    threshold: Annotated[float | None, typer.Option(min=0, help="volume per candle: share of "
                                                    "the next day's hours whose p90 is above "
                                                    "it")] = None,
    db: DbOpt = None,
    models: Annotated[Path | None, typer.Option(help="folder of trained models [default: "
                                                "models/ beside the database]")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """For every stored series: the next day's expected volume and its p90, the share of
    hours over --threshold, and how old the data is (the dashboard's overview)."""
    import json

    from volcast.cli.ui import frame_table
    from volcast.config import db_path
    from volcast.data.records import finite
    from volcast.data.store import CandleStore
    from volcast.errors import VolcastError
    from volcast.models import create
    from volcast.viz.tables import overview_frame
    from volcast.web.service import Workspace

    if fmt not in ("table", "json"):
        raise VolcastError(f"unknown --format '{fmt}'; choose table or json")
    create(model)
    path = db_path(db)
    with CandleStore(path, read_only=True) as store:
        rows = Workspace(store, models or path.parent / "models").overview(timeframe, model,
                                                                           threshold)
    if fmt == "json":
        out.print(json.dumps(finite(rows)), soft_wrap=True, markup=False)
    else:
        out.print(frame_table(overview_frame(rows), f"next day by {model} ({timeframe})"))
