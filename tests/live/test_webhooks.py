"""Webhook delivery against a real receiver on 127.0.0.1: retries, payloads, giving up, close."""

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from volcast.config import AlertRule
from volcast.data.store import CandleStore
from volcast.live.alert_log import AlertLog
from volcast.live.alerts import Event
from volcast.live.webhooks import Notifier, Outcome, redact, retry_after_s
from volcast.simulator.receiver import Receiver, receiving

DEADLINE_S = 30.0
FAST = {"first_delay_s": 0.01, "max_delay_s": 0.05}
"""Quick retries: the tests count attempts, never time them."""
EVENT = Event("peak", "binance:BTC/USDT:1h", "q90_above", "firing", 150.0, 100.0,
              "highest q90 of the next 1 candles is 150 BTC (threshold 100)", 1_704_067_200_000,
              "ep1", id=7)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


class Outcomes:
    """The notifier's reports, waited for with a generous deadline."""

    def __init__(self) -> None:
        self.seen: list[tuple[Event, Outcome]] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event, outcome: Outcome) -> None:
        with self._changed:
            self.seen.append((event, outcome))
            self._changed.notify_all()

    def wait(self, count: int = 1) -> list[tuple[Event, Outcome]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.seen) >= count, DEADLINE_S)
            return list(self.seen)


def hook(url: str, fmt: str = "json") -> AlertRule:
    return AlertRule(name="peak", series="binance:BTC/USDT:1h", kind="q90_above",
                     threshold=100, webhook=url, format=fmt)


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_receiver_gets_the_event_once_after_retries(receiver, status):
    receiver.failures, receiver.fail = 3, status
    outcomes = Outcomes()
    notifier = Notifier(outcomes, **FAST)
    assert notifier.submit(EVENT, hook(receiver.url))
    [(event, outcome)] = outcomes.wait()
    assert notifier.close(DEADLINE_S) == []
    assert event.id == 7 and outcome.delivered and outcome.error is None
    assert outcome.attempts == 4 and len(receiver.bodies) == 4 and receiver.accepted == 1
    sent = json.loads(receiver.bodies[-1])
    assert sent["rule"] == "peak" and sent["state"] == "firing" and sent["episode"] == "ep1"
    assert sent["value"] == 150.0 and sent["at"] == "2024-01-01 00:00"


def test_the_log_counts_the_retries_of_a_delivery(receiver, db):
    receiver.failures = 2
    log = AlertLog(CandleStore(db))
    done = threading.Event()

    def record(event: Event, outcome: Outcome) -> None:
        log.mark_delivered(event.id, outcome.attempts, outcome.error, outcome.at_ms)
        done.set()

    notifier = Notifier(record, **FAST)
    notifier.submit(replace(EVENT, id=log.record(EVENT)), hook(receiver.url))
    assert done.wait(DEADLINE_S)
    notifier.close(DEADLINE_S)
    [kept] = log.events()
    assert kept.attempts == 3 and kept.delivered_at_ms is not None and kept.delivery_error is None
    assert receiver.accepted == 1 and log.pending() == []


def test_slack_gets_text(receiver):
    outcomes = Outcomes()
    notifier = Notifier(outcomes, **FAST)
    notifier.submit(EVENT, hook(receiver.url, "slack"))
    outcomes.wait()
    notifier.close(DEADLINE_S)
    sent = json.loads(receiver.bodies[0])
    assert list(sent) == ["text"]
    assert sent["text"].startswith(":rotating_light: [FIRING] peak on binance:BTC/USDT:1h: ")
    assert "150 BTC" in sent["text"]


def test_a_receiver_that_never_accepts_is_given_up_on(receiver, caplog):
    receiver.failures = 1_000
    outcomes = Outcomes()
    notifier = Notifier(outcomes, max_attempts=3, **FAST)
    with caplog.at_level(logging.DEBUG, logger="volcast"):
        assert notifier.submit(EVENT, hook(receiver.url))
        [(_, outcome)] = outcomes.wait()
        notifier.close(DEADLINE_S)
    assert not outcome.delivered and outcome.attempts == 3 and outcome.error == "HTTP 500"
    assert len(receiver.bodies) == 3
    assert "gave up on event 7" in caplog.text and "http://127.0.0.1:" in caplog.text
    assert "SECRET" not in caplog.text and "/hooks" not in caplog.text


