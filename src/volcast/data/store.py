"""The candle store: one DuckDB file, candles keyed by (series, open time), upserted page by page.

Why this shape: series names live once in ``series`` and candles carry a small integer id, which
keeps the primary-key index narrow (upserts run several times faster than with three string
columns in the key). Every write is one transaction, so a killed process leaves either the whole
page or none of it, and a re-run that writes the same candles changes nothing. Each series
records its units: volume is counted in ``base``, prices are in ``quote``.
"""

import functools
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, ParamSpec, TypeVar

import duckdb
import pandas as pd

from volcast.data import holes
from volcast.data.timeframe import timeframe_ms
from volcast.errors import VolcastError

SCHEMA_VERSION = 3
"""1: series without units; 2: series.base and series.quote; 3: empty_ranges, the stretches an
exchange confirmed it has no candles for (an older file is migrated in place when opened for
writing, and read as if migrated when opened read-only)."""
PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]
CANDLE_COLUMNS = ["timestamp", *PRICE_COLUMNS]
"""Columns of a candle frame (and of our CSV); an optional ``trades`` column may follow."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS volcast_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE SEQUENCE IF NOT EXISTS series_ids;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY DEFAULT nextval('series_ids'),
    exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
    tf_ms BIGINT NOT NULL, base VARCHAR, quote VARCHAR, UNIQUE (exchange, symbol, timeframe));
CREATE TABLE IF NOT EXISTS candles (
    series_id INTEGER NOT NULL, ts BIGINT NOT NULL,
    open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL, trades BIGINT, PRIMARY KEY (series_id, ts));
""" + holes.EMPTY_RANGES_DDL


_MIN_TS, _MAX_TS = -(2**63), 2**63 - 1
"""Open-time bounds of an unbounded read: every candle, even one an older volcast stored from
the far future (such a store must still export whole, so it can be repaired)."""

_SYMBOL_RE = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?(-[A-Za-z0-9]+)*\Z")
TOTAL = "*"
"""The base of an exchange's total (``*/USDT``: the summed quote volume of its stored USDT
markets, ``data.totals``): no ccxt market is named so, so a total never meets a fetched one."""
_TOTAL_RE = re.compile(r"^\*/[A-Za-z0-9._-]+\Z")


def check_symbol(symbol: str) -> str:
    """A ccxt unified symbol: BASE/QUOTE for spot, BASE/QUOTE:SETTLE for derivatives, so spot
    and futures can never share a series; or an exchange's total, ``*/QUOTE``."""
    if not (_SYMBOL_RE.match(symbol) or _TOTAL_RE.match(symbol)):
        raise VolcastError(f"symbol '{symbol}' must be written as ccxt does: BASE/QUOTE such as "
                           "BTC/USDT, or BTC/USDT:USDT for a perpetual (*/USDT: the exchange's "
                           "total, `volcast totals build`)")
    return symbol


def is_total(symbol: str) -> bool:
    """An exchange's total (``*/USDT``), built from its stored markets, never fetched."""
    return symbol.startswith(f"{TOTAL}/")


def refuse_total(exchange: str, symbol: str, timeframe: str, verb: str) -> None:
    """One line for a total (``*/USDT``) given where a market belongs: it is only built."""
    if is_total(symbol):
        raise VolcastError(f"'{symbol}' is the total of {exchange}'s stored markets: build it "
                           f"with `volcast totals build -e {exchange} --quote "
                           f"{symbol.partition('/')[2]} -t {timeframe}`; it is never {verb}")


def units_of(symbol: str) -> tuple[str, str]:
    """(base, quote) read from a ccxt unified symbol: BTC/USDT and the perpetual BTC/USDT:USDT
    both give (BTC, USDT); quote is what prices (so quote volume) are in, not the settle
    currency. A total's volume is counted in its quote currency: ``*/USDT`` gives (USDT, USDT).
    Used where no exchange says it (imports, stores written before units)."""
    base, _, rest = symbol.partition("/")
    quote = rest.partition(":")[0]
    return (quote if base == TOTAL else base), quote


