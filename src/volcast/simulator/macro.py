"""A local stand-in for the macro and sentiment APIs, so every covariate download runs offline:
alternative.me's Fear & Greed index, CBOE's VIX history file and FRED's series observations,
served from the bundled exogenous files (or a folder laid out like shared/data/exogenous),
with the exchange simulator's fault injection (``server.fault_middleware``).

What is real and what is not: the Fear & Greed values and the VIX closes are the real ones of
the files. FRED's VIXCLS is the VIX close on each US weekday of the file ("." on weekdays the
file has no close, as FRED marks holidays). DGS10 and DTWEXBGS are SYNTHETIC, derived from the
VIX close (2 + VIX/20 and 100 + VIX/2) only so that paging through several series can be
tested; they are not yields or dollar indexes.
"""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from aiohttp import web

from volcast.data.formats.bounds import first_line
from volcast.data.sample import exogenous_file
from volcast.errors import VolcastError
from volcast.simulator.server import RunningSimulator, check_faults, fault_middleware, serving

FAULTS = ("429", "500", "502", "503", "stall", "truncated")
"""The exchange simulator's faults less Binance's 418 (an IP ban no other API answers)."""
FRED_MAX_LIMIT = 100_000
_NO_KEY = ("Bad Request.  Variable api_key is not set.  Read https://fred.stlouisfed.org/docs/"
           "api/api_key.html for more information.")
_BAD_KEY = ("Bad Request.  The value for variable api_key is not registered.  Read "
            "https://fred.stlouisfed.org/docs/api/api_key.html for more information.")


@dataclass
class MacroConfig:
    """What to serve and how badly. ``data_dir`` holds fear_greed.csv[.gz] and vix.csv[.gz]
    (default: the bundled ones); ``fred_api_key``: the one key FRED accepts (None: any)."""

    data_dir: Path | None = None
    fred_api_key: str | None = None
    fail_rate: float = 0.0
    seed: int = 0
    faults: tuple[str, ...] = FAULTS
    retry_after_s: int = 1
    stall_s: float = 15.0
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        check_faults(self)


def _read(folder: Path | None, name: str) -> pd.DataFrame:
    """One exogenous CSV: ``name.csv`` or ``name.csv.gz`` in ``folder``, else the bundled one."""
    if folder is None:
        return pd.read_csv(exogenous_file(name))
    for path in (folder / f"{name}.csv", folder / f"{name}.csv.gz"):
        if path.is_file() and "timestamp" in first_line(path):
            return pd.read_csv(path)
    raise VolcastError(f"{folder} holds no {name}.csv[.gz] laid out as shared/data/exogenous")


