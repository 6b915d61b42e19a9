"""volcast serve: the web dashboard and HTTP API."""

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
