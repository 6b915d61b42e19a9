"""The covariates table: idempotent upserts in one transaction, reads, the listing."""

import re

import numpy as np
import pandas as pd
import pytest

from volcast.data.covariates import table
from volcast.data.covariates.table import Batch
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import parse_time
from volcast.errors import VolcastError

DAY = 86_400_000
T0 = parse_time("2024-07-01")


def rows(days, value=1.0, lag=0):
    ts = T0 + np.asarray(days, dtype=np.int64) * DAY
    return pd.DataFrame({"ts": ts, "value": value, "published_ms": ts + lag})


def test_a_rewrite_adds_nothing_and_a_changed_value_replaces_the_old(db):
    with CandleStore(db) as store:
        assert table.write(store, [Batch("vix", "", "cboe", rows(range(5)))]) == (5, 0)
        assert table.write(store, [Batch("vix", "", "cboe", rows(range(5)))]) == (0, 0)
        assert table.write(store, [Batch("vix", "", "cboe", rows([3, 4, 5, 6], 2.0))]) == (2, 2)
        stored = table.read(store, "vix")
    assert stored["ts"].tolist() == rows(range(7))["ts"].tolist()
    assert stored["value"].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_names_and_scopes_are_kept_apart(db):
    with CandleStore(db) as store:
        table.write(store, [Batch("funding_rate", "binance:BTC/USDT:USDT", "binance",
                                  rows(range(3), 0.1)),
                            Batch("funding_rate", "binance:ETH/USDT:USDT", "binance",
                                  rows(range(2), 0.2)),
                            Batch("vix", "", "cboe", rows(range(4)))])
        assert table.read(store, "funding_rate", "binance:ETH/USDT:USDT")["value"].tolist() == [
            0.2, 0.2]
        assert table.newest(store, "vix") == T0 + 3 * DAY
        assert table.newest(store, "fear_greed") is None
        listing = table.listing(store)
    assert listing[["name", "scope", "rows"]].values.tolist() == [
        ["funding_rate", "binance:BTC/USDT:USDT", 3], ["funding_rate", "binance:ETH/USDT:USDT", 2],
        ["vix", "", 4]]
    assert listing["published"].iloc[2] == T0 + 3 * DAY


def test_a_failing_batch_leaves_the_store_as_it_was(db):
    with CandleStore(db) as store:
        table.write(store, [Batch("vix", "", "cboe", rows(range(3)))])
        broken = rows(range(2)).assign(value=["x", "y"])  # DuckDB refuses to cast it
        with pytest.raises(Exception):  # noqa: B017 - any failure must roll back
            table.write(store, [Batch("vix", "", "cboe", rows(range(3, 9))),
                                Batch("fear_greed", "", "x", broken)])
        assert len(table.read(store, "vix")) == 3
        assert table.read(store, "fear_greed").empty


def test_a_store_without_covariates_reads_as_empty_read_only_too(db):
    with CandleStore(db) as store:
        store.upsert(SeriesKey("binance", "BTC/USDT", "1h"), pd.DataFrame({
            "timestamp": [T0], "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
            "volume": 1.0}))
    with CandleStore(db, read_only=True) as store:
        assert table.listing(store).empty
        assert table.read(store, "vix").empty
        assert table.newest(store, "vix") is None


@pytest.mark.parametrize(("change", "why"), [
    ({"ts": [T0, T0 + 0.5]}, "row 2: time is not a whole number"),
    ({"ts": [T0, parse_time("1899-12-31")]}, "row 2: dated before 1900"),
    ({"ts": [T0, parse_time("2100-01-01")]}, "row 2: dated after now"),
    ({"value": [1.0, np.inf]}, "row 2: value is not a finite number"),
    ({"value": [1e19, 1.0]}, "row 1: value is not a finite number"),
    ({"published_ms": [T0 - 1, T0 + DAY]}, "row 1: published before"),
    ({"ts": [T0, T0]}, "row 2: the same time twice"),
])
def test_impossible_rows_are_refused_naming_the_row(change, why):
    frame = rows([0, 1]).astype({"ts": float}).assign(**change)
    with pytest.raises(VolcastError, match=f"^{re.escape(f'file.csv: {why}')}"):
        table.checked(frame, "file.csv")
