"""The Prometheus output of the live service: what each call exposes, the candle age growing at
scrape time, forgetting a series, request timing by route template in a real FastAPI app, and
the shipped Grafana dashboard asking only for metrics that exist."""

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from volcast.data.store import SeriesKey
from volcast.errors import VolcastError
from volcast.live.metrics import Metrics
from volcast.web.metrics import UNMATCHED, RequestTimer, router

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "volcast.json"
HOUR_MS = 3_600_000
OPEN_MS = 1_719_792_000_000  # 2024-07-01 00:00 UTC
BTC, ETH = SeriesKey("binance", "BTC/USDT", "1h"), SeriesKey("binance", "ETH/USDT", "1h")
KRAKEN = SeriesKey("kraken", "BTC/USD", "1h")


class Clock:
    """Exchange clocks the test moves by hand: ages are measured against them, never against
    sleeps. Every exchange shows ``now_s`` plus its own offset."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s
        self.offsets: dict[str, float] = {}

    def __call__(self, exchange: str) -> float:
        return self.now_s + self.offsets.get(exchange, 0.0)


def of(key: SeriesKey) -> dict[str, str]:
    """The labels a series' figures carry."""
    return {"exchange": key.exchange, "symbol": key.symbol, "timeframe": key.timeframe}


def scrape(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the output: (sample name, labels) -> value."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def names_with(samples: dict, label: str, wanted: str) -> set[str]:
    return {name for name, labels in samples if (label, wanted) in labels}


def busy(clock: Clock) -> Metrics:
    """Metrics after one call of each kind, the newest BTC candle closing at clock time."""
    metrics = Metrics(now=clock)
    metrics.candle_stored(BTC, OPEN_MS - HOUR_MS)
    metrics.candle_stored(BTC, OPEN_MS)
    metrics.candle_stored(ETH, OPEN_MS)
    metrics.forecast(BTC, 100.0, 180.0, 2400.0, 3100.0, "BTC")
    metrics.fetch_error(BTC)
    metrics.fetch_error(BTC)
    metrics.candle_delay(BTC, 1.5)
    metrics.candle_delay(ETH, 12.0)
    metrics.alert_state("btc-capacity", str(BTC), firing=True)
    metrics.alert_state("binance-stale", "binance", firing=False)
    metrics.job_finished("train", 42.0, ok=True)
    metrics.job_finished("fetch", 0.3, ok=False)
    metrics.store_wait(0.02)
    metrics.store_wait(1.5)
    metrics.request("/api/series/{exchange}", "GET", 200, 0.05)
    return metrics


@pytest.fixture
def clock() -> Clock:
    return Clock(OPEN_MS / 1000 + 3600)


def test_each_call_shows_with_its_labels_and_values(clock: Clock):
    samples = scrape(busy(clock))
    assert value(samples, "volcast_last_candle_age_seconds", **of(BTC)) == 0
    assert value(samples, "volcast_candle_length_seconds", **of(BTC)) == 3600
    assert value(samples, "volcast_candles_stored_total", **of(BTC)) == 2
    assert value(samples, "volcast_candles_stored_total", **of(ETH)) == 1
    for name, q50, q90 in (("volcast_forecast_next_candle_volume", 100, 180),
                           ("volcast_forecast_next_day_volume", 2400, 3100)):
        assert value(samples, name, **of(BTC), quantile="0.5", unit="BTC") == q50
        assert value(samples, name, **of(BTC), quantile="0.9", unit="BTC") == q90
    assert value(samples, "volcast_fetch_errors_total", **of(BTC)) == 2
    delay = "volcast_candle_delay_seconds"
    assert value(samples, f"{delay}_count", exchange="binance", timeframe="1h") == 2
    assert value(samples, f"{delay}_bucket", exchange="binance", timeframe="1h", le="2.0") == 1
    assert value(samples, f"{delay}_bucket", exchange="binance", timeframe="1h", le="20.0") == 2
    assert value(samples, "volcast_alert_firing", rule="btc-capacity", target=str(BTC)) == 1
    assert value(samples, "volcast_alert_firing", rule="binance-stale", target="binance") == 0
    job = "volcast_job_duration_seconds"
    assert value(samples, f"{job}_count", kind="train", outcome="ok") == 1
    assert value(samples, f"{job}_sum", kind="train", outcome="ok") == 42
    assert value(samples, f"{job}_count", kind="fetch", outcome="error") == 1
    assert value(samples, "volcast_store_wait_seconds_count") == 2
    assert value(samples, "volcast_store_wait_seconds_bucket", le="0.025") == 1
    assert value(samples, "volcast_store_wait_seconds_bucket", le="2.0") == 2
    request = {"route": "/api/series/{exchange}", "method": "GET", "status": "200"}
    assert value(samples, "volcast_http_request_duration_seconds_count", **request) == 1


def test_the_candle_age_grows_at_scrape_time_while_no_candle_comes(clock: Clock):
    metrics = busy(clock)
    clock.now_s += 5400
    assert value(scrape(metrics), "volcast_last_candle_age_seconds", **of(BTC)) == 5400
    clock.now_s += 600
    assert value(scrape(metrics), "volcast_last_candle_age_seconds", **of(BTC)) == 6000
    metrics.candle_stored(BTC, OPEN_MS - 5 * HOUR_MS)  # a gap filled: older
    assert value(scrape(metrics), "volcast_last_candle_age_seconds", **of(BTC)) == 6000
    metrics.candle_stored(BTC, OPEN_MS + HOUR_MS)
    assert value(scrape(metrics), "volcast_last_candle_age_seconds", **of(BTC)) == 2400


def test_each_series_age_is_read_on_its_own_exchanges_clock(clock: Clock):
    """A simulator (or an exchange whose clock is off ours) must not make a fresh series look
    stale, nor a stale one fresh."""
    metrics = busy(clock)
    metrics.candle_stored(KRAKEN, OPEN_MS - 2 * HOUR_MS)  # closed an hour before kraken's now
    clock.offsets["kraken"] = -3600.0
    samples = scrape(metrics)
    assert value(samples, "volcast_last_candle_age_seconds", **of(BTC)) == 0
    assert value(samples, "volcast_last_candle_age_seconds", **of(KRAKEN)) == 3600


def test_the_stored_counter_counts_candles_not_calls(clock: Clock):
    metrics = Metrics(now=clock)
    metrics.candle_stored(BTC, OPEN_MS, added=24)
    metrics.candle_stored(BTC, OPEN_MS + HOUR_MS)
    assert value(scrape(metrics), "volcast_candles_stored_total", **of(BTC)) == 25


def test_forget_drops_every_figure_of_the_series_and_keeps_the_others(clock: Clock):
    metrics = busy(clock)
    assert len(names_with(scrape(metrics), "symbol", "BTC/USDT")) >= 5
    metrics.forget(BTC)
    samples = scrape(metrics)
    assert names_with(samples, "symbol", "BTC/USDT") == set()
    assert value(samples, "volcast_last_candle_age_seconds", **of(ETH)) == 0
    assert value(samples, "volcast_alert_firing", rule="btc-capacity", target=str(BTC)) == 1
    metrics.forget_rule("btc-capacity")
    assert names_with(scrape(metrics), "rule", "btc-capacity") == set()


def test_a_forecast_in_another_unit_replaces_the_old_one(clock: Clock):
    metrics = busy(clock)
    metrics.forecast(BTC, 6e6, 1e7, 1.5e8, 2e8, "USDT")
    units = {dict(labels)["unit"] for name, labels in scrape(metrics)
             if name.startswith("volcast_forecast_") and ("symbol", "BTC/USDT") in labels}
    assert units == {"USDT"}


def test_labels_stay_bounded_whatever_method_a_client_sends(clock: Clock):
    metrics = Metrics(now=clock)
    metrics.request(UNMATCHED, "BREW", 405, 0.001)
    samples = scrape(metrics)
    assert value(samples, "volcast_http_request_duration_seconds_count",
                 route=UNMATCHED, method="OTHER", status="405") == 1


def test_each_metrics_has_its_own_registry(clock: Clock):
    one, other = Metrics(now=clock), Metrics(now=clock)
    one.fetch_error(BTC)
    assert names_with(scrape(other), "symbol", "BTC/USDT") == set()


def timed_app(metrics: Metrics, static: Path) -> FastAPI:
    """A tiny real FastAPI app with the middleware and the /metrics route as volcast wires
    them, and files mounted as the dashboard's are."""
    app = FastAPI()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/api/items/{item}")
    def item(item: int) -> dict[str, int]:
        return {"item": item}

    @app.get("/api/broken")
    def broken() -> None:
        raise VolcastError("broken on purpose")

    app.state.metrics = metrics
    app.add_middleware(RequestTimer, metrics=metrics)
    return app


def test_the_middleware_labels_requests_by_route_template(clock: Clock, tmp_path: Path):
    metrics = Metrics(now=clock)
    (tmp_path / "page.js").write_text("1")
    with TestClient(timed_app(metrics, tmp_path), raise_server_exceptions=False) as client:
        for number in (1, 2, 3):
            assert client.get(f"/api/items/{number}?q=x{number}").status_code == 200
        assert client.get("/api/items/nope").status_code == 422
        assert client.delete("/api/items/1").status_code == 405
        assert client.get("/static/page.js").status_code == 200
        assert client.get("/static/missing.js").status_code == 404
        assert client.get("/no/such/path").status_code == 404
        assert client.get("/api/broken").status_code == 500
        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    count = "volcast_http_request_duration_seconds_count"
    samples = scrape(metrics)
    assert value(samples, count, route="/api/items/{item}", method="GET", status="200") == 3
    assert value(samples, count, route="/api/items/{item}", method="GET", status="422") == 1
    assert value(samples, count, route="/api/items/{item}", method="DELETE", status="405") == 1
    assert value(samples, count, route="/static", method="GET", status="200") == 1
    assert value(samples, count, route="/static", method="GET", status="404") == 1
    assert value(samples, count, route=UNMATCHED, method="GET", status="404") == 1
    assert value(samples, count, route="/api/broken", method="GET", status="500") == 1
    assert value(samples, count, route="/metrics", method="GET", status="200") == 1
    routes = {dict(labels).get("route") for name, labels in samples if name == count}
    assert not any("?" in route or "/1" in route for route in routes)


def test_the_grafana_dashboard_plots_only_metrics_that_exist(clock: Clock):
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = {name for name, _ in scrape(busy(clock))}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    exprs += [variables[name]["definition"] for name in ("exchange", "symbol", "timeframe")]
    used = {name for expr in exprs for name in re.findall(r"volcast_[a-z_]+", expr)}
    assert used - exposed == set()
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert len(families) >= 9
    assert variables["datasource"]["type"] == "datasource"
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
    assert "label_values(volcast_last_candle_age_seconds, exchange)" in \
        variables["exchange"]["definition"]
    series = 'exchange=~"$exchange", symbol=~"$symbol", timeframe=~"$timeframe"'
    panels = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(series in expr for expr in panels if "volcast_last_candle_age" in expr
               or "volcast_forecast_" in expr)
