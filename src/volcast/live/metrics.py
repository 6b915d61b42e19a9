"""What `volcast serve` tells Prometheus (``/metrics``): per watched series the age of its
last candle and its forecasts, how long after its close each candle was stored, fetch errors,
alert states, how long jobs took, how long the service waited for the store, and how long HTTP
requests took.

Each ``Metrics`` owns its registry, never prometheus-client's global one: a process may hold
several apps (tests, embedding), and each must expose only its own figures. A series is
labelled ``exchange``, ``symbol``, ``timeframe`` (what Grafana's variables template on), never
by anything per candle. Labels stay
bounded: series leave with ``forget`` when they leave the watch-list, requests are labelled by
route template (``/api/series/{exchange}``), never by the raw path, and unknown HTTP methods
share one label.

Names: ``docs/deploy.md`` lists them; ``docs/grafana/volcast.json`` plots them.
"""

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from volcast.data.store import SeriesKey

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods labelled as themselves; any other is ``OTHER`` (a client chooses the method)."""
JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200)
"""Seconds: a fetch of one page takes well under a second, a training run up to hours."""
STORE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
"""Seconds: the target is a wait of at most 2 s (p99), so buckets are fine around it."""
DELAY_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 900)
"""Seconds from a candle's close (on the exchange's clock) to its being stored: the target is
10 s (p95)."""
QUANTILES = ("0.5", "0.9")
SERIES = ["exchange", "symbol", "timeframe"]
Clock = Callable[[str], float]
"""An exchange id -> that exchange's time now, in epoch seconds."""


def labels(key: SeriesKey) -> dict[str, str]:
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe}


def wall_clock(_exchange: str) -> float:
    """Our clock, for every exchange: right when the exchanges keep real time."""
    return time.time()


class _CandleAges:
    """A collector that computes each series' candle age when scraped, so that the age keeps
    growing while no candle arrives (a gauge set on arrival would freeze at its last value,
    hiding exactly the stall it should show)."""

    def __init__(self, now: Clock) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._closes: dict[SeriesKey, float] = {}
        """series -> close of its newest stored candle, in epoch seconds."""

    def stored(self, key: SeriesKey, open_ms: int) -> None:
        close_s = (open_ms + key.tf_ms) / 1000
        with self._lock:
            if close_s >= self._closes.get(key, close_s):  # a gap filled later is older
                self._closes[key] = close_s

    def forget(self, key: SeriesKey) -> None:
        with self._lock:
            self._closes.pop(key, None)

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "volcast_last_candle_age_seconds", "Seconds since the newest stored candle of the "
            "series closed (open + candle length) on its exchange's clock, computed when "
            "scraped", labels=SERIES)
        length = GaugeMetricFamily(
            "volcast_candle_length_seconds", "Length of one candle of the series (its "
            "timeframe), to read the age in candle lengths", labels=SERIES)
        with self._lock:
            closes = sorted(self._closes.items(), key=lambda item: str(item[0]))
        clocks = {key.exchange: self._now(key.exchange) for key, _ in closes}
        for key, close_s in closes:
            values = list(labels(key).values())
            age.add_metric(values, clocks[key.exchange] - close_s)
            length.add_metric(values, key.tf_ms / 1000)
        yield age
        yield length