def _fred_series(vix: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """date (YYYY-MM-DD) and value (text, "." for none) of each FRED series served."""
    days = pd.to_datetime(vix["timestamp"], unit="ms")
    weekdays = pd.bdate_range(days.iloc[0], days.iloc[-1])
    close = vix.set_index(days)["close"].reindex(weekdays)
    dates = weekdays.strftime("%Y-%m-%d")

    def text(values: pd.Series, decimals: int) -> pd.DataFrame:
        shown = values.round(decimals).map(lambda v: f"{v:.{decimals}f}").where(
            values.notna(), ".")
        return pd.DataFrame({"date": dates, "value": shown.to_numpy()})

    return {"VIXCLS": text(close, 2), "DGS10": text(2 + close / 20, 2),
            "DTWEXBGS": text(100 + close / 2, 4)}


def _fred_error(message: str) -> web.Response:
    return web.json_response({"error_code": 400, "error_message": message}, status=400)


class MacroApis:
    """The three APIs' routes over one folder's data."""

    def __init__(self, config: MacroConfig) -> None:
        self.config = config
        self.fear_greed = _read(config.data_dir, "fear_greed")
        self.vix = _read(config.data_dir, "vix")
        self.fred = _fred_series(self.vix)
        self.vix_csv = _cboe_csv(self.vix)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/fng/", self.fng),
                web.get("/api/global/us_indices/daily_prices/VIX_History.csv", self.vix_history),
                web.get("/fred/series/observations", self.observations)]

    async def fng(self, request: web.Request) -> web.Response:
        """alternative.me: the newest ``limit`` days (0: all), newest first, as strings."""
        try:
            limit = int(request.query.get("limit", "1"))
        except ValueError:
            limit = 1
        rows = self.fear_greed.iloc[::-1]
        rows = rows if limit <= 0 else rows.iloc[:limit]
        data = [{"value": str(int(r.value)), "value_classification": r.classification,
                 "timestamp": str(int(r.timestamp) // 1000)} for r in rows.itertuples()]
        if data:
            data[0]["time_until_update"] = "3600"
        return web.json_response({"name": "Fear and Greed Index", "data": data,
                                  "metadata": {"error": None}})

    async def vix_history(self, request: web.Request) -> web.Response:
        """CBOE's file (``_cboe_csv``), made once: every retry asks for all of it."""
        return web.Response(text=self.vix_csv, content_type="text/csv")

    async def observations(self, request: web.Request) -> web.Response:
        """FRED's series/observations in JSON: api_key, file_type=json, observation_start,
        observation_end, sort_order, offset and limit (at most 100,000) as FRED reads them."""
        query = request.query
        key = query.get("api_key", "")
        if not key:
            return _fred_error(_NO_KEY)
        if self.config.fred_api_key is not None and key != self.config.fred_api_key:
            return _fred_error(_BAD_KEY)
        if query.get("file_type") != "json":
            return _fred_error("Bad Request.  Variable file_type is not one of the values: "
                               "xml, json, xlsx, csv (this simulator answers json only).")
        series = self.fred.get(query.get("series_id", ""))
        if series is None:
            return _fred_error("Bad Request.  The series does not exist.")
        try:
            offset, limit = int(query.get("offset", "0")), int(query.get("limit", "100000"))
        except ValueError:
            return _fred_error("Bad Request.  Variable offset or limit is not an integer.")
        if not 1 <= limit <= FRED_MAX_LIMIT or offset < 0:
            return _fred_error("Bad Request.  Variable limit is not between 1 and 100000.")
        start = query.get("observation_start", "1776-07-04")
        end = query.get("observation_end", "9999-12-31")
        chosen = series[(series["date"] >= start) & (series["date"] <= end)]
        if query.get("sort_order", "asc") == "desc":
            chosen = chosen.iloc[::-1]
        today = pd.Timestamp.now("UTC").strftime("%Y-%m-%d")
        page = [{"realtime_start": today, "realtime_end": today, "date": d, "value": v}
                for d, v in chosen.iloc[offset:offset + limit].itertuples(index=False)]
        return web.json_response({
            "realtime_start": today, "realtime_end": today, "observation_start": start,
            "observation_end": end, "units": "lin", "output_type": 1, "file_type": "json",
            "order_by": "observation_date", "sort_order": query.get("sort_order", "asc"),
            "count": len(chosen), "offset": offset, "limit": limit,
            "observations": page})


def build_app(config: MacroConfig) -> tuple[web.Application, Counter[str]]:
    """The aiohttp application and the counters it updates (requests, per path, per fault)."""
    stats: Counter[str] = Counter()
    app = web.Application(middlewares=[fault_middleware(config, stats)])
    app.add_routes(MacroApis(config).routes())
    return app, stats


@contextmanager
def running(config: MacroConfig, port: int = 0) -> Iterator[RunningSimulator]:
    """Serve the three APIs on 127.0.0.1 from a background thread for the block's duration;
    ``url`` is the base URL every ``volcast covariates fetch --url`` takes."""
    with serving(*build_app(config), port) as sim:
        yield sim


def _cboe_csv(vix: pd.DataFrame) -> str:
    """CBOE's VIX history file: DATE as MM/DD/YYYY, six decimals, a line break after every
    row."""
    days = pd.to_datetime(vix["timestamp"], unit="ms").dt.strftime("%m/%d/%Y")
    prices = vix[["open", "high", "low", "close"]].to_numpy()
    lines = ["DATE,OPEN,HIGH,LOW,CLOSE", *(
        f"{day},{','.join(f'{p:.6f}' for p in row)}" for day, row in zip(days, prices,
                                                                          strict=True))]
    return "\n".join(lines) + "\n"
