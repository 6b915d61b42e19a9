"""Webhook delivery: alert events POSTed from a background thread, retried with backoff.

Why a thread with a queue: the service's loop must never wait on a receiver that is down, and a
receiver that is down for a while must still get every event once it is back. Deliveries go
one at a time in the order events happened (a receiver sees a firing before its resolution);
a failing receiver therefore delays the ones after it by at most its retries' waits, which
``max_delay_s`` and ``max_attempts`` bound.

What is retried: no answer (refused, timed out), 408, 425, 429 and 5xx, waiting
``first_delay_s`` doubled each time up to ``max_delay_s``, or longer when the receiver says so
in Retry-After (still at most ``max_delay_s``). Any other answer outside 2xx (a 404, a
redirect) will not change on its own and fails at once. Redirects are not followed: a POST
goes only to the URL the rule names.

A webhook URL may hold a token (Slack's do), so it is never logged or reported: ``redact``
keeps its scheme and host.
"""

import http.client
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from volcast.config import AlertRule
from volcast.data.retry import retried, retry_after_s
from volcast.errors import VolcastError
from volcast.live.alerts import Event

log = logging.getLogger(__name__)
_GRACE_S = 1.0
"""How long ``close`` waits, after its timeout, for a retry's pause to notice the stop."""


@dataclass(frozen=True)
class Outcome:
    """How one event's delivery ended: delivered after ``attempts`` tries, or given up with
    ``error`` (which never holds the URL)."""

    delivered: bool
    attempts: int
    error: str | None
    at_ms: int


Report = Callable[[Event, Outcome], None]


@dataclass(frozen=True)
class _Delivery:
    event: Event
    url: str
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new destination for the payload."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def redact(url: str) -> str:
    """scheme://host[:port]/... : enough to tell receivers apart, no path or query (tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


def payload(event: Event, fmt: str) -> bytes:
    """The POST body: volcast's event as JSON, or Slack's ``{"text": ...}``."""
    if fmt == "slack":
        mark = ":rotating_light:" if event.state == "firing" else ":white_check_mark:"
        text = (f"{mark} [{event.state.upper()}] {event.rule} on {event.target}: "
                f"{event.message}")
        return json.dumps({"text": text}).encode()
    return json.dumps(event.as_dict()).encode()


class Notifier:
    """Delivers events to their rules' webhooks on one background thread; ``report`` hears
    every outcome (on that thread) so that the caller can record it (``AlertLog.
    mark_delivered``) and count it. Nothing here raises into the caller."""

    def __init__(self, report: Report, *, first_delay_s: float = 1.0,
                 max_delay_s: float = 60.0, max_attempts: int = 10, timeout_s: float = 10.0,
                 capacity: int = 1000) -> None:
        if max_attempts < 1 or not 0 < first_delay_s <= max_delay_s:
            raise VolcastError(f"webhooks: need max_attempts >= 1 and 0 < first_delay_s <= "
                               f"max_delay_s (got {max_attempts}, {first_delay_s}, "
                               f"{max_delay_s})")
        self._report = report
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self.max_attempts, self.timeout_s, self.capacity = max_attempts, timeout_s, capacity
        self._opener = urllib.request.build_opener(_NoRedirects)
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closing = False
        self._abandon = threading.Event()
        self._current: _Delivery | None = None
        self._left: list[_Delivery] = []
        self._telling = threading.Lock()
        """Held while an outcome is reported, so that none is reported after ``close``."""
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="volcast-webhooks", daemon=True)
        self._thread.start()

    def submit(self, event: Event, rule: AlertRule) -> bool:
        """Queue a recorded event for the rule's webhook. False when the rule has none, or
        when the queue is full or closed: the last two are reported at once as failed."""
        if rule.webhook is None:
            return False
        with self._lock:
            refused = ("notifier closed" if self._closing else
                       "delivery queue full" if self._queue.qsize() >= self.capacity else None)
            if refused is None:
                self._queue.put(_Delivery(event, rule.webhook, payload(event, rule.format)))
                return True
        log.warning("webhooks: event %s of rule %s not sent to %s: %s", event.id, event.rule,
                    redact(rule.webhook), refused)
        self._tell(event, Outcome(False, 0, refused, _now_ms()))
        return False

    def close(self, timeout: float = 10.0) -> list[Event]:
        """Stop: deliveries go on for up to ``timeout`` seconds, then the rest is abandoned,
        the one in flight included (its outcome is not reported after this returns). Returns
        the abandoned events, which the log still shows as pending, and logs which they were."""
        with self._lock:
            self._closing = True
            self._queue.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            log.info("webhooks: every delivery finished")
            return []
        self._abandon.set()
        self._thread.join(_GRACE_S)
        with self._telling:
            self._closed = True
        with self._lock:
            in_flight = self._current
            left = [d.event for d in self._left] + ([] if in_flight is None else
                                                    [in_flight.event])
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    left.append(item.event)
        log.warning("webhooks: abandoned %d deliveries at shutdown (events %s)%s", len(left),
                    ", ".join(str(e.id) for e in left),
                    f"; event {in_flight.event.id} was in flight" if in_flight else "")
        return left

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            with self._lock:
                if self._abandon.is_set():
                    self._left.append(item)
                    return
                self._current = item
            outcome = self._deliver(item)
            with self._lock:
                self._current = None
                if outcome is None:
                    self._left.append(item)
                    return
            with self._telling:
                if not self._closed:
                    self._tell(item.event, outcome)

    def _tell(self, event: Event, outcome: Outcome) -> None:
        """Report an outcome; the caller's failure to record it is logged, never raised."""
        try:
            self._report(event, outcome)
        except Exception:
            log.exception("webhooks: recording the outcome of event %s failed", event.id)

    def _deliver(self, item: _Delivery) -> Outcome | None:
        """Attempts until delivered, refused for good, out of attempts, or abandoned (None)."""
        delay, attempt = self.first_delay_s, 0
        while True:
            attempt += 1
            error, wait, retry = self._attempt(item)
            if error is None:
                return Outcome(True, attempt, None, _now_ms())
            if not retry or attempt == self.max_attempts:
                log.warning("webhooks: gave up on event %s for %s after %d attempts: %s",
                            item.event.id, redact(item.url), attempt, error)
                return Outcome(False, attempt, error, _now_ms())
            if self._abandon.wait(min(max(delay, wait or 0.0), self.max_delay_s)):
                return None
            delay = min(delay * 2, self.max_delay_s)

    def _attempt(self, item: _Delivery) -> tuple[str | None, float | None, bool]:
        """One POST: (error or None, Retry-After seconds, whether to retry)."""
        request = urllib.request.Request(item.url, data=item.body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "volcast"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read()
            return None, None, False
        except urllib.error.HTTPError as exc:
            with exc:
                wait = retry_after_s(exc.headers.get("Retry-After"))
            return (f"HTTP {exc.code}", wait, retried(exc.code))
        except urllib.error.URLError as exc:
            return f"no answer ({_reason(exc.reason)})", None, True
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return f"no answer ({_reason(exc)})", None, True


def _reason(reason: object) -> str:
    """A network error's cause without anything that could repeat the URL."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, str):
        return reason
    return type(reason).__name__


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
