import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from volcast.data import store as store_module
from volcast.data.store import CandleStore, SeriesKey, check_symbol, units_of
from volcast.errors import VolcastError

KEY = SeriesKey("binance", "BTC/USDT", "1h")
PERP = SeriesKey("binance", "BTC/USDT:USDT", "1h")
H = 3_600_000
V1 = Path(__file__).parent / "fixtures" / "store-v1.duckdb.gz"
"""A store written by volcast's schema 1 (before units): binance BTC/USDT 1h (hours 0, 1, 2, 5),
binance BTC/USDT:USDT 1h (0, 1) and kraken ETH/USD 4h (hours 0, 4, 8, trades 1, 2, 3), each
candle open 1, high 2, low 0.5, close 1.5, volume 1; gzipped."""


def candles(hours, volume=1.0):
    return pd.DataFrame({"timestamp": [h * H for h in hours], "open": 1.0, "high": 2.0,
                         "low": 0.5, "close": 1.5, "volume": volume})


def test_upsert_counts_new_candles_and_rerun_is_a_noop(db):
    with CandleStore(db) as store:
        assert store.upsert(KEY, candles(range(10))) == 10
        assert store.upsert(KEY, candles(range(10))) == 0
        assert store.upsert(KEY, candles(range(5, 15))) == 5
        assert len(store.read(KEY)) == 15


def test_a_write_counts_the_stored_candles_it_replaced_with_other_values(db):
    """An import over fetched candles says how many it changed, never in silence."""
    with CandleStore(db) as store:
        assert store.write(KEY, candles(range(3))) == (3, 0)
        assert store.write(KEY, candles(range(3))) == (0, 0)
        assert store.write(KEY, candles([1, 2, 3], volume=9.0)) == (1, 2)
        assert store.write(KEY, candles([0]).assign(trades=7)) == (0, 1)  # a count learnt


def test_upsert_replaces_a_candle_rather_than_duplicating_it(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles(range(3), volume=1.0))
        store.upsert(KEY, candles([1], volume=9.0))
        assert store.read(KEY)["volume"].tolist() == [1.0, 9.0, 1.0]


def test_series_are_kept_apart_spot_and_futures_included(db):
    perp = SeriesKey("binance", "BTC/USDT:USDT", "1h")
    with CandleStore(db) as store:
        store.upsert(KEY, candles(range(3)))
        store.upsert(perp, candles(range(5)))
        assert len(store.read(KEY)) == 3
        assert len(store.read(perp)) == 5


def test_read_range_is_half_open_and_sorted(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles([5, 1, 3, 2, 4]))
        frame = store.read(KEY, 2 * H, 4 * H)
        assert frame["timestamp"].tolist() == [2 * H, 3 * H]
        assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]


def test_read_many_is_each_series_read_in_the_order_asked(db):
    """One query for many series gives what reading each gives: in the keys' order, from
    ``start``, with ``recent`` the newest of each (by its own newest candle)."""
    eth = SeriesKey("binance", "ETH/USDT", "1h")
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0, 1, 2, 5, 6, 10]))
        store.upsert(eth, candles(range(4), volume=2.0))
        many = store.read_many([eth, KEY])
        assert many["series"].tolist() == [0] * 4 + [1] * 6
        pd.testing.assert_frame_equal(
            many.drop(columns="series"),
            pd.concat([store.read(eth), store.read(KEY)], ignore_index=True))
        newest = store.read_many([KEY, eth], start=H, recent=5 * H)
        assert newest["timestamp"].tolist() == [6 * H, 10 * H, H, 2 * H, 3 * H]
        ended = store.read_many([KEY, eth], start=H, end=6 * H)  # start <= open time < end
        assert ended["timestamp"].tolist() == [H, 2 * H, 5 * H, H, 2 * H, 3 * H]
        twice = store.read_many([KEY, eth, KEY])  # each candle once, at its last place
        assert twice["series"].tolist() == [1] * 4 + [2] * 6
        with pytest.raises(VolcastError, match="no stored candles for binance SOL/USDT 1h"):
            store.read_many([KEY, SeriesKey("binance", "SOL/USDT", "1h")])