class Metrics:
    """The figures of one live service, and their Prometheus text. ``now``: each exchange's
    clock, which candle ages are measured with (a simulator's may run faster than ours)."""

    def __init__(self, now: Clock = wall_clock) -> None:
        self.registry = CollectorRegistry()
        self._ages = _CandleAges(now)
        self.registry.register(self._ages)
        self._stored = Counter(
            "volcast_candles_stored_total", "Closed candles stored by the live service",
            SERIES, registry=self.registry)
        self._delay = Histogram(
            "volcast_candle_delay_seconds", "Seconds from a candle's close on the exchange's "
            "clock to its being stored, for each candle stored as it closed",
            ["exchange", "timeframe"], buckets=DELAY_BUCKETS, registry=self.registry)
        self._next = Gauge(
            "volcast_forecast_next_candle_volume", "Forecast volume of the next candle, by "
            "quantile, in unit", [*SERIES, "quantile", "unit"], registry=self.registry)
        self._day = Gauge(
            "volcast_forecast_next_day_volume", "Forecast total volume of the next day, "
            "by quantile, in unit", [*SERIES, "quantile", "unit"], registry=self.registry)
        self._fetch_errors = Counter(
            "volcast_fetch_errors_total", "Failed fetches from an exchange",
            SERIES, registry=self.registry)
        self._alerts = Gauge(
            "volcast_alert_firing", "1 while an alert rule fires for its target, else 0",
            ["rule", "target"], registry=self.registry)
        self._jobs = Histogram(
            "volcast_job_duration_seconds", "Duration of finished jobs (fetch, forecast, "
            "train, ...) by outcome", ["kind", "outcome"], buckets=JOB_BUCKETS,
            registry=self.registry)
        self._store_wait = Histogram(
            "volcast_store_wait_seconds", "Waits of the service for the store (its lock or "
            "another process holding the file)", buckets=STORE_BUCKETS, registry=self.registry)
        self._requests = Histogram(
            "volcast_http_request_duration_seconds", "HTTP requests until the response "
            "started, by route template", ["route", "method", "status"],
            registry=self.registry)

    def candle_stored(self, key: SeriesKey, open_ms: int, added: int = 1) -> None:
        """``added`` closed candles of ``key`` were stored, the newest opening at ``open_ms``."""
        self._ages.stored(key, open_ms)
        self._stored.labels(**labels(key)).inc(added)

    def candle_delay(self, key: SeriesKey, seconds: float) -> None:
        """A candle of ``key`` was stored ``seconds`` (real time) after it closed."""
        self._delay.labels(key.exchange, key.timeframe).observe(seconds)

    def forecast(self, key: SeriesKey, next_q50: float, next_q90: float, day_q50: float,
                 day_q90: float, unit: str) -> None:
        """The series' newest forecast: the next candle and the next day's total, in ``unit``
        (a currency code). A unit other than the last one replaces it."""
        for gauge, values in ((self._next, (next_q50, next_q90)), (self._day, (day_q50, day_q90))):
            gauge.remove_by_labels(labels(key))
            for quantile, value in zip(QUANTILES, values, strict=True):
                gauge.labels(**labels(key), quantile=quantile, unit=unit).set(value)

    def fetch_error(self, key: SeriesKey) -> None:
        self._fetch_errors.labels(**labels(key)).inc()

    def alert_state(self, rule: str, target: str, firing: bool) -> None:
        """``target``: the series or exchange the rule watches."""
        self._alerts.labels(rule, target).set(1 if firing else 0)

    def forget_rule(self, rule: str) -> None:
        """A rule was deleted: its states leave the output."""
        self._alerts.remove_by_labels({"rule": rule})

    def job_finished(self, kind: str, seconds: float, ok: bool) -> None:
        self._jobs.labels(kind, "ok" if ok else "error").observe(seconds)

    def store_wait(self, seconds: float) -> None:
        self._store_wait.observe(seconds)

    def request(self, route_template: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request; ``route_template`` as routed (``/api/series/{exchange}``), never
        the raw path: labels must stay few."""
        method = method if method in METHODS else "OTHER"
        self._requests.labels(route_template, method, str(status)).observe(seconds)

    def forget(self, key: SeriesKey) -> None:
        """``key`` left the watch-list: every figure labelled with it leaves the output (the
        delay histogram is per exchange and timeframe: it stays)."""
        self._ages.forget(key)
        for metric in (self._stored, self._next, self._day, self._fetch_errors):
            metric.remove_by_labels(labels(key))

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
