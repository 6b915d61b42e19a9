"""volcast serve (the web dashboard and HTTP API) and volcast overview (its first table, in the
terminal: the CLI can do what the dashboard does)."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volcast.cli.common import DbOpt, UnitOpt, app, emit, out
from volcast.cli.forecast import ConfigOpt, ModelsOpt

if TYPE_CHECKING:
    from volcast.live.service import Service
    from volcast.web.access import Access


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on (loopback unless told "
                                      "otherwise; beyond it an API token is required)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    db: DbOpt = None,
    models: ModelsOpt = None,
    exchange_url: Annotated[str | None, typer.Option(
        help="REST base URL for fetch jobs instead of the exchange's (proxy, simulator)")] = None,
    max_jobs: Annotated[int, typer.Option(min=1, max=16, help="background jobs at once")] = 2,
    config: ConfigOpt = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        help="a host name the server answers to besides its own address (the name a proxy "
             "or DNS record gives it); repeatable; '*' answers every name")] = None,
    token_file: Annotated[Path | None, typer.Option(
        help="file holding the API token (else $VOLCAST_API_TOKEN): required as "
             "'Authorization: Bearer TOKEN' to start or cancel jobs")] = None,
    token_for_reads: Annotated[bool, typer.Option(
        help="require the token for reading data too")] = False,
    compute_threads: Annotated[int, typer.Option(min=1, max=64, help="forecasts and analyses "
                                                 "computed at once")] = 2,
) -> None:
    """Serve the dashboard at / and the API under /api (OpenAPI at /docs), and follow the
    [[watch]] series of --config: each candle stored as it closes, forecasts refreshed,
    [[alert]] rules read and sent to webhooks, /metrics for Prometheus. SIGHUP re-reads
    --config. Jobs use its [model.NAME] and [backtest] tables."""
    import os

    from volcast.models.runtime import configure_process
    from volcast.web.app import serve
    from volcast.workspace import Workspace

    def started(space: Workspace, access: "Access", service: "Service") -> None:
        needs = "every API request" if token_for_reads else "requests that change state"
        guarded = f"; the API token is required for {needs}" if access.token else ""
        watching = service.health()["watching"]
        follows = (f"; following {watching} series, {len(service.rules())} alert rules"
                   if watching else "; no [[watch]] in --config: nothing followed")
        out.print(f"volcast dashboard on http://{host}:{port}/ (database {space.store.path}"
                  f"{follows}{guarded}); Ctrl-C stops", soft_wrap=True, markup=False)

    configure_process()
    serve(lambda: Workspace.open(db, models, config, exchange_url=exchange_url), host, port,
          allow_hosts=allow_host or [], token_file=token_file,
          token_env=os.environ.get("VOLCAST_API_TOKEN"), token_for_reads=token_for_reads,
          max_jobs=max_jobs, compute_threads=compute_threads, config=config, started=started)


@app.command()
def overview(
    timeframe: Annotated[str, typer.Option("--timeframe", "-t")] = "1h",
    model: Annotated[str, typer.Option(help="forecasting model: a reference model, or one "
                                       "trained for the series (volcast train, the "
                                       "dashboard, the demo)")] = "mstl",
    threshold: Annotated[float | None, typer.Option(min=0, help="volume per candle: share of "
                                                    "the next day's candles whose p90 is "
                                                    "above it")] = None,
    db: DbOpt = None,
    models: ModelsOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    unit: UnitOpt = "base",
) -> None:
    """For every stored series: the next day's expected volume and its p90, the share of
    candles over --threshold, and how old the data is (the dashboard's overview). Volumes and
    --threshold are in each pair's base currency, or with --unit quote in its quote currency
    (one threshold for every pair quoted in USDT)."""
    import json

    from volcast.cli.ui import frame_table
    from volcast.data.records import finite
    from volcast.data.timeframe import timeframe_ms
    from volcast.errors import VolcastError
    from volcast.viz.tables import overview_frame
    from volcast.workspace import Workspace
    from volcast.workspace.units import check_unit

    if fmt not in ("table", "json"):
        raise VolcastError(f"unknown --format '{fmt}'; choose table or json")
    timeframe_ms(timeframe)
    kind = check_unit(unit)
    with Workspace.open(db, models, read_only=True) as space:
        rows = space.overview(timeframe, model, threshold, kind)
        why = None if rows else space.why_empty(timeframe)
    if fmt == "json":
        emit(json.dumps(finite(rows)))
    elif why:
        out.print(f"nothing to show: {why}", soft_wrap=True)
    else:
        out.print(frame_table(overview_frame(rows), f"next day by {model} ({timeframe})"))