def test_gap_ledger_and_series_listing(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0, 1, 2, 5, 6, 10]))
        gaps = store.gaps(KEY)
        assert gaps.to_dict("records") == [
            {"after": 2 * H, "before": 5 * H, "missing": 2, "confirmed": 0},
            {"after": 6 * H, "before": 10 * H, "missing": 3, "confirmed": 0}]
        listing = store.series().iloc[0]
        assert (listing["rows"], listing["first"], listing["last"]) == (6, 0, 10 * H)
        assert (listing["gaps"], listing["missing"]) == (2, 5)
        assert store.bounds(KEY) == (0, 10 * H)


def test_trades_column_survives_when_known(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles(range(2)).assign(trades=[7, 8]))
        assert store.read(KEY)["trades"].tolist() == [7, 8]


def test_unknown_series_is_a_clear_error(db):
    with CandleStore(db) as store, pytest.raises(VolcastError, match="no stored candles"):
        store.read(KEY)


def test_a_duckdb_file_of_another_program_is_refused_untouched(db):
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.close()
    before = db.read_bytes()
    with pytest.raises(VolcastError, match="not a volcast one"):
        CandleStore(db)
    assert db.read_bytes() == before


def test_a_file_that_is_not_duckdb_is_refused_untouched(db):
    db.write_text("timestamp,open\n1,2\n")
    with pytest.raises(VolcastError, match="is not a DuckDB database"):
        CandleStore(db)
    assert db.read_text() == "timestamp,open\n1,2\n"


def damaged_copy(db: Path, at: float, cut: bool) -> bytes:
    """A store of a year of candles, then cut short or with 64 KiB overwritten at ``at`` of
    its length (as a disk fault or a copy taken mid-write leaves one)."""
    with CandleStore(db) as store:
        store.upsert(KEY, candles(range(8760)))
    data = bytearray(db.read_bytes())
    spot = int(len(data) * at) // 4096 * 4096
    if cut:
        del data[spot:]
    else:
        data[spot:spot + 65536] = b" " * 65536
    db.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize(("at", "cut"), [(0.9, True), (0.5, False), (0.004, False)])
def test_a_damaged_database_is_a_clear_error_at_once_and_left_as_it_is(db, at, cut):
    """DuckDB finds the damage on opening or at a later query; either way one line, never
    taken for another process' lock (its "block" once read as "lock": a 30 s wait)."""
    before = damaged_copy(db, at, cut)
    with (pytest.raises(VolcastError, match=r"is damaged .*restore it from a backup"),
          CandleStore(db, wait_s=60) as store):
        store.read(KEY)
    assert db.read_bytes() == before


def test_a_file_it_may_not_write_or_read_is_said_so():
    refused = duckdb.IOException('Cannot open file "s.duckdb": Operation not permitted')
    said = {read_only: str(store_module._one_line(Path("s.duckdb"), refused, read_only))
            for read_only in (False, True)}
    assert "cannot be opened for writing" in said[False]
    assert "cannot be opened (" in said[True] and "writable" not in said[True]


def test_a_newer_schema_is_refused(db):
    CandleStore(db).close()
    con = duckdb.connect(str(db))
    con.execute("UPDATE volcast_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(VolcastError, match="newer volcast"):
        CandleStore(db)


def test_a_database_locked_by_another_process_is_a_clear_error(db):
    CandleStore(db).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys
        con = duckdb.connect({str(db)!r})
        print("locked", flush=True)
        sys.stdin.read()  # holds the lock until killed, however long the test takes
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(VolcastError, match=r"still in use by another process after 0\.3 s"):
            CandleStore(db, wait_s=0.3)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC-USDT", "BTC/", "/USDT", "BTC USDT",
                                    "BTC/USDT\n"])  # `$` let a trailing newline through
def test_symbols_must_be_ccxt_unified(symbol):
    with pytest.raises(VolcastError, match="must be written as ccxt does"):
        check_symbol(symbol)


def test_failed_write_rolls_back_the_whole_page(db):
    bad = candles([0, 1, 2])
    bad.loc[2, "volume"] = None  # NOT NULL violation on the last row
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0]))
        with pytest.raises(duckdb.Error):
            store.upsert(KEY, bad)
        assert store.read(KEY)["timestamp"].tolist() == [0]