@dataclass(frozen=True)
class SeriesKey:
    """One stored series; symbols and timeframes are spelled as ccxt spells them."""

    exchange: str
    symbol: str
    timeframe: str

    @classmethod
    def parse(cls, exchange: str, symbol: str, timeframe: str) -> "SeriesKey":
        """A key from user input: symbol and timeframe checked, one-line errors."""
        timeframe_ms(timeframe)
        return cls(exchange, check_symbol(symbol), timeframe)

    @property
    def tf_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def unique_id(self) -> str:
        """The series' ``unique_id`` in long frames: ``exchange:symbol:timeframe``."""
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"

    @classmethod
    def of_unique_id(cls, unique_id: str) -> "SeriesKey | None":
        """The stored series a long frame's ``unique_id`` names (a perpetual's symbol holds a
        colon too: ``binance:BTC/USDT:USDT:1h``); None for a file's series, named after its
        file."""
        parts = unique_id.split(":")
        if len(parts) < 3:
            return None
        return cls(parts[0], ":".join(parts[1:-1]), parts[-1])

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"


WAIT_S = 30.0
"""How long an operation waits for another process to let go of the file before it gives up
with one line. Every holder lets go within milliseconds to seconds (``CandleStore``)."""


def _busy(error: duckdb.Error) -> bool:
    """Another process holds the file (its lock), or another thread of this one holds it open
    in the other mode (DuckDB shares one instance per file within a process)."""
    text = str(error).lower()
    return ("could not set lock" in text or "conflicting lock" in text
            or "different configuration" in text)


def _damaged(error: duckdb.Error) -> bool:
    """The file is cut short or a block fails its checksum (a disk fault, a copy taken while
    it was being written): DuckDB may say so when it opens the file or at any later query."""
    text = str(error).lower()
    return any(why in text for why in ("corrupt", "checksum", "could not read enough bytes",
                                       "has been invalidated"))  # after one of those


def _refused(error: duckdb.Error) -> bool:
    """The file system will not let this process write the file."""
    text = str(error).lower()
    return any(why in text for why in ("permission denied", "operation not permitted",
                                       "read-only file system"))


def _one_line(path: Path, error: duckdb.Error, read_only: bool) -> VolcastError:
    """What to tell a user about a DuckDB error that is not another process' turn."""
    why = str(error).splitlines()[0]
    if _damaged(error):
        return VolcastError(f"{path} is damaged ({why}); restore it from a backup, or fetch "
                            "and import again into a new --db")
    if _refused(error):
        how = "" if read_only else " for writing"
        return VolcastError(f"{path} cannot be opened{how} ({why}); check its permissions"
                            + ("" if read_only else ", or copy it somewhere writable"))
    return VolcastError(f"{path} is not a DuckDB database ({why})")


def _connect(path: Path, read_only: bool, wait_s: float) -> tuple[duckdb.DuckDBPyConnection,
                                                                  float]:
    """Open the file, waiting (with jittered backoff) while another process holds it; returns
    the connection and the seconds waited. DuckDB's other errors become one-line messages."""
    if read_only and not path.exists():
        raise VolcastError(f"no database at {path}: fetch or import candles first")
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    delay = 0.002
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only), time.monotonic() - start
        except duckdb.Error as exc:
            if not _busy(exc):
                raise _one_line(path, exc, read_only) from None
            if time.monotonic() - start > wait_s:
                raise VolcastError(f"database {path} is still in use by another process after "
                                   f"{wait_s:g} s; try again when it has finished") from None
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 0.05)


LINGER_S = 0.05
"""How long the file stays open after an operation, for the next one: opening it costs ~17 ms,
and under the dashboard's load (tens of requests a second, each a few operations) opening it
for every operation queued the requests for seconds."""
TURN_S = 0.5
"""The longest this process keeps the file open across operations; then it closes it and
leaves it alone for ``GAP_S``, so that another process waiting for it (retrying every 50 ms at
most) gets its turn however busy this one is."""
GAP_S = 0.1

