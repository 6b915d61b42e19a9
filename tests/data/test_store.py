import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from volcast.data.store import CandleStore, SeriesKey, check_symbol
from volcast.errors import VolcastError

KEY = SeriesKey("binance", "BTC/USDT", "1h")
H = 3_600_000


def candles(hours, volume=1.0):
    return pd.DataFrame({"timestamp": [h * H for h in hours], "open": 1.0, "high": 2.0,
                         "low": 0.5, "close": 1.5, "volume": volume})


def test_upsert_counts_new_candles_and_rerun_is_a_noop(db):
    with CandleStore(db) as store:
        assert store.upsert(KEY, candles(range(10))) == 10
        assert store.upsert(KEY, candles(range(10))) == 0
        assert store.upsert(KEY, candles(range(5, 15))) == 5
        assert len(store.read(KEY)) == 15


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


def test_gap_ledger_and_series_listing(db):
    with CandleStore(db) as store:
        store.upsert(KEY, candles([0, 1, 2, 5, 6, 10]))
        gaps = store.gaps(KEY)
        assert gaps.to_dict("records") == [
            {"after": 2 * H, "before": 5 * H, "missing": 2},
            {"after": 6 * H, "before": 10 * H, "missing": 3}]
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
        with pytest.raises(VolcastError, match="in use by another process"):
            CandleStore(db)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC-USDT", "BTC/", "/USDT", "BTC USDT"])
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
