"""Holes in a stored series, and the stretches an exchange has confirmed it has no candles for.

A hole is a run of missing open times between two stored candles. Some are the exchange's own
outages (Binance has no BTC/USDT candle at 2023-03-24 13:00): asking again can never fill them,
so a fetch that asked and got nothing records the stretch in ``empty_ranges`` and never asks
for it again; ``volcast data gaps`` tells those apart from holes nobody has asked for yet. The
functions here take the store's connection inside its lock (``CandleStore`` calls them).
"""

import duckdb
import pandas as pd

from volcast.data.timeframe import DAY_MS

Range = tuple[int, int]
"""[start, stop) in open-time ms."""
HALTED_AFTER_MS = DAY_MS
"""A series whose newest candle is older than this before the end of what was asked (or of
its exchange's other markets) has halted or been delisted: the exchange published no candle
since. A download notes it; an exchange's total stops counting it (``data.totals``)."""

EMPTY_RANGES_DDL = """
CREATE TABLE IF NOT EXISTS empty_ranges (
    series_id INTEGER NOT NULL, start BIGINT NOT NULL, stop BIGINT NOT NULL,
    PRIMARY KEY (series_id, start));
"""
"""Per series, disjoint [start, stop) stretches of open times the exchange answered with no
candles (schema 3)."""

GAPS_SQL = """
SELECT series_id, ts AS after, next_ts AS before, (next_ts - ts) // tf_ms - 1 AS missing, tf_ms
FROM (SELECT c.series_id, c.ts, s.tf_ms,
             lead(c.ts) OVER (PARTITION BY c.series_id ORDER BY c.ts) AS next_ts
      FROM candles c JOIN series s ON s.id = c.series_id {where})
WHERE next_ts - ts > tf_ms
"""
"""Every hole: the stored candles either side and how many candles are missing between them."""

_CONFIRMED_SQL = f"""
WITH g AS ({GAPS_SQL.format(where="WHERE c.series_id = ?")})
SELECT g.after, g.before, g.missing, CAST(coalesce(sum(greatest(0,
         least(g.missing, (greatest(0, r.stop - g.after - g.tf_ms) + g.tf_ms - 1) // g.tf_ms)
         - (greatest(0, r.start - g.after - g.tf_ms) + g.tf_ms - 1) // g.tf_ms)), 0) AS BIGINT)
       AS confirmed
FROM g LEFT JOIN empty_ranges r ON r.series_id = g.series_id
     AND r.start < g.before AND r.stop > g.after + g.tf_ms
GROUP BY g.after, g.before, g.missing ORDER BY g.after
"""
"""Each hole with how many of its missing open times lie in confirmed-empty stretches: the
missing times are after + k * tf (k = 1 .. missing), so a stretch covers those with k from
ceil((start - after) / tf) to ceil((stop - after) / tf) - 1, clipped to the hole."""


def gaps(con: duckdb.DuckDBPyConnection, sid: int, confirmed_known: bool) -> pd.DataFrame:
    """One series' holes: after, before (the stored neighbours), missing, and ``confirmed``
    (missing candles the exchange confirmed it lacks; 0 where the store predates schema 3)."""
    if confirmed_known:
        return con.execute(_CONFIRMED_SQL, [sid]).df()
    frame = con.execute(GAPS_SQL.format(where="WHERE c.series_id = ?") + " ORDER BY after",
                        [sid]).df()
    return frame[["after", "before", "missing"]].assign(confirmed=0)


def stretches(con: duckdb.DuckDBPyConnection, sid: int) -> list[Range]:
    """The series' confirmed-empty stretches, in time order."""
    return [(int(a), int(b)) for a, b in con.execute(
        "SELECT start, stop FROM empty_ranges WHERE series_id = ? ORDER BY start",
        [sid]).fetchall()]


def confirm(con: duckdb.DuckDBPyConnection, sid: int, start: int, stop: int) -> None:
    """Record [start, stop) as confirmed empty, merged with the stretches it overlaps or
    touches so they stay disjoint (call inside a transaction)."""
    where = "WHERE series_id = ? AND start <= ? AND stop >= ?"
    low, high = con.execute(f"SELECT min(start), max(stop) FROM empty_ranges {where}",
                            [sid, stop, start]).fetchall()[0]
    con.execute(f"DELETE FROM empty_ranges {where}", [sid, stop, start])
    con.execute("INSERT INTO empty_ranges VALUES (?, ?, ?)",
                [sid, start if low is None else min(low, start),
                 stop if high is None else max(high, stop)])


def forget(con: duckdb.DuckDBPyConnection, sid: int, start: int, stop: int) -> None:
    """Forget what is known of [start, stop): stretches are cut back to outside it, so a later
    fetch asks the exchange again (call inside a transaction)."""
    overlapping = [(a, b) for a, b in stretches(con, sid) if a < stop and b > start]
    con.execute("DELETE FROM empty_ranges WHERE series_id = ? AND start < ? AND stop > ?",
                [sid, stop, start])
    for a, b in subtract(overlapping, [(start, stop)]):
        con.execute("INSERT INTO empty_ranges VALUES (?, ?, ?)", [sid, a, b])


def subtract(ranges: list[Range], cut: list[Range]) -> list[Range]:
    """``ranges`` without what any range of ``cut`` covers, in order; empty pieces dropped."""
    left = list(ranges)
    for low, high in cut:
        left = [piece for start, stop in left
                for piece in ((start, min(stop, low)), (max(start, high), stop))
                if piece[0] < piece[1]]
    return left
