"""Alert rules: checks, each kind's reading, exchange totals, debounce, episodes, restore."""

import math

import pandas as pd
import pytest

from volcast.config import AlertRule
from volcast.errors import VolcastError
from volcast.live.alerts import (
    Evaluator,
    Outlook,
    Reading,
    Snapshot,
    check_rule,
    exceed_chance,
    measure,
    scope,
    total,
)

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
WATCHED = {"binance:BTC/USDT:1h", "binance:ETH/USDT:1h", "binance:BTC/USDT:1d",
           "kraken:BTC/USD:1h"}


def rule(**given) -> AlertRule:
    return AlertRule(**{"name": "r", "series": "binance:BTC/USDT:1h", "kind": "q90_above",
                        "threshold": 100.0, **given})


def forecast(q90s: list[float], start: int = T0 + HOUR, q10: float = 0.5,
             q50: float = 0.75) -> pd.DataFrame:
    """A forecast whose q10 and q50 are fixed fractions of each q90."""
    return pd.DataFrame({"ds": [start + i * HOUR for i in range(len(q90s))],
                         "q10": [q * q10 for q in q90s], "q50": [q * q50 for q in q90s],
                         "q90": q90s})


def snap(frame: pd.DataFrame | None = None, newest: int | None = T0, now: int = T0 + HOUR,
         volume: float | None = None, expected: float | None = None,
         failing: int | None = None) -> Snapshot:
    return Snapshot(now, HOUR, newest, {"base": Outlook(frame, volume, expected)}, failing)


def states(r: AlertRule, readings: list[Reading], evaluator: Evaluator | None = None
           ) -> list[tuple[int, str]]:
    """(reading index, state) of every event the readings cause."""
    evaluator = evaluator or Evaluator()
    found = []
    for i, reading in enumerate(readings):
        event = evaluator.observe(r, "t", reading, T0 + i)
        if event is not None:
            found.append((i, event.state))
    return found


@pytest.mark.parametrize(("given", "complaint"), [
    ({"kind": "exceed_probability", "threshold": 0.5}, "needs a volume level"),
    ({"kind": "exceed_probability", "threshold": 1.5, "level": 10}, "strictly between 0 and 1"),
    ({"level": 10.0}, "level is for exceed_probability"),
    ({"error_minutes": 5}, "error_minutes is for stale"),
    ({"threshold": 0}, "needs a threshold > 0"),
    ({"series": "binance:BTCUSDT:1h"}, "symbol 'BTCUSDT'"),
    ({"series": "binance:BTC/USDT:1mo"}, "unsupported timeframe '1mo'"),
    ({"series": "Binance"}, "must be exchange:symbol:timeframe"),
    ({"timeframe": "1d"}, "timeframe is for exchange totals"),
])
def test_a_bad_rule_is_one_line_naming_it(given, complaint):
    with pytest.raises(VolcastError, match=complaint) as caught:
        check_rule(rule(name="peak", **given))
    assert str(caught.value).startswith("alert 'peak': ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("given", "complaint"), [
    ({"series": "binance:SOL/USDT:1h"}, "not in the watch-list"),
    ({"series": "okx"}, "exchange 'okx' has no watched series"),
    ({"series": "binance"}, "watches 1d, 1h; say which with timeframe"),
    ({"series": "binance", "timeframe": "4h"}, "watches no 4h series"),
    ({"series": "binance", "timeframe": "1h"}, "would add up volumes in BTC, ETH; set unit"),
])
def test_a_rule_must_cover_watched_series(given, complaint):
    check_rule(rule(**given))  # fine on its own
    with pytest.raises(VolcastError, match=complaint):
        check_rule(rule(**given), WATCHED)


def test_scope_names_a_series_or_an_exchange_total():
    one = scope(rule(), WATCHED)
    assert (one.target, one.members, one.total) == ("binance:BTC/USDT:1h",
                                                     ("binance:BTC/USDT:1h",), False)
    both = scope(rule(series="binance", timeframe="1h", unit="quote"), WATCHED)
    assert both.target == "binance:1h" and both.total
    assert both.members == ("binance:BTC/USDT:1h", "binance:ETH/USDT:1h")
    assert scope(rule(series="kraken"), WATCHED).target == "kraken:1h"
    assert scope(rule(series="binance", timeframe="1h", kind="stale"), WATCHED).total


