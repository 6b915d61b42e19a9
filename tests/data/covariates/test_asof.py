"""The as-of join models read: values as of each candle's close, never later ones."""

import re

import numpy as np
import pandas as pd
import pytest

from volcast.data.covariates import covariate_columns, publication, table
from volcast.data.covariates.asof import as_of
from volcast.data.covariates.table import Batch
from volcast.data.frames import to_long
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import parse_time
from volcast.errors import VolcastError

H, DAY = 3_600_000, 86_400_000
T0 = parse_time("2024-07-01")  # a Monday
BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
PERP = "binance:BTC/USDT:USDT"


def candles(hours, volume=1.0, price=1.0):
    return pd.DataFrame({"timestamp": T0 + np.asarray(hours, dtype=np.int64) * H, "open": price,
                         "high": price, "low": price, "close": price, "volume": volume})


def series(ts, values, published):
    return pd.DataFrame({"ts": np.asarray(ts, dtype=np.int64), "value": values,
                         "published_ms": np.asarray(published, dtype=np.int64)})


@pytest.fixture
def store(db):
    with CandleStore(db) as opened:
        opened.upsert(BTC, candles(range(24 * 5), volume=2.0, price=10.0))
        opened.upsert(ETH, candles(range(24 * 5), volume=3.0, price=100.0))
        days = T0 + np.arange(5) * DAY
        table.write(opened, [
            Batch("fear_greed", "", "test", series(days, [10, 20, 30, 40, 50],
                                                   publication.fear_greed(days))),
            Batch("vix", "", "test", series(days, [11, 12, 13, 14, 15], publication.vix(days))),
            Batch("funding_rate", PERP, "test", series(T0 + np.arange(15) * 8 * H,
                                                       np.arange(15) / 100,
                                                       T0 + np.arange(15) * 8 * H))])
        yield opened


def long_of(store, *keys):
    return pd.concat([to_long(store.read(k), k.unique_id) for k in keys], ignore_index=True)


def value_at(frame, uid, when, column):
    return frame.loc[(frame["unique_id"] == uid) & (frame["ds"] == parse_time(when)),
                     column].item()


def test_each_value_is_the_newest_public_at_the_candles_close(store):
    out = covariate_columns(store, ["fear_greed", "vix", "funding_rate"], long_of(store, BTC))
    uid = BTC.unique_id
    # the candle 23:00 of July 1 closes at July 2 00:00, when July 2's index is published
    assert value_at(out, uid, "2024-07-01T22:00Z", "fear_greed") == 10
    assert value_at(out, uid, "2024-07-01T23:00Z", "fear_greed") == 20
    # VIX of July 1 (a summer day) is public at 20:15 UTC: the candle closing at 20:00 has
    # none yet, the one closing at 21:00 has it
    assert np.isnan(value_at(out, uid, "2024-07-01T19:00Z", "vix"))
    assert value_at(out, uid, "2024-07-01T20:00Z", "vix") == 11
    assert value_at(out, uid, "2024-07-02T19:00Z", "vix") == 11
    # funding every 8 hours, public at its time: the candle closing at 08:00 sees the second
    assert value_at(out, uid, "2024-07-01T06:00Z", "funding_rate") == 0.0
    assert value_at(out, uid, "2024-07-01T07:00Z", "funding_rate") == 0.01
    assert out["vix"].dtype == np.float64
    pd.testing.assert_frame_equal(out.drop(columns=["fear_greed", "vix", "funding_rate"]),
                                  long_of(store, BTC))


def test_rows_keep_their_order_and_index_whatever_the_series_order(store):
    long = long_of(store, BTC, ETH).sample(frac=1.0, random_state=3)
    out = covariate_columns(store, ["fear_greed"], long)
    assert out.index.equals(long.index)
    again = covariate_columns(store, ["fear_greed"], long.sort_index())
    pd.testing.assert_series_equal(out["fear_greed"].sort_index(), again["fear_greed"])


def test_market_volume_is_the_other_pairs_quote_volume_of_each_candle(store):
    with_gap = candles([h for h in range(24 * 5) if h != 30], volume=3.0, price=100.0)
    store.delete(ETH)
    store.upsert(ETH, with_gap)
    store.upsert(SeriesKey("binance", "SOL/USDT", "4h"), candles(range(0, 24 * 5, 4)))
    out = covariate_columns(store, ["market_volume"], long_of(store, BTC, ETH))
    btc = out[out["unique_id"] == BTC.unique_id].set_index("ds")["market_volume"]
    eth = out[out["unique_id"] == ETH.unique_id].set_index("ds")["market_volume"]
    assert btc.loc[T0] == 300.0  # ETH's 3 x 100; the 4h SOL series is another timeframe
    assert np.isnan(btc.loc[T0 + 30 * H])  # no other pair has this candle
    assert (eth == 20.0).all()


