"""The FastAPI application: the API (``routes/``), the dashboard page and its files, and the
one place errors become HTTP answers (never a stack trace)."""

from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from volcast import __version__
from volcast.errors import NotFound, VolcastError
from volcast.web.jobs import JobConflict, JobManager, TooManyJobs
from volcast.web.routes import router
from volcast.workspace import Workspace

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATUS = {NotFound: 404, JobConflict: 409, TooManyJobs: 429}


def _error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, VolcastError):
        status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 422)
        return JSONResponse({"detail": str(error)}, status_code=status)
    return JSONResponse({"detail": f"internal error ({type(error).__name__}); see the server "
                                   "log"}, status_code=500)


def create_app(workspace: Workspace, max_jobs: int = 2) -> FastAPI:
    app = FastAPI(title="volcast", version=__version__,
                  description="Crypto trading-volume data, forecasts (q10/q50/q90), analysis "
                              "and background jobs.")
    app.state.workspace = workspace
    app.state.jobs = JobManager(max_jobs)
    app.add_exception_handler(VolcastError, _error)
    app.add_exception_handler(Exception, _error)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        """plotly.js from the installed plotly package: no CDN, no build step."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    return app