P = ParamSpec("P")
R = TypeVar("R")


def _connected(method: Callable[P, R]) -> Callable[P, R]:
    """Run the method on the store's connection, opened for it (and for the calls it makes)
    and closed after: see ``CandleStore.connection``."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0].connection():  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


class Written(NamedTuple):
    """What a write did: rows new to the store, and stored rows it replaced with other values."""

    new: int
    changed: int


class CandleStore:
    """Read and write candles of many series in one DuckDB file; safe to share between threads
    and between processes.

    DuckDB lets one process at a time hold a file open for writing (or any number for reading
    only), so the store keeps it open only while it works: an operation opens a connection
    (waiting while another process holds the file), does its work (one transaction for a
    write), and the connection closes ``LINGER_S`` after the last operation, or at once when it
    has been open ``TURN_S``. `volcast serve` following its watch-list and every CLI command on
    the same file take turns of milliseconds (docs/live.md). Within a process, one lock
    serialises the store's users (a DuckDB connection is not safe to share between threads)."""

    def __init__(self, path: Path, read_only: bool = False, wait_s: float = WAIT_S,
                 on_wait: Callable[[float], None] | None = None) -> None:
        self.path, self.read_only, self.wait_s = path, read_only, wait_s
        self.on_wait = on_wait
        """Told the seconds each opening waited for another process (metrics, benchmarks)."""
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._opened = self._idle_since = self._next_open = 0.0
        self._closer: threading.Timer | None = None
        try:
            with self.connection():
                self._check_ours(read_only)
        except BaseException:  # no store to close it later: let go of the file now
            self._shut()
            raise

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection of the operation in progress on this thread: the open one, or one
        opened for it, which lingers after it (``LINGER_S``, ``TURN_S``)."""
        with self._lock:
            if self._con is None:
                time.sleep(max(0.0, self._next_open - time.monotonic()))  # others' turn
                self._con, waited = _connect(self.path, self.read_only, self.wait_s)
                self._opened = time.monotonic()
                if self.on_wait is not None:
                    self.on_wait(waited)
            self._depth += 1
            try:
                yield self._con
            except duckdb.Error as exc:
                if _damaged(exc):  # found by a query, after the file opened
                    raise _one_line(self.path, exc, self.read_only) from None
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._let_go()

    def _let_go(self) -> None:
        """After the outermost operation: close now if the turn is over, else in ``LINGER_S``
        unless another operation comes first."""
        self._idle_since = time.monotonic()
        if self._idle_since - self._opened >= TURN_S:
            self._shut()
            self._next_open = self._idle_since + GAP_S
        elif self._closer is None:
            self._arm(LINGER_S)

    def _arm(self, delay: float) -> None:
        self._closer = threading.Timer(delay, self._close_idle)
        self._closer.daemon = True
        self._closer.start()

    def _close_idle(self) -> None:
        with self._lock:
            if self._closer is not threading.current_thread():  # replaced: that one decides
                return
            self._closer = None
            if self._depth or self._con is None:
                return
            idle = time.monotonic() - self._idle_since
            if idle >= LINGER_S:
                self._shut()
            else:
                self._arm(LINGER_S - idle)

    def _shut(self) -> None:
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        if self._con is not None:
            self._con.close()
            self._con = None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction: committed at the end, rolled back on error, so
        a killed process leaves all of it or none."""
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _check_ours(self, read_only: bool) -> None:
        """Refuse a DuckDB file that another program made, rather than write into it."""
        tables = {row[0] for row in self._con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()}
        if tables and "volcast_meta" not in tables:
            raise VolcastError(f"{self.path} is a DuckDB database but not a volcast one "
                               f"(it has tables {', '.join(sorted(tables)[:5])}); use another --db")
        if not tables:
            if read_only:
                raise VolcastError(f"{self.path} holds no candles yet")
            self._con.execute(_SCHEMA)
            self._con.execute("INSERT INTO volcast_meta VALUES ('schema_version', ?)",
                              [str(SCHEMA_VERSION)])
            self._version = SCHEMA_VERSION
            return
        version = self._first("SELECT value FROM volcast_meta WHERE key = 'schema_version'")
        if version is None or int(version[0]) > SCHEMA_VERSION:
            raise VolcastError(f"{self.path} was written by a newer volcast (schema "
                               f"{version[0] if version else '?'}); upgrade volcast")
        self._version = int(version[0])
        if self._version < SCHEMA_VERSION and not read_only:
            self._migrate()

    def _migrate(self) -> None:
        """An older schema -> SCHEMA_VERSION in one transaction; a failure leaves the file as it
        was. 1 -> 2: base and quote for every series, read from its symbol (no exchange is
        asked); 2 -> 3: the empty_ranges table, empty (nothing confirmed yet)."""
        with self.transaction() as con:
            if self._version < 2:
                con.execute("ALTER TABLE series ADD COLUMN base VARCHAR")
                con.execute("ALTER TABLE series ADD COLUMN quote VARCHAR")
                for sid, symbol in con.execute("SELECT id, symbol FROM series").fetchall():
                    con.execute("UPDATE series SET base = ?, quote = ? WHERE id = ?",
                                [*units_of(symbol), sid])
            con.execute(holes.EMPTY_RANGES_DDL)
            con.execute("UPDATE volcast_meta SET value = ? WHERE key = 'schema_version'",
                        [str(SCHEMA_VERSION)])
        self._version = SCHEMA_VERSION

    def _first(self, query: str, args: list[object] | None = None) -> tuple | None:
        """First row or None, reading the result to its end (DuckDB 2 refuses new work on a
        connection while a result is unfinished)."""
        rows = self._con.execute(query, args or []).fetchall()
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the file now rather than ``LINGER_S`` later (an operation in progress on
        another thread keeps it until it ends)."""
        with self._lock:
            if self._depth == 0:
                self._shut()

    def __enter__(self) -> "CandleStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _series_id(self, key: SeriesKey, create: bool,
                   units: tuple[str, str] | None = None) -> int | None:
        """The series' id; with ``create`` a new series is added (units from ``units``, else
        read from the symbol), and ``units`` given for a known one replace its own."""
        args = [key.exchange, key.symbol, key.timeframe]
        columns = "id, base, quote" if self._version >= 2 else "id, NULL, NULL"
        row = self._first(f"SELECT {columns} FROM series WHERE exchange = ? AND symbol = ? "
                          "AND timeframe = ?", args)
        if row is None and create:
            row = self._first(
                "INSERT INTO series (exchange, symbol, timeframe, tf_ms, base, quote) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [*args, key.tf_ms, *(units or units_of(key.symbol))])
        elif row is not None and create and units is not None and tuple(row[1:]) != units:
            self._con.execute("UPDATE series SET base = ?, quote = ? WHERE id = ?",
                              [*units, row[0]])
        return None if row is None else int(row[0])

    @_connected
    def upsert(self, key: SeriesKey, frame: pd.DataFrame,
               units: tuple[str, str] | None = None) -> int:
        """``write``, returning how many candles were new."""
        return self.write(key, frame, units).new

    def write(self, key: SeriesKey, frame: pd.DataFrame,
              units: tuple[str, str] | None = None) -> Written:
        """Write candles (columns CANDLE_COLUMNS, optional ``trades``, unique timestamps) in one
        transaction: how many were new, and how many replaced a stored candle with other
        values (an import over what was fetched says so). Re-runs are no-ops. ``units``:
        (base, quote) as the exchange reports them; without, a new series takes them from its
        symbol."""
        if frame.empty:
            return Written(0, 0)
        page = frame if "trades" in frame else frame.assign(trades=pd.NA)
        page = page[[*CANDLE_COLUMNS, "trades"]].astype({"trades": "Int64"})
        differs = " OR ".join(f"c.{c} IS DISTINCT FROM p.{c}"
                              for c in ("open", "high", "low", "close", "volume", "trades"))
        with self.transaction() as con:
            sid = self._series_id(key, create=True, units=units)
            con.register("page", page)
            try:
                known, changed = con.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE {differs}) FROM candles c "
                    "JOIN page p ON c.ts = p.timestamp WHERE c.series_id = ?", [sid]
                ).fetchall()[0]
                con.execute("INSERT OR REPLACE INTO candles SELECT ?, timestamp, open, high, low, "
                            "close, volume, trades FROM page", [sid])
            finally:
                con.unregister("page")
        return Written(len(page) - int(known), int(changed))

    def _known(self, key: SeriesKey) -> int:
        """The id of a series the store holds; one line naming it otherwise."""
        return self._known_many([key])[key][0]

    def _known_many(self, keys: list[SeriesKey]) -> dict[SeriesKey, tuple[int, str, str]]:
        """The id, base and quote of each series of ``keys`` in one query (hundreds of markets
        would take one query each); one line naming the first one the store does not hold."""
        units = "s.base, s.quote" if self._version >= 2 else "NULL, NULL"
        rows = self._con.execute(
            f"SELECT k.exchange, k.symbol, k.timeframe, s.id, {units} FROM series s JOIN "
            "(SELECT unnest(?::VARCHAR[]) AS exchange, unnest(?::VARCHAR[]) AS symbol, "
            "unnest(?::VARCHAR[]) AS timeframe) k USING (exchange, symbol, timeframe)",
            [[k.exchange for k in keys], [k.symbol for k in keys],
             [k.timeframe for k in keys]]).fetchall()
        found = {}
        for exchange, symbol, timeframe, sid, base, quote in rows:
            if base is None:  # a store written before units: read them from the symbol
                base, quote = units_of(symbol)
            found[SeriesKey(exchange, symbol, timeframe)] = (int(sid), base, quote)
        for key in keys:
            if key not in found:
                raise VolcastError(f"no stored candles for {key}; see `volcast data list`")
        return found

    @staticmethod
    def _span(start: int | None, end: int | None) -> tuple[int, int]:
        return (_MIN_TS if start is None else start, _MAX_TS if end is None else end)

    @_connected
    def read(self, key: SeriesKey, start: int | None = None, end: int | None = None,
             limit: int | None = None) -> pd.DataFrame:
        """Candles with start <= timestamp < end, ascending, at most ``limit`` of them (the
        first); ``trades`` only if any are known."""
        frame = self._con.execute(
            "SELECT ts AS timestamp, open, high, low, close, volume, trades FROM candles "
            "WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?",
            [self._known(key), *self._span(start, end),
             limit if limit is not None else _MAX_TS],
        ).df()
        if frame["trades"].isna().all():
            frame = frame.drop(columns="trades")
        return frame

    @_connected
    def read_many(self, keys: list[SeriesKey], start: int | None = None,
                  recent: int | None = None, end: int | None = None) -> pd.DataFrame:
        """``read`` of several series in one query, each series' candles in order and in the
        order of ``keys`` (``series``: the candle's series' position in ``keys``): with
        ``start <= open time < end``, and with ``recent`` only the candles that opened less
        than ``recent`` ms before their series' newest. Hundreds of markets read this way take
        one query, not one each (most of a batch forecast's reading, and of a total's)."""
        known = self._known_many(keys)
        ids = {known[k][0]: at for at, k in enumerate(keys)}  # a key given twice: read once
        newest = ("QUALIFY ts > max(ts) OVER (PARTITION BY series_id) - ?" if recent is not None
                  else "")
        frame = self._con.execute(
            "SELECT k.at AS series, ts AS timestamp, open, high, low, close, volume, trades "
            "FROM candles JOIN (SELECT unnest(?::BIGINT[]) AS id, unnest(?::BIGINT[]) AS at) k "
            f"ON series_id = k.id WHERE ts >= ? AND ts < ? {newest}",
            [list(ids), list(ids.values()), *self._span(start, end),
             *([recent] if newest else [])]).df()
        # ordered here, not by DuckDB: its ORDER BY of a year of 200 markets held ~180 MB more
        frame = frame.sort_values(["series", "timestamp"], ignore_index=True)
        if frame["trades"].isna().all():
            frame = frame.drop(columns="trades")
        return frame

    @_connected
    def bounds(self, key: SeriesKey) -> tuple[int, int] | None:
        """(first, last) stored open time, or None when the series holds nothing."""
        sid = self._series_id(key, create=False)
        if sid is None:
            return None
        first, last = self._first("SELECT min(ts), max(ts) FROM candles WHERE series_id = ?",
                                  [sid])
        return None if first is None else (int(first), int(last))

    @_connected
    def gaps(self, key: SeriesKey) -> pd.DataFrame:
        """Holes of one series: after and before (the neighbours' open times), how many
        candles are missing between them, and how many of those the exchange ``confirmed`` it
        has none of (``volcast.data.holes``)."""
        return holes.gaps(self._con, self._known(key), self._version >= 3)

    @_connected
    def empty_ranges(self, key: SeriesKey) -> list[holes.Range]:
        """[start, stop) stretches the exchange confirmed it has no candles for, in order."""
        sid = self._series_id(key, create=False)
        return [] if sid is None or self._version < 3 else holes.stretches(self._con, sid)

    @_connected
    def confirm_empty(self, key: SeriesKey, start: int, stop: int) -> None:
        """Record that the exchange has no candles of a series in [start, stop). A new series
        is added (a download's first page may confirm before its write has landed)."""
        with self.transaction() as con:
            holes.confirm(con, self._series_id(key, create=True), start, stop)

    @_connected
    def extent(self, key: SeriesKey, start: int | None = None, end: int | None = None
               ) -> tuple[int, int | None, int | None]:
        """(candles, first, last open time) stored with start <= open time < end."""
        rows, first, last = self._first(
            "SELECT count(*), min(ts), max(ts) FROM candles WHERE series_id = ? AND ts >= ? "
            "AND ts < ?", [self._known(key), *self._span(start, end)])
        return int(rows), first, last

    @_connected
    def extents(self, keys: list[SeriesKey], through: list[int] | None = None
                ) -> dict[SeriesKey, tuple[int, int | None, int | None]]:
        """``extent`` of each of ``keys`` in one query (hundreds of markets would take one
        each): of its candles up to ``through`` (inclusive; one open time per key) when
        given, else all of them."""
        known = self._known_many(keys)
        ids = [known[k][0] for k in keys]
        rows = self._con.execute(
            "SELECT k.id, count(c.ts), min(c.ts), max(c.ts) FROM (SELECT unnest(?::BIGINT[]) "
            "AS id, unnest(?::BIGINT[]) AS through) k LEFT JOIN candles c ON c.series_id = "
            "k.id AND c.ts <= k.through GROUP BY k.id",
            [ids, through if through is not None else [_MAX_TS] * len(keys)]).fetchall()
        found = {sid: (int(count), first, last) for sid, count, first, last in rows}
        return {key: found[known[key][0]] for key in keys}

    @_connected
    def fingerprints(self, keys: list[SeriesKey], through: list[int]
                     ) -> dict[SeriesKey, tuple[int, int, int]]:
        """What each of ``keys`` holds up to its ``through`` open time (inclusive), in one
        query: its candles' count, one hash of every candle's fields (the XOR of each row's
        hash: order-free, so the same whatever order DuckDB scans in), and how long the
        exchange confirmed empty. A candle added, deleted, moved or rewritten with another
        price or volume (an exchange's revision), or a stretch confirmed empty or forgotten,
        changes it."""
        known = self._known_many(keys)
        ids = [known[k][0] for k in keys]
        empty = ("(SELECT coalesce(sum(least(e.stop, k.through + 1) - e.start), 0) FROM "
                 "empty_ranges e WHERE e.series_id = k.id AND e.start <= k.through)"
                 if self._version >= 3 else "0")
        rows = self._con.execute(
            "SELECT k.id, count(c.ts), coalesce(bit_xor(hash(c.ts, c.open, c.high, c.low, "
            f"c.close, c.volume, c.trades)), 0), {empty} FROM (SELECT "
            "unnest(?::BIGINT[]) AS id, unnest(?::BIGINT[]) AS through) k LEFT JOIN candles c "
            "ON c.series_id = k.id AND c.ts <= k.through GROUP BY k.id, k.through",
            [ids, through]).fetchall()
        found = {sid: (int(count), int(hashed), int(gone)) for sid, count, hashed, gone in rows}
        return {key: found[known[key][0]] for key in keys}

    @_connected
    def delete(self, key: SeriesKey, start: int | None = None, end: int | None = None) -> int:
        """Delete the candles with start <= open time < end, and forget which of those open
        times the exchange confirmed empty, in one transaction; a series left without candles
        is forgotten whole. Returns how many candles were deleted."""
        sid = self._known(key)
        low, high = self._span(start, end)
        with self.transaction() as con:
            gone = con.execute("DELETE FROM candles WHERE series_id = ? AND ts >= ? AND ts < ? "
                               "RETURNING ts", [sid, low, high]).fetchall()
            holes.forget(con, sid, low, high)
            if self._first("SELECT count(*) FROM candles WHERE series_id = ?", [sid])[0] == 0:
                con.execute("DELETE FROM empty_ranges WHERE series_id = ?", [sid])
                con.execute("DELETE FROM series WHERE id = ?", [sid])
        return len(gone)

    @_connected
    def units(self, key: SeriesKey) -> tuple[str, str]:
        """(base, quote) of a stored series: volume is counted in base, prices are in quote."""
        return self.units_many([key])[key]

    @_connected
    def units_many(self, keys: list[SeriesKey]) -> dict[SeriesKey, tuple[str, str]]:
        """``units`` of each of ``keys``, in one query."""
        return {key: (base, quote) for key, (_, base, quote) in self._known_many(keys).items()}

    @_connected
    def symbols(self, exchange: str, timeframe: str) -> list[str]:
        """The stored symbols of one exchange and timeframe (without the holes' scan that
        ``series`` makes)."""
        rows = self._con.execute(
            "SELECT s.symbol FROM series s WHERE s.exchange = ? AND s.timeframe = ? AND EXISTS "
            "(SELECT 1 FROM candles c WHERE c.series_id = s.id) ORDER BY s.symbol",
            [exchange, timeframe]).fetchall()
        return [symbol for (symbol,) in rows]

    @_connected
    def series(self) -> pd.DataFrame:
        """Every stored series with its units (base: volume's unit, quote: prices'), rows,
        first, last, gaps and missing candles."""
        base, quote = ("s.base", "s.quote") if self._version >= 2 else ("NULL", "NULL")
        frame = self._con.execute(f"""
            WITH g AS ({holes.GAPS_SQL.format(where="")})
            SELECT s.exchange, s.symbol, s.timeframe, {base} AS base, {quote} AS quote,
                   count(c.ts) AS rows, min(c.ts) AS first, max(c.ts) AS last,
                   coalesce(any_value(gs.gaps), 0) AS gaps,
                   CAST(coalesce(any_value(gs.missing), 0) AS BIGINT) AS missing
            FROM series s JOIN candles c ON c.series_id = s.id
            LEFT JOIN (SELECT series_id, count(*) AS gaps, sum(missing) AS missing
                       FROM g GROUP BY series_id) gs ON gs.series_id = s.id
            GROUP BY s.id, s.exchange, s.symbol, s.timeframe, base, quote
            ORDER BY s.exchange, s.symbol, s.timeframe""").df()
        if self._version < 2:  # read-only file of schema 1: units as a migration would set them
            pairs = [units_of(symbol) for symbol in frame["symbol"]]
            frame["base"] = [b for b, _ in pairs]
            frame["quote"] = [q for _, q in pairs]
        return frame
