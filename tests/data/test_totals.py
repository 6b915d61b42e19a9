"""An exchange's total: the summed quote volume of its stored markets, stored as ``*/QUOTE``,
rebuilt idempotently, with holes where a market's candles are unfetched and never short of a
market that has not caught up yet."""

import numpy as np
import pandas as pd
import pytest

from volcast.data import totals
from volcast.data.covariates import covariate_columns
from volcast.data.frames import quote_volume, to_long
from volcast.data.store import CandleStore, SeriesKey, check_symbol, units_of
from volcast.errors import VolcastError

H = 3_600_000
DAY = 24 * H
TOTAL = SeriesKey("binance", "*/USDT", "1h")


def candles(hours, price=2.0, volume=3.0, trades=None):
    """Hourly candles at ``hours`` (ints): high = price + 1, low = price - 1, close = price, so
    the typical price is ``price`` and the quote volume ``volume * price``."""
    hours = list(hours)
    frame = pd.DataFrame({"timestamp": [h * H for h in hours], "open": price,
                          "high": price + 1.0, "low": price - 1.0, "close": price,
                          "volume": volume})
    return frame if trades is None else frame.assign(trades=trades)


def put(store, symbol, frame, quote="USDT"):
    store.upsert(SeriesKey("binance", symbol, "1h"), frame, units=(symbol.split("/")[0], quote))


def total_of(store):
    return store.read(TOTAL).set_index("timestamp")


@pytest.fixture
def store(db):
    with CandleStore(db) as opened:
        yield opened


def test_the_total_is_the_markets_quote_volume_summed_and_a_rebuild_writes_nothing(store):
    rng = np.random.default_rng(1)
    btc = candles(range(48), price=60_000.0).assign(volume=rng.uniform(1, 9, 48))
    eth = candles(range(48), price=3_000.0).assign(volume=rng.uniform(10, 90, 48))
    put(store, "BTC/USDT", btc)
    put(store, "ETH/USDT", eth)
    put(store, "BTC/EUR", candles(range(48), volume=1e9), quote="EUR")  # another quote
    put(store, "BTC/USDT:USDT", candles(range(48), volume=1e9))  # a perpetual
    built = totals.build(store, "binance", "usdt", "1h")
    assert built.markets == ("BTC/USDT", "ETH/USDT")
    assert (built.candles, built.written, built.removed, built.holes) == (48, 48, 0, 0)
    total = total_of(store)
    expected = (quote_volume(to_long(btc, "b"))["y"].to_numpy()
                + quote_volume(to_long(eth, "e"))["y"].to_numpy())
    np.testing.assert_allclose(total["volume"].to_numpy(), expected, rtol=1e-12)
    assert (total[["open", "high", "low", "close"]] == 1.0).all().all()
    assert store.units(TOTAL) == ("USDT", "USDT")  # its volume is counted in USDT
    again = totals.build(store, "binance", "USDT", "1h")
    assert (again.written, again.removed, again.candles) == (0, 0, 48)
    assert "sum of 2 markets" in again.describe() and "0 written" in again.describe()
    # a stored total is never counted in the next one, nor in the market_volume covariate
    assert totals.markets(store, "binance", "1h", "USDT") == ["BTC/USDT", "ETH/USDT"]
    long = to_long(btc, "binance:BTC/USDT:1h")
    others = covariate_columns(store, ["market_volume"], long)["market_volume"].to_numpy()
    np.testing.assert_allclose(others, quote_volume(to_long(eth, "e"))["y"].to_numpy()
                               + 2.0 * 1e9 * 2, rtol=1e-12)  # ETH + BTC/EUR + the perpetual


def test_an_unfetched_hole_leaves_the_total_without_that_candle_until_it_is_filled(store):
    put(store, "BTC/USDT", candles([h for h in range(10) if h != 4]))
    put(store, "ETH/USDT", candles(range(10)))
    built = totals.build(store, "binance", "USDT", "1h")
    assert 4 * H not in total_of(store).index
    assert (built.candles, built.holes) == (9, 1)
    put(store, "BTC/USDT", candles([4]))  # `volcast data repair` filled it
    rebuilt = totals.build(store, "binance", "USDT", "1h")
    assert (rebuilt.written, rebuilt.removed, rebuilt.holes) == (1, 0, 0)
    assert total_of(store).loc[4 * H, "volume"] == 2 * 3.0 * 2.0
    store.delete(SeriesKey("binance", "ETH/USDT", "1h"), 6 * H, 8 * H)  # a hole appears
    shrunk = totals.build(store, "binance", "USDT", "1h")
    assert (shrunk.removed, shrunk.written) == (2, 0)
    assert {6 * H, 7 * H}.isdisjoint(total_of(store).index)


