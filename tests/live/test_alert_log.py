"""The alert log in a real DuckDB store file: record, list, acknowledge, episodes, rules."""

from pathlib import Path

import pandas as pd
import pytest

from volcast.config import AlertRule
from volcast.data.store import CandleStore, SeriesKey
from volcast.errors import NotFound
from volcast.live.alert_log import AlertLog
from volcast.live.alerts import Evaluator, Event, Reading

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
RULE = AlertRule(name="peak", series="binance:BTC/USDT:1h", kind="q90_above", threshold=100)


def event(state: str = "firing", episode: str = "e1", at_ms: int = T0, **given) -> Event:
    return Event(**{"rule": "peak", "target": "binance:BTC/USDT:1h", "kind": "q90_above",
                    "state": state, "value": 150.0, "threshold": 100.0, "message": "high",
                    "at_ms": at_ms, "episode": episode, **given})


def test_events_are_kept_newest_first_and_episodes_close(db):
    log = AlertLog(CandleStore(db))
    assert log.events() == [] and log.open_episodes() == []
    first = log.record(event("firing", "e1", T0))
    log.record(event("firing", "e2", T0 + 1, target="binance:ETH/USDT:1h"))
    resolved = log.record(event("resolved", "e1", T0 + 2, value=None))
    assert [e.id for e in log.events()] == [resolved, first + 1, first]
    assert [e.id for e in log.events(limit=1)] == [resolved]
    assert [e.episode for e in log.open_episodes()] == ["e2"]
    assert [e.episode for e in log.events(open_only=True)] == ["e2"]
    got = log.event(resolved)
    assert (got.state, got.value, got.attempts, got.acked_at_ms) == ("resolved", None, 0, None)


def test_acknowledging_keeps_the_first_time(db):
    log = AlertLog(CandleStore(db))
    eid = log.record(event())
    assert log.acknowledge(eid, at_ms=T0 + 10).acked_at_ms == T0 + 10
    assert log.acknowledge(eid, at_ms=T0 + 20).acked_at_ms == T0 + 10
    with pytest.raises(NotFound, match="no alert event 999"):
        log.acknowledge(999)
    with pytest.raises(NotFound):
        log.event(999)


def test_deliveries_are_recorded_and_pending_ones_found(db):
    log = AlertLog(CandleStore(db))
    sent, failed, waiting = (log.record(event(episode=e)) for e in ("a", "b", "c"))
    log.mark_delivered(sent, attempts=3, at_ms=T0 + 5)
    log.mark_delivered(failed, attempts=10, error="HTTP 500")
    assert [e.id for e in log.pending()] == [waiting]
    done, gave_up = log.event(sent), log.event(failed)
    assert (done.delivered_at_ms, done.attempts, done.delivery_error) == (T0 + 5, 3, None)
    assert (gave_up.delivered_at_ms, gave_up.attempts, gave_up.delivery_error) == (
        None, 10, "HTTP 500")


def test_open_episodes_survive_reopening_and_restore_the_evaluator(db):
    evaluator = Evaluator()
    fired = evaluator.observe(RULE, "binance:BTC/USDT:1h", Reading(150, True, "high"), T0)
    AlertLog(CandleStore(db)).record(fired)
    reopened = AlertLog(CandleStore(db))
    [open_one] = reopened.open_episodes()
    assert open_one.episode == fired.episode
    restarted = Evaluator()
    restarted.restore(reopened.open_episodes())
    assert restarted.observe(RULE, fired.target, Reading(150, True, "high"), T0 + 1) is None
    resolved = restarted.observe(RULE, fired.target, Reading(50, False, "low"), T0 + 2)
    reopened.record(resolved)
    assert AlertLog(CandleStore(db)).open_episodes() == []


def test_a_store_without_the_log_reads_empty_read_only(db):
    CandleStore(db).upsert(SeriesKey("binance", "BTC/USDT", "1h"), pd.DataFrame({
        "timestamp": [T0], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
        "volume": [1.0]}))
    log = AlertLog(CandleStore(db, read_only=True))
    assert log.events() == [] and log.open_episodes() == [] and log.pending() == []
    assert log.rules() == []


def test_rules_made_through_the_api_are_kept(db: Path):
    log = AlertLog(CandleStore(db))
    stale = AlertRule(name="quiet", series="binance", timeframe="1h", kind="stale",
                      threshold=2, error_minutes=15, webhook="https://example.invalid/x")
    log.save_rule(RULE)
    log.save_rule(stale)
    log.save_rule(RULE.model_copy(update={"threshold": 200.0}))
    assert AlertLog(CandleStore(db)).rules() == [RULE.model_copy(update={"threshold": 200.0}),
                                                 stale]
    assert log.delete_rule("quiet") == stale
    assert [r.name for r in log.rules()] == ["peak"]
    with pytest.raises(NotFound, match="no alert rule 'quiet'"):
        log.delete_rule("quiet")