def test_each_series_records_its_units(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles(range(2)), units=("BTC", "USDT"))
        store.upsert(PERP, candles(range(2)))  # no exchange said: read from the symbol
        assert store.units(KEY) == ("BTC", "USDT")
        assert store.units(PERP) == ("BTC", "USDT")
        store.upsert(KEY, candles([2]), units=("XBT", "USDT"))  # the exchange's word wins
        assert store.units(KEY) == ("XBT", "USDT")
        listing = store.series()
        assert list(listing.columns) == ["exchange", "symbol", "timeframe", "base", "quote",
                                         "rows", "first", "last", "gaps", "missing"]
        assert listing[["symbol", "base", "quote", "rows"]].values.tolist() == [
            ["BTC/USDT", "XBT", "USDT", 3], ["BTC/USDT:USDT", "BTC", "USDT", 2]]
        with pytest.raises(VolcastError, match="no stored candles for binance ETH/USDT 1h"):
            store.units(SeriesKey("binance", "ETH/USDT", "1h"))
        # many series in one query, in any order, repeats allowed; one unknown: one line
        assert store.units_many([PERP, KEY, PERP]) == {KEY: ("XBT", "USDT"),
                                                       PERP: ("BTC", "USDT")}
        assert store.units_many([]) == {}
        with pytest.raises(VolcastError, match="no stored candles for binance ETH/USDT 1h"):
            store.units_many([KEY, SeriesKey("binance", "ETH/USDT", "1h")])


@pytest.mark.parametrize(("symbol", "units"), [
    ("BTC/USDT", ("BTC", "USDT")), ("BTC/USDT:USDT", ("BTC", "USDT")),
    ("BTC/USD:BTC", ("BTC", "USD")), ("ETH/USDT:USDT-240628", ("ETH", "USDT")),
    ("1000PEPE/USDC", ("1000PEPE", "USDC"))])
def test_units_of_a_symbol(symbol, units):
    assert units_of(check_symbol(symbol)) == units


def unpacked(fixture: Path, tmp_path: Path) -> Path:
    """A copy of a gzipped store fixture to open (and migrate) in a test."""
    path = tmp_path / fixture.name.removesuffix(".gz")
    path.write_bytes(gzip.decompress(fixture.read_bytes()))
    return path


@pytest.fixture
def v1(tmp_path):
    return unpacked(V1, tmp_path)


def schema(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        version = con.execute("SELECT value FROM volcast_meta").fetchall()[0][0]
        columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'series'").fetchall()]
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}
    finally:
        con.close()
    return version, columns, "empty_ranges" in tables


def test_a_schema_1_store_is_migrated_in_place_when_opened_for_writing(v1):
    with CandleStore(v1, read_only=True) as store:  # read-only: read as if migrated, untouched
        before = {key: store.read(key) for key in
                  (KEY, PERP, SeriesKey("kraken", "ETH/USD", "4h"))}
        listing = store.series()
        assert store.units(PERP) == ("BTC", "USDT")
    assert schema(v1) == ("1", ["id", "exchange", "symbol", "timeframe", "tf_ms"], False)
    with CandleStore(v1) as store:
        assert store.series().equals(listing)
        assert all(store.read(key).equals(frame) for key, frame in before.items())
        assert store.read(SeriesKey("kraken", "ETH/USD", "4h"))["trades"].tolist() == [1, 2, 3]
        assert store.units(SeriesKey("kraken", "ETH/USD", "4h")) == ("ETH", "USD")
        assert store.upsert(KEY, candles([3, 4])) == 2
    assert schema(v1) == ("3", ["id", "exchange", "symbol", "timeframe", "tf_ms", "base",
                                "quote"], True)
    assert listing[["symbol", "base", "quote", "rows", "gaps"]].values.tolist() == [
        ["BTC/USDT", "BTC", "USDT", 4, 1], ["BTC/USDT:USDT", "BTC", "USDT", 2, 0],
        ["ETH/USD", "ETH", "USD", 3, 0]]


