"""The dashboard's live section in headless Chromium against `volcast serve` following the
exchange simulator on a fast clock (an hour candle closes every 2 s): every watched series gets
a card with its chart, the cards move on by themselves as candles close (no reload), the range
and unit pickers redraw them, a rule added through the form is listed and fires, and its event
is acknowledged from the page. And a server without the live service never asks for it."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.web.test_page import open_page, wait_text
from tests.web.test_serve import free_port, serve, stop, wait_for_health
from volcast.data.sample import sample_dir
from volcast.simulator import SimulatorConfig, running
from volcast.simulator.server import RunningSimulator

JULY = 1_719_792_000_000  # 2024-07-01 00:00 UTC
SPEED = 1800  # exchange seconds per wall second: an hour candle closes every 2 s
LONG_MS = 180_000  # bounds for conditions that wait on serve's backfill and first forecasts
WATCH = """
[[watch]]
exchange = "binance"
symbols = ["BTC/USDT", "ETH/USDT"]
timeframes = ["1h"]
since = "2024-06-27"
url = "{url}"
"""
BTC_CARD = "#live-grid .live-card[data-id='binance:BTC/USDT:1h']"
LAST_SHOWN = "s => document.querySelector(s).textContent.match(/last candle ([0-9-]+ [0-9:]+)/)"
MARK = "window.notReloaded = true"


@pytest.fixture
def fast_exchange() -> Iterator[RunningSimulator]:
    """The simulator from 2024-07-01 at SPEED, started on a worker thread (Playwright's loop
    holds the main one: tests/conftest.py::simulator)."""
    with ThreadPoolExecutor(1) as worker:
        context = running(SimulatorConfig(sample_dir(), now_ms=JULY, speed=SPEED))
        yield worker.submit(context.__enter__).result()
        worker.submit(context.__exit__, None, None, None).result()


@pytest.fixture
def live_server(fast_exchange, tmp_path) -> Iterator[str]:
    """`volcast serve --config` with a [[watch]] of BTC/USDT and ETH/USDT on the simulator."""
    config = tmp_path / "volcast.toml"
    config.write_text(WATCH.format(url=fast_exchange.url))
    port = free_port()
    process = serve("--config", str(config), "--db", str(tmp_path / "live.duckdb"),
                    "--models", str(tmp_path / "models"), "--port", str(port))
    try:
        wait_for_health(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        err = stop(process)[1]
        assert "Traceback" not in err, err


def last_shown(page) -> str:
    """The BTC card's "last candle" time, as the page shows it."""
    return page.evaluate(f"s => ({LAST_SHOWN})(s)[1]", BTC_CARD)


def test_the_live_grid_moves_on_by_itself_as_candles_close(browser, live_server):
    page, errors = open_page(browser, live_server + "/?refresh=1",
                             viewport={"width": 1280, "height": 1200})
    page.evaluate(MARK)
    page.wait_for_function("document.querySelectorAll('#live-grid .live-card .main-svg')"
                           ".length >= 2", timeout=LONG_MS)
    ids = page.eval_on_selector_all("#live-grid .live-card",
                                    "cards => cards.map(c => c.dataset.id)")
    assert ids == ["binance:BTC/USDT:1h", "binance:ETH/USDT:1h"]
    assert "volume in BTC" in page.inner_text(BTC_CARD)
    wait_text(page, f"{BTC_CARD} .live-chart", "volume (BTC per candle)")
    page.wait_for_function(f"({LAST_SHOWN})({BTC_CARD!r})", timeout=LONG_MS)
    before = last_shown(page)
    assert before.startswith("2024-0")

    page.wait_for_function(f"b => ({LAST_SHOWN})({BTC_CARD!r})[1] > b", arg=before,
                           timeout=LONG_MS)  # a later candle, shown without a reload
    assert page.evaluate("window.notReloaded === true")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert "updated " in page.inner_text("#live-updated")

    page.select_option("#live-hours", "6")  # 6 h of hourly candles
    page.wait_for_function(f"document.querySelector({BTC_CARD!r} + ' .live-chart')"
                           ".data[0].x.length <= 6")
    page.select_option("#live-unit", "quote")
    wait_text(page, BTC_CARD, "volume in USDT")
    wait_text(page, f"{BTC_CARD} .live-chart", "volume (USDT per candle)")
    assert errors == []
    page.close()


def test_a_rule_added_on_the_page_is_listed_fires_and_is_acknowledged(browser, live_server):
    page, errors = open_page(browser, live_server + "/?refresh=1")
    page.wait_for_selector("#live-alerts:not([hidden])", timeout=LONG_MS)
    page.fill("#rule-form [name=name]", "any-volume")
    page.fill("#rule-form [name=series]", "binance:BTC/USDT:1h")
    page.select_option("#rule-kind", "q90_above")
    page.fill("#rule-form [name=threshold]", "0")  # any forecast is above it: fires at once
    page.click("#rule-form button[type=submit]")
    wait_text(page, "#rule-status", "rule any-volume added")
    row = "#rules tr[data-key='any-volume']"
    page.wait_for_selector(row)
    assert "q90_above" in page.inner_text(row) and "0 BTC" in page.inner_text(row)
    rules = httpx.get(f"{live_server}/api/alert-rules").json()
    assert {"name": "any-volume", "source": "api"}.items() <= next(
        r for r in rules if r["name"] == "any-volume").items()

    firing = "#alerts tr[data-state=firing]"
    page.wait_for_selector(firing, timeout=LONG_MS)
    wait_text(page, f"{BTC_CARD} .live-firing", "firing: any-volume")
    wait_text(page, f"{BTC_CARD} .live-chart", "any-volume: 0 BTC")  # its threshold, drawn
    event = page.get_attribute(firing, "data-key")
    page.click(f"{firing} button:has-text('acknowledge')")
    wait_text(page, f"#alerts tr[data-key='{event}']", "acknowledged")
    acked = httpx.get(f"{live_server}/api/alerts", params={"limit": 1000}).json()
    assert next(e for e in acked if e["id"] == int(event))["acked_at_ms"] is not None

    page.click(f"{row} button:has-text('delete')")
    wait_text(page, "#rule-status", "rule any-volume deleted")
    page.wait_for_selector(row, state="detached")
    assert errors == []
    page.close()


def test_a_server_without_the_live_service_says_how_to_watch_and_asks_nothing(browser,
                                                                              server):
    asked: list[str] = []
    page = browser.new_page()
    page.on("request", lambda r: asked.append(r.url) if "/api/live" in r.url
            or "/api/alert" in r.url else None)
    page.goto(server + "/?refresh=1")
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_visible("#live-none")
    assert "[[watch]]" in page.inner_text("#live-none")
    assert not page.is_visible("#live-alerts")
    for _ in range(2):  # two refresh periods pass (the overview's polls show it): nothing asked
        with page.expect_request("**/api/overview*", timeout=60_000):
            pass
    assert asked == []
    page.close()
