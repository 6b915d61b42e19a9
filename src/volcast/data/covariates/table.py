"""The covariates table, in the candle store's DuckDB file.

Why the same file: a backtest reads candles and covariates from one source of truth, and every
command's ``--db`` finds both. The table is made on the first write (as the alert log's are),
so a store that never had a covariate reads as having none, read-only opens included; every
call is one short-lived connection of the store, so other processes get their turn.

One row per value: ``name`` (what users type: ``vix``, ``fred:DGS10``, ``funding_rate``),
``scope`` ('' for a market-wide series, ``exchange:symbol`` for a per-market one such as
``binance:BTC/USDT:USDT``), ``ts`` (the time the value is dated), ``value``, ``published_ms``
(when it became public: ``publication.py``) and ``source`` (where it came from). The key is
(name, scope, ts): writing the same values again changes nothing.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volcast.data.formats.validate import MAX_VALUE, wall_clock_ms
from volcast.data.store import CandleStore, Written
from volcast.data.timeframe import format_time
from volcast.errors import VolcastError

ROWS = ["ts", "value", "published_ms"]
"""The columns of one series' frame, as written and as read."""
EARLIEST_MS = -2_208_988_800_000
"""1900-01-01 00:00 UTC: older than any series volcast fetches (FRED's DFF starts in 1954)."""
_DDL = """
CREATE TABLE IF NOT EXISTS covariates (
    name VARCHAR NOT NULL, scope VARCHAR NOT NULL, ts BIGINT NOT NULL, value DOUBLE NOT NULL,
    published_ms BIGINT NOT NULL, source VARCHAR NOT NULL, PRIMARY KEY (name, scope, ts));
"""


@dataclass(frozen=True)
class Batch:
    """Values of one series to write: ``frame`` has columns ROWS."""

    name: str
    scope: str
    source: str
    frame: pd.DataFrame


def checked(frame: pd.DataFrame, what: str, now_ms: int | None = None,
            within: tuple[float, float] | None = None) -> pd.DataFrame:
    """ROWS as int64/float64, sorted by ts, after refusing the first impossible row with one
    line naming ``what``: a time not a whole ms, before 1900 or dated after now, a value not
    finite or beyond MAX_VALUE or outside the series' own range ``within`` (inclusive), a
    publication before the time the value is dated, a time twice."""
    now = wall_clock_ms() if now_ms is None else now_ms
    ts, value, published = (frame[c].to_numpy(dtype=float) for c in ROWS)
    low, high = within or (-MAX_VALUE, MAX_VALUE)
    checks = [
        (~np.isfinite(ts) | (ts % 1 != 0), "time is not a whole number of milliseconds"),
        (ts < EARLIEST_MS, "dated before 1900"),
        (ts > now, f"dated after now ({format_time(now)} UTC)"),
        (~np.isfinite(value) | (np.abs(value) > MAX_VALUE), "value is not a finite number "
                                                             f"within {MAX_VALUE:.0e}"),
        ((value < low) | (value > high), f"value outside {low:g}..{high:g}, the series' range"),
        (published < ts, "published before the time it is dated"),
        (pd.Series(ts).duplicated().to_numpy(), "the same time twice"),
    ]
    for bad, why in checks:
        if bad.any():
            row = int(bad.argmax())
            raise VolcastError(f"{what}: row {row + 1}: {why} (time={ts[row]:.16g} "
                               f"({format_time(ts[row])}), value={value[row]:.16g})")
    return pd.DataFrame({"ts": ts.astype(np.int64), "value": value,
                         "published_ms": published.astype(np.int64)}).sort_values(
        "ts", ignore_index=True)


def batch(name: str, scope: str, source: str, ts: np.ndarray, values: np.ndarray,
          rule: Callable[[np.ndarray], np.ndarray], what: str,
          within: tuple[float, float] | None = None) -> Batch:
    """Values of one series with the time each became public by ``rule``
    (``publication.py``), after ``checked`` refused any impossible row (``within``: the
    series' own range, e.g. an index of 0 to 100)."""
    frame = checked(pd.DataFrame({"ts": ts, "value": values, "published_ms": ts}), what,
                    within=within)
    frame["published_ms"] = rule(frame["ts"].to_numpy())
    return Batch(name, scope, source, frame)


def write(store: CandleStore, batches: Sequence[Batch]) -> Written:
    """Upsert every batch in one transaction (all of them or none): how many values were new,
    and how many replaced a stored one (same name, scope and ts) with another value or
    publication time."""
    new = changed = 0
    with store.transaction() as con:
        con.execute(_DDL)
        for batch in batches:
            page = batch.frame[ROWS]
            con.register("page", page)
            try:
                known, differs = con.execute(
                    "SELECT count(*), count(*) FILTER (WHERE c.value IS DISTINCT FROM p.value OR "
                    "c.published_ms IS DISTINCT FROM p.published_ms) FROM covariates c JOIN page "
                    "p ON c.ts = p.ts WHERE c.name = ? AND c.scope = ?", [batch.name, batch.scope]
                ).fetchall()[0]
                con.execute("INSERT OR REPLACE INTO covariates SELECT ?, ?, ts, value, "
                            "published_ms, ? FROM page", [batch.name, batch.scope, batch.source])
            finally:
                con.unregister("page")
            new += len(page) - int(known)
            changed += int(differs)
    return Written(new, changed)


def _exists(store: CandleStore) -> bool:
    with store.connection() as con:
        return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                "table_schema = 'main' AND table_name = 'covariates'"
                                ).fetchall()[0][0])


def read(store: CandleStore, name: str, scope: str = "") -> pd.DataFrame:
    """One series' values (ROWS), by ts; empty when none are stored."""
    with store.connection() as con:
        if not _exists(store):
            return pd.DataFrame({"ts": pd.Series(dtype=np.int64), "value": pd.Series(dtype=float),
                                 "published_ms": pd.Series(dtype=np.int64)})
        return con.execute("SELECT ts, value, published_ms FROM covariates WHERE name = ? AND "
                           "scope = ? ORDER BY ts", [name, scope]).df()


def newest(store: CandleStore, name: str, scope: str = "") -> int | None:
    """The time the newest stored value of a series is dated: where a download resumes."""
    with store.connection() as con:
        if not _exists(store):
            return None
        last = con.execute("SELECT max(ts) FROM covariates WHERE name = ? AND scope = ?",
                           [name, scope]).fetchall()[0][0]
    return None if last is None else int(last)


def listing(store: CandleStore) -> pd.DataFrame:
    """Every stored series: name, scope, source, rows, first and last time dated, and when the
    newest value became public."""
    columns = ["name", "scope", "source", "rows", "first", "last", "published"]
    with store.connection() as con:
        if not _exists(store):
            return pd.DataFrame(columns=columns)
        return con.execute(
            "SELECT name, scope, string_agg(DISTINCT source, ',') AS source, count(*) AS rows, "
            "min(ts) AS first, max(ts) AS last, max(published_ms) AS published "
            "FROM covariates GROUP BY name, scope ORDER BY name, scope").df()[columns]
