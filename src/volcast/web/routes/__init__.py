"""The HTTP API, one module per resource, each a thin layer over ``volcast.workspace``.

Inputs are validated by FastAPI/pydantic (422), an unknown series or job is 404, a second job
for one series 409, too many jobs 429. Forecasts and backtests also come as CSV
(``?format=csv`` or ``Accept: text/csv``).
"""

from fastapi import APIRouter

from volcast.web.routes import analysis, forecasts, jobs, live, meta, series

router = APIRouter()
for module in (meta, series, forecasts, analysis, jobs, live):
    router.include_router(module.router)
