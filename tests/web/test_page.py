"""The dashboard in headless Chromium against a real server on 127.0.0.1: it loads with no
console errors, selecting a series draws its charts, a job shows its progress until done, a
failed request stops neither the refresh nor the job list, jobs survive a reload and cancel
from the page, an empty overview says why, and a chosen time zone moves every time shown.
A screenshot is written to $VOLCAST_ARTIFACTS (default: test-artifacts/)."""

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAST, drawn_charts
from tests.web.conftest import ETH, TINY_LSTM
from volcast.config import Settings
from volcast.data.store import CandleStore, SeriesKey
from volcast.web.access import Access
from volcast.workspace import Workspace

TOKEN = "s3cret-token-0123456789"
ARTIFACTS = Path(os.environ.get("VOLCAST_ARTIFACTS", "test-artifacts"))
SLOW_LSTM = TINY_LSTM | {"epochs": 200, "patience": 100, "train_days": 365}
"""A training that runs long enough to be seen, reloaded and cancelled (it stops at the next
epoch when cancelled)."""
RECORD_STATUS = """addEventListener("DOMContentLoaded", () => {
  window.statuses = [];
  const line = document.getElementById("status");
  new MutationObserver(() => statuses.push(line.textContent))
    .observe(line, { childList: true, characterData: true, subtree: true });
});"""
"""Keeps every text the status line showed, however briefly, in ``window.statuses``."""


def watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


def open_page(browser, url: str, script: str | None = None, **options):
    """A new page (``options`` as Playwright takes them) at ``url`` with ``script`` run before
    the page's own, drawn, with its console errors collected in the list returned."""
    page = browser.new_page(**options)
    errors: list[str] = []
    watch(page, errors)
    if script:
        page.add_init_script(script)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page, errors


def test_the_page_draws_the_overview_and_the_charts_offline(browser, server):
    shapes, errors = drawn_charts(browser, server + "/", "body[data-ready=true]")
    assert errors == []
    assert len(shapes) == 2 and min(shapes) > 0  # history with forecast, hour-of-week heatmap


def test_every_volume_on_the_page_names_its_currency(browser, server):
    page, errors = open_page(browser, server + "/")
    def expected(row: int) -> str:  # the next day's expected volume of a row
        return page.inner_text(f"#overview tbody tr:nth-child({row}) td:nth-child(4)")

    assert expected(1).endswith(" BTC") and expected(2).endswith(" ETH")
    page.select_option("#ov-unit", "quote")
    wait_text(page, "#overview tbody tr:nth-child(2) td:nth-child(4)", " USDT")
    assert expected(1).endswith(" USDT")
    page.wait_for_function("document.querySelector('#history-chart').textContent"
                           ".includes('volume (BTC per candle)')")
    assert errors == []
    page.close()


def add_candle(store: CandleStore) -> None:
    """A new BTC/USDT candle closes, as a fetch job or `volcast fetch` stores it."""
    key = SeriesKey("binance", "BTC/USDT", "1h")
    last = store.read(key).iloc[[-1]].assign(timestamp=lambda f: f["timestamp"] + 3_600_000)
    store.upsert(key, last)


def test_the_page_refreshes_itself_when_new_candles_arrive(browser, server, store):
    page, errors = open_page(browser, server + "/?refresh=1")
    assert "2024-07-31 23:00" in page.inner_text("#overview tbody tr:first-child")
    add_candle(store)
    wait_text(page, "#overview tbody tr:first-child", "2024-08-01 00:00")
    page.wait_for_function(  # the forecast now starts after the new candle
        "() => { const d = document.getElementById('history-chart').data;"
        " return d[d.length - 1].x[0] === '2024-08-01 01:00'; }")
    assert errors == []
    page.close()


def start_slow_training(server: str, headers: dict[str, str] | None = None) -> dict:
    response = httpx.post(f"{server}/api/jobs", headers=headers, json=ETH | {
        "kind": "train", "model": "lstm", "settings": SLOW_LSTM})
    assert response.status_code == 202, response.text
    return response.json()