def test_a_candle_the_exchange_confirmed_empty_counts_as_no_volume(store):
    put(store, "BTC/USDT", candles([h for h in range(10) if h != 4]))
    put(store, "ETH/USDT", candles(range(10)))
    store.confirm_empty(SeriesKey("binance", "BTC/USDT", "1h"), 4 * H, 5 * H)
    totals.build(store, "binance", "USDT", "1h")
    assert total_of(store).loc[4 * H, "volume"] == 3.0 * 2.0  # ETH's alone


def test_a_lagging_market_holds_the_total_back_and_an_ended_one_stops_counting(store):
    put(store, "BTC/USDT", candles(range(100)))
    put(store, "ETH/USDT", candles(range(95)))  # not fetched up to now yet
    put(store, "OLD/USDT", candles(range(50)))  # delisted: no candle for over a day
    built = totals.build(store, "binance", "USDT", "1h")
    assert built.ended == ("OLD/USDT",)
    assert built.last == 94 * H  # never short of ETH's volume
    total = total_of(store)["volume"]
    assert total.loc[49 * H] == 3 * 6.0 and total.loc[50 * H] == 2 * 6.0
    put(store, "ETH/USDT", candles(range(95, 100)))
    assert totals.build(store, "binance", "USDT", "1h").last == 99 * H


def same_as_a_whole_build(store, tmp_path, timeframe="1h"):
    """The stored total equals the one a whole build makes from the same markets."""
    total = SeriesKey("binance", "*/USDT", timeframe)
    with CandleStore(tmp_path / f"whole-{len(list(tmp_path.iterdir()))}.duckdb") as whole:
        for symbol in totals.markets(store, "binance", timeframe, "USDT"):
            key = SeriesKey("binance", symbol, timeframe)
            whole.upsert(key, store.read(key), units=store.units(key))
            for low, high in store.empty_ranges(key):
                whole.confirm_empty(key, low, high)
        totals.build(whole, "binance", "USDT", timeframe)
        pd.testing.assert_frame_equal(store.read(total), whole.read(total))


def test_a_build_from_what_changed_stores_what_a_whole_build_stores(store, tmp_path):
    """`volcast serve` rebuilds at each close from where the markets changed since the last
    build (``known``): the same total as a whole build, the older candles not read again;
    whole when a market joined, or an older candle of one changed (a hole filled, a candle
    revised in place), or one that had ended resumed."""
    put(store, "BTC/USDT", candles(range(60)))
    put(store, "ETH/USDT", candles([h for h in range(60) if h not in (40, 50)]))
    put(store, "OLD/USDT", candles(range(20)))  # ended: no candle for over a day
    first = totals.build(store, "binance", "USDT", "1h")
    assert (first.candles, first.holes, first.ended) == (58, 2, ("OLD/USDT",))
    put(store, "BTC/USDT", candles(range(60, 72), volume=5.0))  # the next closes
    put(store, "ETH/USDT", candles(range(60, 72), volume=7.0))
    recent = totals.build(store, "binance", "USDT", "1h", first.settled)
    assert (recent.written, recent.removed, recent.candles, recent.holes) == (12, 0, 70, 2)
    same_as_a_whole_build(store, tmp_path)
    put(store, "ETH/USDT", candles([50], volume=7.0))  # a backfill fills an old hole
    filled = totals.build(store, "binance", "USDT", "1h", recent.settled)
    assert (filled.written, filled.holes) == (1, 1)
    put(store, "BTC/USDT", candles([10], volume=4.0))  # the exchange revises an old candle
    revised = totals.build(store, "binance", "USDT", "1h", filled.settled)
    assert revised.written == 1 and total_of(store).loc[10 * H, "volume"] == 4 * 2.0 + 2 * 6.0
    assert totals.build(store, "binance", "USDT", "1h", revised.settled).written == 0
    same_as_a_whole_build(store, tmp_path)
    store.confirm_empty(SeriesKey("binance", "ETH/USDT", "1h"), 40 * H, 41 * H)  # no candle
    confirmed = totals.build(store, "binance", "USDT", "1h", revised.settled)
    assert (confirmed.written, confirmed.holes) == (1, 0)
    assert total_of(store).loc[40 * H, "volume"] == 6.0  # BTC's alone
    put(store, "OLD/USDT", candles(range(20, 72)))  # the ended market resumes, backfilled
    resumed = totals.build(store, "binance", "USDT", "1h", confirmed.settled)
    assert resumed.ended == () and resumed.written == 52
    same_as_a_whole_build(store, tmp_path)
    put(store, "SOL/USDT", candles(range(72)))  # a market joins with its whole past
    joined = totals.build(store, "binance", "USDT", "1h", resumed.settled)
    assert joined.written == 72 and total_of(store).loc[1 * H, "volume"] == 4 * 6.0
    assert totals.build(store, "binance", "USDT", "1h", joined.settled).written == 0


