"""Downloads of the market-wide covariates: alternative.me's Fear & Greed index, CBOE's VIX
history and FRED's daily series (``volcast covariates fetch fear_greed|vix|fred``).

Each asks only for what is newer than the store's newest value where the API can say so
(alternative.me's ``limit`` of days, FRED's ``observation_start``; CBOE's file is whole) and
keeps only values dated after it. Everything one command downloads is validated before any of
it is written, then written in one transaction: a bad payload is one line (exit 2) and leaves
the store as it was. ``volcast simulate-macro`` (``volcast.simulator.macro``) answers all three
offline.
"""

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import pandas as pd

from volcast.config import CovariateSettings, FetchSettings
from volcast.data.covariates import files, publication, table
from volcast.data.covariates.catalog import FRED_PREFIX
from volcast.data.covariates.http import Incomplete, get, session
from volcast.data.covariates.table import Batch
from volcast.data.formats.validate import numeric, wall_clock_ms
from volcast.data.retry import RetryPolicy
from volcast.data.store import CandleStore
from volcast.data.timeframe import DAY_MS, format_time
from volcast.errors import VolcastError

FEAR_GREED_URL = "https://api.alternative.me"
CBOE_URL = "https://cdn.cboe.com"
VIX_PATH = "/api/global/us_indices/daily_prices/VIX_History.csv"
FRED_URL = "https://api.stlouisfed.org"
FRED_PATH = "/fred/series/observations"
FRED = "fred"
SOURCES = (files.FEAR_GREED, files.VIX, FRED)
FRED_PAGE = 100_000
"""Observations per FRED request: the most its API returns at once."""


@dataclass(frozen=True)
class Download:
    """What one fetch brought: the batch of values newer than the store's (to write) and how
    many values the source sent."""

    batch: Batch
    sent: int


@dataclass(frozen=True)
class Fetcher:
    """Where and how to ask: base URL (scheme://host[:port], the API's own paths follow), the
    retry rule, and a secret to keep out of every message."""

    session: aiohttp.ClientSession
    url: str
    retry: RetryPolicy
    secret: str | None = None

    async def get(self, path: str, params: dict[str, str], what: str, parse: Any) -> Any:
        return await get(self.session, self.url.rstrip("/") + path, params, what, self.retry,
                         parse, self.secret)