def test_a_failed_job_poll_stops_neither_the_refresh_nor_the_job_list(browser, server, store):
    page, errors = open_page(browser, server + "/?refresh=1", RECORD_STATUS)
    failed = []

    def fail_once(route) -> None:
        if route.request.method == "GET" and not failed:
            failed.append(route.request.url)
            route.fulfill(status=500, json={"detail": "simulated outage"})
        else:
            route.continue_()

    page.route("**/api/jobs", fail_once)
    job = start_slow_training(server)
    page.wait_for_function("() => statuses.some(s => s.includes('simulated outage'))")
    add_candle(store)
    wait_text(page, "#overview tbody tr:first-child", "2024-08-01 00:00")  # still refreshing
    row = f"#jobs tr[data-job='{job['id']}']"
    page.wait_for_selector(row)  # and still polling the jobs
    page.click(f"{row} button")
    page.wait_for_selector(f"{row}[data-state=cancelled]", timeout=120_000)
    assert len(failed) == 1
    assert [e for e in errors if "500" not in e] == []  # the browser logs the refused request
    page.close()


def test_after_a_reload_the_page_lists_running_jobs_and_cancels_them(browser, server):
    page, errors = open_page(browser, server + "/")
    job = start_slow_training(server)
    page.reload()
    row = f"#jobs tr[data-job='{job['id']}']"
    page.wait_for_selector(row)
    assert page.get_attribute(row, "data-state") in ("queued", "running")
    text = page.inner_text(row)
    assert "train lstm" in text and "binance ETH/USDT 1h" in text
    assert page.locator(f"{row} progress").count() == 1
    page.click(f"{row} button:has-text('cancel')")
    page.wait_for_selector(f"{row}[data-state=cancelled]", timeout=120_000)
    assert httpx.get(f"{server}/api/jobs/{job['id']}").json()["state"] == "cancelled"
    assert not page.is_visible(f"{row} button")
    assert errors == []
    page.close()


def test_an_overview_without_the_timeframe_names_the_stored_ones(browser, server):
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#ov-timeframe", "1d")
    page.dispatch_event("#ov-timeframe", "change")
    wait_text(page, "#overview tbody", "no stored series with timeframe 1d")
    text = page.inner_text("#overview tbody")
    assert "fetch one (button below) or `volcast fetch" in text
    assert "Stored series have timeframe 1h" in text
    assert page.locator("#overview tbody tr").count() == 1
    assert not page.is_visible("#token-box")  # no token asked where none is needed
    page.close()


class TestAnEmptyStore:
    @pytest.fixture
    def store(self, tmp_path):
        with CandleStore(tmp_path / "empty.duckdb") as empty:
            yield empty

    @pytest.fixture
    def workspace(self, store, tmp_path, simulator):
        return Workspace(store, tmp_path / "models", Settings(fetch=FAST),
                         exchange_url=simulator.url)

    def test_the_overview_says_why_and_the_form_below_fetches_a_series(self, browser, server):
        page, errors = open_page(browser, server + "/")
        text = page.inner_text("#overview tbody")
        assert "no stored series with timeframe 1h; fetch one (button below)" in text
        assert "Stored series" not in text
        page.fill("#new-symbol", "ETH/USDT")
        page.fill("#new-since", "2024-07-25")
        page.click("#job-new-fetch")
        page.wait_for_selector("#jobs tr[data-state=done]", timeout=120_000)
        wait_text(page, "#overview tbody", "binance ETH/USDT 1h")
        assert page.input_value("#series") == "binance ETH/USDT 1h"
        assert errors == []
        page.close()


