"""The FastAPI application: the API (``routes/``), the dashboard page and its files, the one
place errors become HTTP answers (never a stack trace), and ``serve``, how `volcast serve`
starts it (the CLI's one door into this package)."""

import asyncio
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from volcast import __version__
from volcast.errors import NotFound, VolcastError
from volcast.live.metrics import Metrics
from volcast.live.service import Service
from volcast.web.access import Access, Guard, read_token
from volcast.web.compute import Compute
from volcast.web.jobs import Job, JobConflict, JobManager, State, TooManyJobs
from volcast.web.metrics import RequestTimer
from volcast.web.metrics import router as metrics_router
from volcast.web.routes import router
from volcast.web.routes.forecasts import warm_overview
from volcast.web.server import addresses, listening, resolve, run
from volcast.workspace import Workspace

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
log = logging.getLogger(__name__)
STATUS = {NotFound: 404, JobConflict: 409, TooManyJobs: 429}
WARM_S = 10.0
"""Seconds `volcast serve` waits at most for its first overview before it answers requests."""


def _error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, VolcastError):
        status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 422)
        return JSONResponse({"detail": str(error)}, status_code=status)
    return JSONResponse({"detail": f"internal error ({type(error).__name__}); see the server "
                                   "log"}, status_code=500)


def _invalid(request: Request, error: Exception) -> JSONResponse:
    """422 naming each refused field and why, without the input itself: a NaN in it made the
    answer unserialisable (a 500), and a 5,000-character value came back whole."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                                    for e in error.errors()]}, status_code=422)


@dataclass
class Census:
    """How many series the store holds, for ``/health``: counted at startup, after each job and
    as the live service stores candles, so that ``/health`` answers from memory and never
    waits for the store or for a job that holds it."""

    series: int | None = None

    def count(self, space: Workspace) -> None:
        self.series = len(space.keys())


def create_app(workspace: Workspace, max_jobs: int = 2, access: Access | None = None,
               compute_threads: int = 2, warm: bool = False, service: Service | None = None,
               metrics: Metrics | None = None) -> FastAPI:
    """The app over ``workspace``. ``access``: the Host names it answers and its API token
    (`volcast serve` always gives one); without, every request is answered, as an app called
    in-process (tests, embedding) needs. ``compute_threads``: forecasts and analyses at once.
    ``warm``: startup waits (up to WARM_S) for the dashboard's first view to be computed.
    ``service``: the live service, started with the app and stopped with it (its metrics are
    the app's)."""
    census, compute = Census(), Compute(compute_threads)
    metrics = service.metrics if service is not None else metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        census.count(app.state.workspace)
        if service is not None:
            service.on_series = lambda: census.count(app.state.workspace)
            service.start()
        if warm:
            with suppress(TimeoutError, VolcastError):  # then the first requests wait for it
                await asyncio.wait_for(warm_overview(app), WARM_S)
        try:
            yield
        finally:
            if service is not None:
                await asyncio.to_thread(service.stop)
            compute.close()

    def recount(job: Job, ended: State) -> None:
        census.count(app.state.workspace)
        compute.forget()
        metrics.job_finished(job.kind, time.time() - job.created, ended == "done")

    app = FastAPI(title="volcast", version=__version__, lifespan=lifespan,
                  description="Crypto trading-volume data, forecasts (q10/q50/q90), analysis "
                              "and background jobs.")
    app.state.workspace = workspace
    app.state.jobs = JobManager(max_jobs, on_end=recount)
    app.state.census, app.state.compute = census, compute
    app.state.access = access or Access()
    app.state.service, app.state.metrics = service, metrics
    if access is not None:
        app.add_middleware(Guard, access=access)
    app.add_middleware(RequestTimer, metrics=metrics)  # outermost: refusals are timed too
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(VolcastError, _error)
    app.add_exception_handler(Exception, _error)
    app.include_router(router)
    app.include_router(metrics_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        """plotly.js from the installed plotly package: no CDN, no build step."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    return app


def serve(open_workspace: Callable[[], AbstractContextManager[Workspace]], host: str, port: int,
          *, allow_hosts: Iterable[str] = (), token_file: Path | None = None,
          token_env: str | None = None, token_for_reads: bool = False, max_jobs: int = 2,
          compute_threads: int = 2, config: Path | None = None,
          started: Callable[[Workspace, Access, Service], None] = lambda *_: None) -> None:
    """`volcast serve`: resolve ``host``, settle who may do what (refusing to go beyond
    loopback without a token), bind ``port``, and only then open the workspace, start the live
    service over its watch-list and rules (re-read from ``config`` on SIGHUP), tell
    ``started`` and serve until Ctrl-C or SIGTERM. Each refusal is one line
    (``VolcastError``)."""
    found = resolve(host, port)
    access = Access.for_bind(host, addresses(found), allow_hosts,
                             read_token(token_file, token_env), token_for_reads)
    with listening(found, host, port) as sockets, open_workspace() as space:
        service = Service(space, config)
        space.store.on_wait = service.metrics.store_wait
        reload_on_hangup(service)
        started(space, access, service)
        run(create_app(space, max_jobs, access, compute_threads, warm=True, service=service),
            sockets)


def reload_on_hangup(service: Service) -> None:
    """SIGHUP re-reads the config's watch-list and rules, as operators expect of a daemon; a
    bad file is logged in one line and the running list kept."""

    def reload() -> None:
        try:
            service.reload()
        except VolcastError as error:
            log.error("reload refused: %s", error)

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload).start())