def test_q90_above_reads_the_max_or_the_sum_over_the_horizon():
    frame = forecast([60, 90, 80, 500])
    peak = measure(rule(horizon=3), snap(frame))
    assert peak.value == 90 and not peak.breached
    assert "highest q90 of the next 3 candles is 90" in peak.message
    summed = measure(rule(horizon=3, aggregate="sum"), snap(frame))
    assert summed.value == 230 and summed.breached
    quote = measure(rule(unit="quote"), snap(frame))
    assert quote.value is None and not quote.breached and "no forecast" in quote.message


def test_units_name_the_frames_currency():
    reading = measure(rule(), snap(forecast([150]).assign(unit="BTC")))
    assert "150 BTC" in reading.message


def test_debounce_and_resolve_after_give_one_event_per_episode():
    r = rule(debounce=2, resolve_after=2)
    high, low = snap(forecast([150])), snap(forecast([50]))
    readings = [measure(r, s) for s in
                [high, low, high, high, high, high, low, high, low, low, high, high]]
    assert states(r, readings) == [(3, "firing"), (9, "resolved"), (11, "firing")]


def test_a_resolution_links_to_its_firing():
    r = rule()
    evaluator = Evaluator()
    fired = evaluator.observe(r, "t", measure(r, snap(forecast([150]))), T0)
    resolved = evaluator.observe(r, "t", measure(r, snap(forecast([50]))), T0 + 1)
    assert fired.state == "firing" and resolved.state == "resolved"
    assert fired.episode == resolved.episode
    assert (fired.value, fired.threshold, fired.kind) == (150, 100, "q90_above")
    again = evaluator.observe(r, "t", measure(r, snap(forecast([150]))), T0 + 2)
    assert again.episode != fired.episode


def test_missing_data_neither_fires_nor_resolves():
    r = rule(debounce=2)
    high, low, none = (measure(r, snap(f)) for f in (forecast([150]), forecast([50]), None))
    assert states(r, [high, none, high, none, high, high, none, none, low]) == [
        (5, "firing"), (8, "resolved")]


def test_targets_are_followed_apart():
    r = rule()
    evaluator = Evaluator()
    high = measure(r, snap(forecast([150])))
    assert evaluator.observe(r, "a", high, T0).target == "a"
    assert evaluator.observe(r, "b", high, T0).target == "b"
    assert evaluator.observe(r, "a", high, T0 + 1) is None
    assert set(evaluator.open_targets()) == {("r", "a"), ("r", "b")}


def test_exceed_chance_matches_a_hand_computation():
    # level at q90: P = 0.1; at q50: P = 0.5, by construction of the fit
    assert exceed_chance(50, 100, 200, 200) == pytest.approx(0.1)
    assert exceed_chance(50, 100, 200, 100) == pytest.approx(0.5)
    sigma = (math.log(200) - math.log(50)) / (2 * 1.2815515655)
    z = (math.log(300) - math.log(100)) / sigma
    assert exceed_chance(50, 100, 200, 300) == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)),
                                                             rel=1e-6)
    # q10 clipped at zero: sigma from the upper half alone, so level at q90 is still 0.1
    assert exceed_chance(0, 100, 200, 200) == pytest.approx(0.1)
    assert exceed_chance(100, 100, 100, 99) == 1.0
    assert exceed_chance(0, 0, 10, 5) is None


def test_exceed_probability_combines_candles_as_independent():
    frame = forecast([200, 200, 400], q10=0.25, q50=0.5)  # q10 50, q50 100, q90 200 twice
    r = rule(kind="exceed_probability", level=200.0, threshold=0.15, horizon=2)
    reading = measure(r, snap(frame))
    assert reading.value == pytest.approx(1 - 0.9 * 0.9)
    assert reading.breached and "19.0%" in reading.message
    assert not measure(r.model_copy(update={"horizon": 1}), snap(frame)).breached


