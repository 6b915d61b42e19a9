"""Shared fixtures: the bundled sample, a running simulator, a store, the CLI in-process."""

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from volcast.cli import main
from volcast.config import FetchSettings
from volcast.data.formats import read_candles
from volcast.data.sample import sample_dir, sample_file
from volcast.simulator import SimulatorConfig, running
from volcast.simulator.server import RunningSimulator

HOUR = 3_600_000
FAST = FetchSettings(retries=12, backoff_s=0.01, backoff_max_s=0.2, timeout_ms=1000,
                     rate_limit=False)
"""Fetch settings for tests: quick retries, no rate limiter (its own test turns it on)."""


@pytest.fixture(scope="session", autouse=True)
def one_training_thread() -> None:
    """Process-wide settings as a program sets them at entry (volcast.models.runtime): one
    torch thread, so tests that train run alike on any machine."""
    from volcast.models.runtime import configure_process

    configure_process(threads=1)


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_children() -> None:
    """A shell starts a background job (`pytest &`, nohup) with SIGINT ignored, and every
    child would inherit that and shrug off the Ctrl-C the CLI tests send it. A Python handler
    is reset to the default on exec, so the children get Ctrl-C back as a user's shell has it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_browser_loop_outside_browser_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Once the session's browser has started, Playwright's sync API leaves its event loop
    marked running in the main thread for the rest of the session, and any later test whose
    code calls asyncio.run there (every CLI download) fails with "cannot be called from a
    running event loop", depending only on test order. A test that does not use the browser
    runs with that mark cleared, and gets it back after."""
    if "browser" in request.fixturenames:
        yield
        return
    held = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(held)


@pytest.fixture(scope="session")
def btc() -> pd.DataFrame:
    """The bundled sample's BTC/USDT hourly candles, as volcast reads them."""
    return read_candles(sample_file(pair="BTC_USDT"), HOUR)


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    """A fault-free simulated Binance serving the bundled sample. Started and stopped on a
    worker thread: once Playwright's browser runs, its event loop occupies the main thread,
    and a test that needs the simulator may come after a browser test."""
    with ThreadPoolExecutor(1) as worker:
        context = running(SimulatorConfig(sample_dir()))
        yield worker.submit(context.__enter__).result()
        worker.submit(context.__exit__, None, None, None).result()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``volcast ARGS`` in-process through the real entry point (exit codes, messages)."""

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["volcast", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


CHROMIUM = Path(os.environ.get("VOLCAST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
"""Debian's Chromium on a machine with no outside network: without the background-networking
flags it keeps trying to reach Google's hosts."""


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (scripts/test.sh installs it)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `apt-get install chromium` (scripts/test.sh "
                    "does) or set VOLCAST_CHROMIUM")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def drawn_charts(browser, url: str, ready: str | None = None) -> tuple[list[int], list[str]]:
    """Open ``url`` with every request to another origin refused (and wait for the selector
    ``ready`` when the page draws later); return, for each plotly chart, how many SVG shapes it
    drew, and the page's errors (a refused request is one)."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    origin = url.split("/")[0] + "//" + url.split("/")[2]

    def refuse_elsewhere(route) -> None:
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            errors.append(f"request outside the page's origin: {route.request.url}")
            route.abort()

    page.route("**/*", refuse_elsewhere)
    page.goto(url)
    if ready:
        page.wait_for_selector(ready)
    count = page.eval_on_selector_all(".js-plotly-plot", "els => els.length")
    page.wait_for_function("n => document.querySelectorAll("
                           "'.js-plotly-plot .main-svg .overplot').length >= n", arg=count)
    shapes = page.eval_on_selector_all(
        ".js-plotly-plot", "els => els.map(e => e.querySelectorAll("
        "'.overplot path, .overplot image, .overplot rect').length)")
    page.close()
    return shapes, errors
