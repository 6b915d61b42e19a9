"""The dashboard in headless Chromium against a real server on 127.0.0.1: it loads with no
console errors, selecting a series draws its charts, a job shows its progress until done.
A screenshot is written to $VOLCAST_ARTIFACTS (default: test-artifacts/)."""

import os
from pathlib import Path

from tests.conftest import drawn_charts
from tests.web.conftest import TINY_LSTM

ARTIFACTS = Path(os.environ.get("VOLCAST_ARTIFACTS", "test-artifacts"))


def watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


def test_the_page_draws_the_overview_and_the_charts_offline(browser, server):
    shapes, errors = drawn_charts(browser, server + "/", "body[data-ready=true]")
    assert errors == []
    assert len(shapes) == 2 and min(shapes) > 0  # history with forecast, hour-of-week heatmap


def test_the_page_refreshes_itself_when_new_candles_arrive(browser, server, store):
    from volcast.data.store import SeriesKey

    page = browser.new_page()
    errors: list[str] = []
    watch(page, errors)
    page.goto(server + "/?refresh=1")
    page.wait_for_selector("body[data-ready=true]")
    assert "2024-07-31 23:00" in page.inner_text("#overview tbody tr:first-child")
    key = SeriesKey("binance", "BTC/USDT", "1h")
    last = store.read(key).iloc[[-1]].assign(timestamp=lambda f: f["timestamp"] + 3_600_000)
    store.upsert(key, last)  # a new candle closes, as a fetch job or `volcast fetch` stores it
    wait_text(page, "#overview tbody tr:first-child", "2024-08-01 00:00")
    page.wait_for_function(  # the forecast now starts after the new candle
        "() => { const d = document.getElementById('history-chart').data;"
        " return d[d.length - 1].x[0] === '2024-08-01T01:00:00+00:00'; }")
    assert errors == []
    page.close()


def test_selecting_a_series_and_training_shows_progress_until_done(browser, server, workspace):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    watch(page, errors)
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#overview tbody tr").count() == 2
    assert "(stale)" in page.inner_text("#overview tbody tr:first-child")

    page.click("#overview tbody tr:nth-child(2)")  # ETH/USDT
    page.wait_for_function("document.querySelector('#history-chart').textContent"
                           ".includes('ETH/USDT on binance')")  # redrawn for the chosen series
    assert page.input_value("#series") == "binance ETH/USDT 1h"

    workspace.protocol = workspace.protocol.model_copy(update={"test_days": 7})
    page.select_option("#model", "lstm")
    wait_text(page, "#status", "not trained")
    page.route("**/api/jobs", lambda route: route.continue_(
        post_data=route.request.post_data.replace('"model":"lstm"', '"model":"lstm",'
                                                  f'"settings":{_json(TINY_LSTM)}')))
    page.click("#job-train")
    page.wait_for_selector("#job:not([hidden])")
    page.wait_for_selector("#job[data-state=done]", timeout=120_000)
    wait_text(page, "#status", "forecast by lstm")  # the page redrew with the new model
    wait_text(page, "#history-chart", "q10-q90")
    assert page.evaluate("document.querySelector('#job-progress').value") >= 1

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