def test_above_forecast_compares_the_closed_candle_with_its_q90():
    r = rule(kind="above_forecast", threshold=2.0)
    assert measure(r, snap(volume=300, expected=100)).value == 3.0
    assert measure(r, snap(volume=300, expected=100)).breached
    assert not measure(r, snap(volume=150, expected=100)).breached
    missing = measure(r, snap(volume=300))
    assert missing.value is None and not missing.breached
    assert states(r, [measure(r, snap(volume=v, expected=100)) for v in (300, 400, 100)]) == [
        (0, "firing"), (2, "resolved")]


def test_stale_counts_candle_lengths_since_the_newest_close_and_failing_fetches():
    r = rule(kind="stale", threshold=2.0, error_minutes=30)
    fresh = measure(r, snap(newest=T0, now=T0 + HOUR + 60_000))
    assert fresh.value == pytest.approx(1 / 60) and not fresh.breached
    late = measure(r, snap(newest=T0, now=T0 + 4 * HOUR))
    assert late.value == pytest.approx(3.0) and late.breached
    failing = measure(r, snap(newest=T0, now=T0 + HOUR + 40 * 60_000,
                              failing=T0 + HOUR))
    assert failing.breached and "fetches failing for 40.0 minutes" in failing.message
    short = measure(r, snap(newest=T0, now=T0 + HOUR + 10 * 60_000, failing=T0 + HOUR))
    assert not short.breached
    empty = measure(r, snap(newest=None))
    assert empty.value is None and not empty.breached and "no candle" in empty.message


def test_an_exchange_total_sums_its_members():
    a = snap(forecast([100, 200, 300]), volume=10, expected=20, newest=T0)
    b = snap(forecast([10, 20], start=T0 + HOUR), volume=5, expected=6, newest=T0,
             failing=T0 + 5)
    whole = total([a, b])
    frame = whole.outlook("base").forecast
    assert list(frame["q90"]) == [110, 220]  # the ds both forecast
    assert list(frame["q50"]) == [82.5, 165]
    assert (whole.outlook("base").volume, whole.outlook("base").expected_q90) == (15, 26)
    assert whole.failing_since_ms == T0 + 5
    r = rule(series="binance", aggregate="sum", horizon=2, threshold=300)
    assert measure(r, whole).value == 330 and measure(r, whole).breached


def test_a_total_is_as_old_as_its_oldest_member():
    a = snap(forecast([100]), volume=10, expected=20, newest=T0 + HOUR)
    b = snap(forecast([100]), volume=10, expected=20, newest=T0)
    whole = total([a, b])
    assert whole.newest_ms == T0
    assert whole.outlook("base").volume is None  # not the same candle: no realised total
    assert total([a, snap(None)]).outlook("base").forecast is None
    with pytest.raises(VolcastError, match="one timeframe"):
        total([a, Snapshot(T0, 2 * HOUR, T0, {})])


def test_a_restored_episode_neither_fires_again_nor_stays_open():
    r = rule()
    first = Evaluator()
    fired = first.observe(r, "t", measure(r, snap(forecast([150]))), T0)
    restarted = Evaluator()
    restarted.restore([fired])
    assert restarted.observe(r, "t", measure(r, snap(forecast([150]))), T0 + 1) is None
    resolved = restarted.observe(r, "t", measure(r, snap(forecast([50]))), T0 + 2)
    assert resolved.state == "resolved" and resolved.episode == fired.episode


def test_forgetting_a_rule_resolves_its_open_episodes():
    r = rule()
    evaluator = Evaluator()
    evaluator.observe(r, "t", measure(r, snap(forecast([150]))), T0)
    [resolved] = evaluator.forget(r, T0 + 5)
    assert resolved.state == "resolved" and "removed" in resolved.message
    assert evaluator.open_targets() == {}
    assert evaluator.forget(r, T0 + 6) == []