def test_unknown_names_and_missing_values_say_how_to_get_them(store):
    long = long_of(store, BTC)
    cases = [
        (["sentiment"], "unknown covariate 'sentiment'; choose from fear_greed, vix"),
        (["fred:CPIAUCSL"], "FRED series 'CPIAUCSL' has no publication rule"),
        (["fred:DGS10"], "no stored 'fred:DGS10'; fetch it with `volcast covariates fetch fred "
                         "--series DGS10`"),
        (["open_interest"], "no stored 'open_interest' for binance:BTC/USDT:USDT; fetch it with "
                            "`volcast covariates fetch open_interest -e binance -s BTC/USDT -t "
                            "1h`"),
    ]
    for names, message in cases:
        with pytest.raises(VolcastError, match=f"^{re.escape(message)}"):
            covariate_columns(store, names, long)
    store.delete(ETH)
    with pytest.raises(VolcastError, match="no stored 'market_volume' for binance BTC/USDT 1h"):
        covariate_columns(store, ["market_volume"], long)


def test_a_files_series_takes_market_wide_covariates_only(store):
    long = to_long(store.read(BTC), "BTC_USDT-1h")
    out = covariate_columns(store, ["fear_greed"], long)
    assert value_at(out, "BTC_USDT-1h", "2024-07-01T23:00Z", "fear_greed") == 20
    with pytest.raises(VolcastError, match="'funding_rate' is per market and series "
                                           "'BTC_USDT-1h' is a file's"):
        covariate_columns(store, ["funding_rate"], long)


def test_a_perpetuals_series_reads_its_own_scope(store):
    perp = SeriesKey("binance", "BTC/USDT:USDT", "1h")
    store.upsert(perp, candles(range(24)))
    out = covariate_columns(store, ["funding_rate"], long_of(store, perp))
    assert out["funding_rate"].iloc[-1] == 0.03  # the last candle closes at 24:00


def test_as_of_takes_the_newest_dated_value_among_those_published():
    stored = series([100, 200, 300], [1.0, 2.0, 3.0], [150, 400, 350])
    assert as_of(stored, np.array([99, 150, 349, 350, 399, 400])).tolist()[1:] == [
        1.0, 1.0, 3.0, 3.0, 3.0]
    assert np.isnan(as_of(stored, np.array([149]))).all()


@pytest.mark.parametrize("seed", range(5))
def test_rows_up_to_an_origin_never_change_when_later_values_change(db, seed):
    """The no-look-ahead property: change every value published after an origin (and add
    new ones, dated before or after it), and no row whose candle closed by the origin moves."""
    rng = np.random.default_rng(seed)
    hours = 24 * 20
    with CandleStore(db) as store:
        store.upsert(BTC, candles(range(hours)))
        long = long_of(store, BTC)
        days = T0 - 3 * DAY + np.arange(23) * DAY
        names = {"fear_greed": publication.fear_greed, "vix": publication.vix,
                 "fred:DGS10": publication.fred("DGS10"), "fred:DTWEXBGS":
                 publication.fred("DTWEXBGS")}
        batches = [Batch(n, "", "test", series(days, rng.normal(size=len(days)), rule(days)))
                   for n, rule in names.items()]
        table.write(store, batches)
        before = covariate_columns(store, list(names), long)
        origin = T0 + int(rng.integers(24, hours - 24)) * H
        changed = []
        for batch in batches:
            later = batch.frame["published_ms"] > origin
            frame = batch.frame.assign(value=np.where(later, rng.normal(size=len(later)),
                                                      batch.frame["value"]))
            extra = series([origin - H, origin + DAY], [99.0, 98.0], [origin + 1, origin + DAY])
            changed.append(Batch(batch.name, "", "test", pd.concat([frame, extra])))
        table.write(store, changed)
        after = covariate_columns(store, list(names), long)
    closed = long["ds"] + H <= origin
    pd.testing.assert_frame_equal(after[closed], before[closed])
    assert not after[~closed].equals(before[~closed])  # the test can fail: later rows moved