def test_a_refusal_is_not_retried(receiver):
    receiver.failures, receiver.fail = 1_000, 404
    outcomes = Outcomes()
    notifier = Notifier(outcomes, **FAST)
    notifier.submit(EVENT, hook(receiver.url))
    [(_, outcome)] = outcomes.wait()
    notifier.close(DEADLINE_S)
    assert (outcome.delivered, outcome.attempts, outcome.error) == (False, 1, "HTTP 404")


def test_retry_after_is_honoured(receiver):
    receiver.failures, receiver.fail, receiver.headers = 1, 429, {"Retry-After": "1"}
    outcomes = Outcomes()
    notifier = Notifier(outcomes, first_delay_s=0.01, max_delay_s=5)
    notifier.submit(EVENT, hook(receiver.url))
    [(_, outcome)] = outcomes.wait()
    notifier.close(DEADLINE_S)
    assert outcome.delivered and outcome.attempts == 2
    assert receiver.times[1] - receiver.times[0] >= 0.9  # waited as told, not 0.01 s


def test_no_receiver_at_all_is_a_failure_reported():
    outcomes = Outcomes()
    notifier = Notifier(outcomes, max_attempts=2, **FAST)
    notifier.submit(EVENT, hook("http://127.0.0.1:9/nothing-listens"))
    [(_, outcome)] = outcomes.wait()
    notifier.close(DEADLINE_S)
    assert not outcome.delivered and outcome.attempts == 2
    assert outcome.error.startswith("no answer (") and "127.0.0.1" not in outcome.error


def test_close_abandons_what_it_cannot_finish_and_reports_nothing_after(receiver):
    receiver.failures = 1_000
    outcomes = Outcomes()
    notifier = Notifier(outcomes, first_delay_s=60, max_delay_s=60)
    second = Event(**{**EVENT.__dict__, "id": 8})
    notifier.submit(EVENT, hook(receiver.url))
    notifier.submit(second, hook(receiver.url))
    assert receiver.arrived.wait(DEADLINE_S)
    left = notifier.close(0.1)
    assert [e.id for e in left] == [7, 8]
    assert outcomes.seen == []
    assert not notifier.submit(EVENT, hook(receiver.url))
    assert outcomes.seen[-1][1].error == "notifier closed"


def test_a_full_queue_refuses_and_says_so(receiver):
    receiver.gate = threading.Event()
    outcomes = Outcomes()
    notifier = Notifier(outcomes, capacity=1, **FAST)
    assert notifier.submit(EVENT, hook(receiver.url))
    assert receiver.arrived.wait(DEADLINE_S)  # the first is in flight, the queue is empty
    assert notifier.submit(Event(**{**EVENT.__dict__, "id": 8}), hook(receiver.url))
    assert not notifier.submit(Event(**{**EVENT.__dict__, "id": 9}), hook(receiver.url))
    assert [(e.id, o.error) for e, o in outcomes.seen] == [(9, "delivery queue full")]
    receiver.gate.set()
    seen = outcomes.wait(3)
    notifier.close(DEADLINE_S)
    assert sorted(e.id for e, o in seen if o.delivered) == [7, 8]


def test_a_rule_without_webhook_sends_nothing():
    outcomes = Outcomes()
    notifier = Notifier(outcomes)
    assert not notifier.submit(EVENT, hook("http://127.0.0.1:9/").model_copy(
        update={"webhook": None}))
    assert notifier.close(DEADLINE_S) == [] and outcomes.seen == []


def test_urls_are_redacted_and_retry_after_read():
    assert redact("https://hooks.slack.com/services/T0/B0/XYZ?x=1") == "https://hooks.slack.com/..."
    assert redact("http://user:pw@127.0.0.1:8080/a") == "http://127.0.0.1:8080/..."
    assert retry_after_s("7") == 7.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert retry_after_s("soon") is None and retry_after_s(None) is None