def test_a_total_whose_earliest_market_left_starts_with_the_others(store):
    put(store, "ETH/USDT", candles(range(48)))
    put(store, "BTC/USDT", candles(range(10, 48)))
    put(store, "SOL/USDT", candles(range(20, 48)))
    totals.build(store, "binance", "USDT", "1h")
    store.delete(SeriesKey("binance", "ETH/USDT", "1h"))
    rebuilt = totals.build(store, "binance", "USDT", "1h")
    assert (rebuilt.first, rebuilt.removed) == (10 * H, 10)
    assert total_of(store).index[0] == 10 * H


def test_a_build_from_what_changed_keeps_to_the_weekly_grid(store, tmp_path):
    """Weekly candles open on Mondays, not on multiples of a week since 1970: the rebuilt
    part lies on the markets' grid (off it, every market looked empty and the total's newest
    candles were deleted at each close)."""
    week, monday = 7 * DAY, 4 * DAY  # 1970-01-05 was a Monday
    weekly = SeriesKey("binance", "*/USDT", "1w")

    def put_weeks(symbol, weeks):
        frame = candles(weeks).assign(timestamp=[monday + w * week for w in weeks])
        store.upsert(SeriesKey("binance", symbol, "1w"), frame, units=(symbol[:3], "USDT"))

    for symbol in ("BTC/USDT", "ETH/USDT"):
        put_weeks(symbol, range(2800, 2810))
    built = totals.build(store, "binance", "USDT", "1w")
    for closes in range(3):
        for symbol in ("BTC/USDT", "ETH/USDT"):
            put_weeks(symbol, [2810 + closes])
        built = totals.build(store, "binance", "USDT", "1w", built.settled)
        assert (built.written, built.removed) == (1, 0)
        assert store.bounds(weekly)[1] == monday + (2810 + closes) * week
    same_as_a_whole_build(store, tmp_path, "1w")


def test_trades_are_summed_where_every_market_with_a_candle_reports_them(store):
    put(store, "BTC/USDT", candles(range(4), trades=[1, 2, None, 4]))
    put(store, "ETH/USDT", candles(range(4), trades=[10, 20, 30, 40]))
    totals.build(store, "binance", "USDT", "1h")
    trades = total_of(store)["trades"]
    assert trades.iloc[[0, 1, 3]].tolist() == [11, 22, 44] and pd.isna(trades.iloc[2])


def test_the_hierarchy_holds_the_current_markets_and_their_total_on_one_span(store):
    put(store, "BTC/USDT", candles(range(100), price=10.0))
    put(store, "ETH/USDT", candles(range(20, 100)))  # listed later
    put(store, "OLD/USDT", candles(range(50)))  # ended
    long, key, keys = totals.hierarchy(store, "binance", "USDT", "1h")
    assert key == TOTAL and [k.symbol for k in keys] == ["BTC/USDT", "ETH/USDT"]
    spans = long.groupby("unique_id")["ds"].agg(["min", "max", "size"])
    assert (spans["min"] == 20 * H).all() and (spans["max"] == 99 * H).all()
    by = long.pivot(index="ds", columns="unique_id", values="y")
    np.testing.assert_allclose(by[TOTAL.unique_id],
                               by[keys[0].unique_id] + by[keys[1].unique_id])  # OLD left out


def test_fewer_than_two_markets_is_one_line(store):
    put(store, "BTC/USDT", candles(range(10)))
    with pytest.raises(VolcastError, match=r"1 stored spot market\(s\) quoted in USDT "
                                           r"\(BTC/USDT\); a total needs at least 2"):
        totals.build(store, "binance", "USDT", "1h")


@pytest.mark.parametrize("symbol", ["*/USDT:USDT", "*BTC/USDT", "*/", "**/USDT"])
def test_a_total_is_spelled_star_slash_quote(symbol):
    assert check_symbol("*/USDT") == "*/USDT"
    assert units_of("*/USDT") == ("USDT", "USDT")
    with pytest.raises(VolcastError, match="must be written as ccxt does"):
        check_symbol(symbol)


def test_a_rebuild_from_what_changed_writes_nothing_when_nothing_changed(store):
    """An incremental build sums a few rows, a whole build all of them: each row must come out
    the same to the last bit (pandas' row sums depend on the frame's layout), or serve would
    rewrite the total's newest candle at every close."""
    rng = np.random.default_rng(3)
    for m in range(40):
        put(store, f"M{m}/USDT", candles(range(200)).assign(volume=rng.uniform(1, 1e5, 200)))
    whole = totals.build(store, "binance", "USDT", "1h")
    assert totals.build(store, "binance", "USDT", "1h", whole.settled).written == 0
    assert totals.build(store, "binance", "USDT", "1h").written == 0