class TestAServerWithAToken:
    @pytest.fixture
    def access(self):
        return Access.for_bind("127.0.0.1", ["127.0.0.1"], [], TOKEN)

    def test_the_page_asks_for_the_token_and_sends_it(self, browser, server):
        page, errors = open_page(browser, server + "/", RECORD_STATUS)
        assert page.is_visible("#token-box")
        job = start_slow_training(server, {"Authorization": f"Bearer {TOKEN}"})
        row = f"#jobs tr[data-job='{job['id']}']"
        page.wait_for_selector(row)  # reads need no token
        page.click(f"{row} button:has-text('cancel')")
        page.wait_for_function("() => statuses.some(s => s.includes('needs the API token'))")
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        page.click(f"{row} button:has-text('cancel')")
        page.wait_for_selector(f"{row}[data-state=cancelled]", timeout=120_000)
        assert page.evaluate("sessionStorage.getItem('volcast-token')") == TOKEN
        assert [e for e in errors if "401" not in e] == []  # the browser logs the refusal
        page.close()


class TestAServerWithATokenForReads:
    @pytest.fixture
    def access(self):
        return Access.for_bind("127.0.0.1", ["127.0.0.1"], [], TOKEN, token_for_reads=True)

    def test_the_page_shows_data_once_given_the_token(self, browser, server):
        page, errors = open_page(browser, server + "/")
        assert "needs its API token" in page.inner_text("#status")
        assert page.locator("#overview tbody tr").count() == 0
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        wait_text(page, "#overview tbody", "binance BTC/USDT 1h")
        wait_text(page, "#status", "forecast by")
        assert errors == []
        page.close()


def test_the_time_zone_moves_the_heatmap_and_every_time_shown(browser, server):
    page, errors = open_page(browser, server + "/?tz=Europe/Berlin")
    assert page.input_value("#tz") == "Europe/Berlin"
    wait_text(page, "#busiest", "busiest hour (Europe/Berlin), by median volume: 16:00")
    wait_text(page, "#heatmap-chart", "hour of day (Europe/Berlin)")
    assert "2024-08-01 01:00" in page.inner_text("#overview tbody tr:first-child")
    assert "last candle (Europe/Berlin)" in page.inner_text("#overview thead")

    page.select_option("#tz", "UTC")
    wait_text(page, "#busiest", "busiest hour (UTC), by median volume: 14:00")
    wait_text(page, "#heatmap-chart", "hour of day (UTC)")
    wait_text(page, "#overview tbody tr:first-child", "2024-07-31 23:00")
    assert page.url.endswith("?tz=UTC")
    assert errors == []
    page.close()


def test_selecting_a_series_and_training_shows_progress_until_done(browser, server, workspace):
    page, errors = open_page(browser, server + "/", viewport={"width": 1280, "height": 900})
    assert page.locator("#overview tbody tr").count() == 2
    assert "(stale)" in page.inner_text("#overview tbody tr:first-child")

    page.click("#overview tbody tr:nth-child(2)")  # ETH/USDT
    page.wait_for_function("document.querySelector('#history-chart').textContent"
                           ".includes('ETH/USDT on binance')")  # redrawn for the chosen series
    assert page.input_value("#series") == "binance ETH/USDT 1h"

    workspace.settings.backtest.test_days = 7  # a quick backtest
    page.select_option("#model", "lstm")
    wait_text(page, "#status", "not trained")

    def tiny_settings(route) -> None:  # the page's POST gets small LSTM settings; GETs pass
        if route.request.method != "POST":
            route.continue_()
            return
        route.continue_(post_data=route.request.post_data.replace(
            '"model":"lstm"', f'"model":"lstm","settings":{_json(TINY_LSTM)}'))

    page.route("**/api/jobs", tiny_settings)
    page.click("#job-train")
    page.wait_for_selector("#jobs:not([hidden])")
    page.wait_for_selector("#jobs tr[data-state=done]", timeout=120_000)
    wait_text(page, "#status", "forecast by lstm")  # the page redrew with the new model
    wait_text(page, "#history-chart", "q10-q90")
    assert page.evaluate("document.querySelector('#jobs tr progress').value") >= 1

    page.click("#job-backtest")
    page.wait_for_function("document.querySelectorAll('#backtests tbody tr').length >= 6",
                           timeout=120_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert errors == []
    page.close()


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => document.querySelector(s).textContent.includes(t)",
                           arg=[selector, text])


def _json(value: dict) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