def test_a_failed_migration_leaves_the_store_as_it_was(v1, monkeypatch):
    calls = []

    def failing(symbol):
        calls.append(symbol)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return units_of(symbol)

    monkeypatch.setattr(store_module, "units_of", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        CandleStore(v1)
    assert schema(v1) == ("1", ["id", "exchange", "symbol", "timeframe", "tf_ms"], False)
    monkeypatch.undo()
    with CandleStore(v1) as store:
        assert store.units(KEY) == ("BTC", "USDT")


V2 = Path(__file__).parent / "fixtures" / "store-v2.duckdb.gz"
"""A store written by volcast's schema 2 (before confirmed-empty stretches): binance BTC/USDT 1h
at 2024-01-01 hours 0, 1, 2, 5 (a hole of 2) and kraken BTC/USD 1h hours 0, 1; gzipped."""
T0 = 1_704_067_200_000


@pytest.fixture
def v2(tmp_path):
    return unpacked(V2, tmp_path)


def test_a_schema_2_store_gains_confirmed_empty_stretches_in_place(v2):
    with CandleStore(v2, read_only=True) as store:  # read as if migrated, untouched
        assert store.empty_ranges(KEY) == []
        assert store.gaps(KEY)[["missing", "confirmed"]].values.tolist() == [[2, 0]]
        before = store.read(KEY)
    assert schema(v2)[0] == "2" and not schema(v2)[2]
    with CandleStore(v2) as store:
        assert store.read(KEY).equals(before)
        store.confirm_empty(KEY, T0 + 3 * H, T0 + 5 * H)
        assert store.gaps(KEY)[["missing", "confirmed"]].values.tolist() == [[2, 2]]
        assert store.units(SeriesKey("kraken", "BTC/USD", "1h")) == ("BTC", "USD")
    assert schema(v2) == ("3", ["id", "exchange", "symbol", "timeframe", "tf_ms", "base",
                                "quote"], True)


def test_a_failed_migration_to_schema_3_leaves_the_store_as_it_was(v2, monkeypatch):
    from volcast.data import holes

    monkeypatch.setattr(holes, "EMPTY_RANGES_DDL", "CREATE TABLE empty_ranges (oops")
    with pytest.raises(duckdb.Error):
        CandleStore(v2)
    assert schema(v2) == ("2", ["id", "exchange", "symbol", "timeframe", "tf_ms", "base",
                                "quote"], False)


def test_confirmed_stretches_merge_and_count_only_the_holes_they_cover(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0, 1, 5, 6, 20]))  # holes: 2-4 (3), 7-19 (13)
        store.confirm_empty(KEY, 2 * H, 3 * H)
        store.confirm_empty(KEY, 3 * H + H // 2, 5 * H)  # off the grid: covers hour 4 only
        store.confirm_empty(KEY, 3 * H, 3 * H + H // 2)  # touches both: one stretch
        store.confirm_empty(KEY, 10 * H, 12 * H)
        store.confirm_empty(KEY, 11 * H, 13 * H)
        assert store.empty_ranges(KEY) == [(2 * H, 5 * H), (10 * H, 13 * H)]
        assert store.gaps(KEY)[["missing", "confirmed"]].values.tolist() == [[3, 3], [13, 3]]


def test_delete_removes_candles_and_what_was_confirmed_in_the_range_only(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0, 1, 5, 6, 20]))
        store.upsert(PERP, candles([0, 1]))
        store.confirm_empty(KEY, 2 * H, 5 * H)
        store.confirm_empty(KEY, 7 * H, 20 * H)
        assert store.extent(KEY, 5 * H, 10 * H) == (2, 5 * H, 6 * H)
        assert store.delete(KEY, 4 * H, 10 * H) == 2
        assert store.read(KEY)["timestamp"].tolist() == [0, H, 20 * H]
        assert store.empty_ranges(KEY) == [(2 * H, 4 * H), (10 * H, 20 * H)]
        assert store.extent(KEY, 4 * H, 10 * H) == (0, None, None)
        assert store.delete(KEY) == 3  # the whole series: forgotten, the others kept
        assert store.bounds(KEY) is None and store.empty_ranges(KEY) == []
        assert store.series()["symbol"].tolist() == ["BTC/USDT:USDT"]
        with pytest.raises(VolcastError, match="no stored candles for binance BTC/USDT 1h"):
            store.delete(KEY)


def test_the_extents_of_many_series_come_in_one_call_each_up_to_its_own_time(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0, 1, 2, 5]))
        store.upsert(PERP, candles([3, 4]))
        assert store.extents([KEY, PERP]) == {KEY: (4, 0, 5 * H), PERP: (2, 3 * H, 4 * H)}
        assert store.extents([KEY, PERP], [2 * H, 2 * H]) == {KEY: (3, 0, 2 * H),
                                                             PERP: (0, None, None)}
        assert store.extents([KEY], [5 * H]) == {KEY: store.extent(KEY)}