def json_body(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Incomplete(f"JSON that does not parse: {exc.msg}") from None


def csv_body(text: str) -> str:
    """A CSV file whole: it ends with a line break (a cut one ends mid-line)."""
    if not text.endswith("\n"):
        raise Incomplete("no line break at the end")
    return text


def _newer(download: Batch, last: int | None, sent: int) -> Download:
    """The values dated after the store's newest."""
    frame = download.frame if last is None else download.frame[download.frame["ts"] > last]
    return Download(Batch(download.name, download.scope, download.source,
                          frame.reset_index(drop=True)), sent)


def _records(payload: Any, key: str, what: str) -> list[dict[str, Any]]:
    """``payload[key]``, a list of objects, or one line saying the answer is not one."""
    records = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise VolcastError(f"{what}: unexpected answer (no '{key}' list of objects)")
    return records


def _fear_greed_rows(payload: Any, what: str) -> pd.DataFrame:
    """alternative.me's ``{"data": [{"value": "47", "timestamp": "<s>"}, ...], "metadata":
    {"error": null}}``, newest first -> timestamp (ms), value (text, checked later)."""
    error = payload.get("metadata", {}).get("error") if isinstance(payload, dict) else None
    if error:
        raise VolcastError(f"{what}: the API answered an error ({error})")
    raw = pd.DataFrame(_records(payload, "data", what), columns=["timestamp", "value"])
    seconds = numeric(raw[["timestamp"]], what)["timestamp"]
    return raw.assign(timestamp=(seconds * 1000).astype(str))


async def fear_greed(fetcher: Fetcher, last: int | None) -> Download:
    """The index from alternative.me: all days (``limit=0``), or the days since ``last``."""
    what = "alternative.me fear & greed"
    days = 0 if last is None else (wall_clock_ms() - last) // DAY_MS + 2
    payload = await fetcher.get("/fng/", {"limit": str(days), "format": "json"}, what,
                                json_body)
    rows = _fear_greed_rows(payload, what)
    if rows.empty:
        raise VolcastError(f"{what}: the answer holds no values")
    return _newer(files.fear_greed(rows, what), last, len(rows))


async def vix(fetcher: Fetcher, last: int | None) -> Download:
    """CBOE's whole VIX history file (DATE,OPEN,HIGH,LOW,CLOSE)."""
    what = "CBOE VIX_History.csv"
    text = await fetcher.get(VIX_PATH, {}, what, csv_body)
    frame = files.read_table(io.BytesIO(text.encode()), what)
    return _newer(files.vix(frame, what), last, len(frame))


def _fred_batch(series: str, observations: list[dict[str, Any]], what: str) -> Batch:
    """FRED's ``{"date": "YYYY-MM-DD", "value": "4.25"}`` records; "." (no value that day) is
    left out."""
    raw = pd.DataFrame(observations, columns=["date", "value"]).astype(str)
    days = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    if days.isna().any():
        row = int(days.isna().to_numpy().argmax())
        raise VolcastError(f"{what}: observation {row + 1}: date '{raw['date'].iloc[row]}' is "
                           "not YYYY-MM-DD")
    known = (raw["value"].str.strip() != ".").to_numpy()
    values = numeric(raw[["value"]].where(pd.DataFrame({"value": known}), "0"), what)[
        "value"].to_numpy()
    ts = days.to_numpy().astype("datetime64[ms]").astype(np.int64)
    return table.batch(FRED_PREFIX + series, "", "fred", ts[known], values[known],
                       publication.fred(series), what)


async def fred(fetcher: Fetcher, series: str, last: int | None, page: int = FRED_PAGE
               ) -> Download:
    """One FRED series' observations after ``last``, page by page (``offset``/``limit``)."""
    what = f"FRED {series}"
    params = {"series_id": series, "api_key": fetcher.secret or "", "file_type": "json",
              "sort_order": "asc", "limit": str(page)}
    if last is not None:
        params["observation_start"] = format_time(last + DAY_MS)[:10]
    observations: list[dict[str, Any]] = []
    while True:
        answer = await fetcher.get(FRED_PATH, {**params, "offset": str(len(observations))},
                                   f"{what} (from observation {len(observations) + 1})",
                                   json_body)
        got = _records(answer, "observations", what)
        count = answer.get("count")
        if not isinstance(count, int):
            raise VolcastError(f"{what}: unexpected answer (no 'count' of observations)")
        observations += got
        if not got or len(observations) >= count:
            break
    return _newer(_fred_batch(series, observations, what), last, len(observations))


async def fetch(store: CandleStore, source: str, settings: FetchSettings, url: str | None = None,
                series: Sequence[str] = (), api_key: str | None = None, page: int = FRED_PAGE
                ) -> list[Download]:
    """Download ``source`` (fear_greed, vix, or fred with its ``series``) from ``url`` (default:
    the source's own), then write every new value in one transaction."""
    retry = RetryPolicy(settings.retries, settings.backoff_s, settings.backoff_max_s)
    async with session(settings.timeout_ms) as opened:
        if source == FRED:
            fetcher = Fetcher(opened, url or FRED_URL, retry, api_key)
            downloads = [await fred(fetcher, one, table.newest(store, FRED_PREFIX + one), page)
                         for one in series]
        else:
            base, one_source = {files.FEAR_GREED: (FEAR_GREED_URL, fear_greed),
                                files.VIX: (CBOE_URL, vix)}[source]
            downloads = [await one_source(Fetcher(opened, url or base, retry),
                                          table.newest(store, source))]
    table.write(store, [d.batch for d in downloads])
    return downloads


def fred_api_key(settings: CovariateSettings) -> str:
    """$FRED_API_KEY, else ``fred_api_key`` of the config's [covariates] table; never shown."""
    key = os.environ.get("FRED_API_KEY") or (
        settings.fred_api_key.get_secret_value() if settings.fred_api_key else "")
    if not key.strip():
        raise VolcastError("FRED needs an API key (free at https://fredaccount.stlouisfed.org/"
                           "apikeys): set FRED_API_KEY, or fred_api_key in the [covariates] "
                           "table of --config")
    return key.strip()


def fred_series(text: Sequence[str]) -> list[str]:
    """``--series VIXCLS,DGS10`` -> series ids, each with a publication rule."""
    series = list(dict.fromkeys(s.strip().upper() for t in text for s in t.split(",")
                                if s.strip()))
    if not series:
        raise VolcastError("give at least one FRED series, e.g. --series VIXCLS,DGS10")
    for one in series:
        publication.fred(one)
    return series
