"""The command line as a user meets it: one-line errors with exit 2, no tracebacks, no damage."""

import gzip
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from volcast.data.formats import read_candles, write_candles
from volcast.data.sample import sample_dir, sample_file
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import parse_time
from volcast.simulator import SimulatorConfig, running

BTC = SeriesKey("binance", "BTC/USDT", "1h")
HOUR = 3_600_000
JULY = parse_time("2024-07-01")


@pytest.fixture
def filled(db, cli):
    """A store holding the sample's ETH/USDT, imported through the CLI."""
    result = cli("import", sample_file(pair="ETH_USDT"), "-e", "binance", "-s", "ETH/USDT",
                 "-t", "1h", "--db", db)
    assert result.code == 0, result.err
    assert "17543 candles read, 17543 new" in result.out
    return db


def test_an_import_over_stored_candles_says_how_many_it_replaced(cli, filled, tmp_path):
    revised = read_candles(sample_file(pair="ETH_USDT"), HOUR).tail(3)
    revised = revised.assign(volume=revised["volume"] * 2)
    write_candles(revised, tmp_path / "revised.csv")
    result = cli("import", tmp_path / "revised.csv", "-e", "binance", "-s", "ETH/USDT", "-t",
                 "1h", "--db", filled)
    assert result.code == 0, result.err
    assert "3 candles read, 0 new, 3 stored candles replaced with the file's other values" in \
        result.out


@pytest.fixture(scope="module")
def two_timeframes(tmp_path_factory):
    """A simulated Binance serving July 2024 of BTC/USDT and ETH/USDT in 1h and 4h candles."""
    folder = tmp_path_factory.mktemp("venue") / "binance"
    folder.mkdir()
    for pair in ("BTC_USDT", "ETH_USDT"):
        hourly = read_candles(sample_file(pair=pair), HOUR)
        hourly = hourly[hourly["timestamp"] >= JULY].reset_index(drop=True)
        four = hourly.groupby(hourly["timestamp"] // (4 * HOUR) * (4 * HOUR)).agg(
            open=("open", "first"), high=("high", "max"), low=("low", "min"),
            close=("close", "last"), volume=("volume", "sum")).reset_index(names="timestamp")
        write_candles(hourly, folder / f"{pair}-1h.csv")
        write_candles(four, folder / f"{pair}-4h.csv")
    with running(SimulatorConfig(folder.parent)) as sim:
        yield sim


def assert_one_line_error(result, *fragments, code=2):
    assert result.code == code
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in lines[0]


def test_fetch_then_list_gaps_export(cli, db, simulator, tmp_path):
    result = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "-s", "ETH/USDT", "--since",
                 "2024-07-01", "--db", db, "--exchange-url", simulator.url)
    assert result.code == 0, result.err
    assert "binance BTC/USDT 1h" in result.out and "binance ETH/USDT 1h" in result.out
    listing = cli("data", "list", "--db", db)
    assert "2024-07-01 00:00" in listing.out and "2024-07-31 23:00" in listing.out
    gaps = cli("data", "gaps", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--db", db)
    assert "0 gaps, 0 missing candles" in gaps.out
    out = tmp_path / "btc.csv"
    assert cli("export", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--out", out,
               "--db", db).code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume"
    assert len(lines) == 1 + 31 * 24


def test_volcast_db_environment_variable_is_the_default_store(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("VOLCAST_DB", str(tmp_path / "env.duckdb"))
    assert cli("import", sample_file(), "-e", "binance", "-s", "BTC/USDT", "-t", "1h").code == 0
    with CandleStore(tmp_path / "env.duckdb") as store:
        assert len(store.read(BTC)) == 17543


def test_gap_listing_of_the_sample(cli, filled):
    result = cli("data", "gaps", "-e", "binance", "-s", "ETH/USDT", "-t", "1h", "--db", filled)
    assert "1 gaps, 1 missing candles" in result.out
    assert "2023-03-24 12:00" in result.out


@pytest.mark.parametrize(("args", "fragments"), [
    (["fetch", "-e", "binanse", "-s", "BTC/USDT", "--since", "2024-01-01"],
     ["unknown exchange 'binanse'", "did you mean binance"]),
    (["fetch", "-e", "binance", "-s", "BTC/USDT", "-t", "1M", "--since", "2024-01-01"],
     ["unsupported timeframe '1M'"]),
    (["fetch", "-e", "binance", "-s", "BTCUSDT", "--since", "2024-01-01"],
     ["symbol 'BTCUSDT' must be written as ccxt does"]),
    (["fetch", "-e", "binance", "-s", "BTC/USDT", "--since", "last tuesday"],
     ["bad date 'last tuesday'"]),
    (["fetch", "-e", "binance", "-s", "BTC/USDT", "--retries", "-1"],
     ["setting 'fetch.retries'"]),
    (["import", "nope.csv", "-e", "binance", "-s", "BTC/USDT", "-t", "1h"],
     ["no such file: nope.csv"]),
    (["import", "nope.csv", "-e", "binance", "-s", "*/USDT", "-t", "1h"],
     ["'*/USDT' is the total", "it is never imported"]),
    (["export", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--out", "x.csv"],
     ["no stored candles for binance BTC/USDT 1h"]),
    (["data", "gaps", "-e", "binance", "-s", "DOGE/USDT", "-t", "1h"],
     ["no stored candles for binance DOGE/USDT 1h"]),
    (["simulate-exchange", "--data", "/nonexistent"], ["no such data folder"]),
    (["simulate-exchange", "--port", "-1"], ["Invalid value for '--port'"]),
    (["simulate-macro", "--port", "99999"], ["Invalid value for '--port'"]),
    (["simulate-exchange", "--speed", "-1"], ["--speed must be 0 (a stopped clock) or more"]),
    (["simulate-exchange", "--latency-ms", "-5"],
     ["--latency-ms must be a finite number, 0 or more, not -5"]),
    (["simulate-exchange", "--speed", "inf"], ["--speed must be 0 (a stopped clock) or more"]),
    (["simulate-exchange", "--stall", "nan"], ["--stall must be a finite number, 0 or more"]),
    # click's own checks: one line as ours, not its usage block
    (["fetch", "-e", "binance", "--top", "0", "--quote", "USDT"],
     ["Invalid value for '--top'", "see volcast fetch --help"]),
    (["fetch", "-s", "BTC/USDT"], ["Missing option '--exchange'"]),
    (["nosuch"], ["No such command 'nosuch'"]),
])
def test_bad_input_is_one_line_and_exit_2(cli, filled, args, fragments):
    assert_one_line_error(cli(*args, *(["--db", filled] if args[0] in ("fetch", "import",
                                                                       "export", "data")
                                       else [])), *fragments)


def test_no_command_shows_the_help_and_exit_2(cli):
    for args in ([], ["data"]):
        result = cli(*args)
        assert result.code == 2 and "Usage: volcast" in result.err


def test_a_server_of_another_exchange_is_one_line_not_minutes_of_retries(cli, db, simulator):
    """A 404 (here: Kraken's paths asked of a Binance simulator) is no network fault."""
    assert_one_line_error(cli("fetch", "-e", "kraken", "-s", "BTC/USD", "--since", "2024-07-30",
                              "--retries", "1", "--db", db, "--exchange-url", simulator.url),
                          "kraken load markets", "404", "a server of kraken's API")


def test_symbol_or_timeframe_the_exchange_lacks(cli, filled, simulator):
    base = ["fetch", "-e", "binance", "--since", "2024-07-01", "--db", filled, "--exchange-url",
            simulator.url]
    with CandleStore(filled) as store:
        before = store.series()
    assert_one_line_error(cli(*base, "-s", "BTC/EUR"),
                          "binance does not list symbol 'BTC/EUR'; did you mean BTC/USDT?")
    assert_one_line_error(cli(*base, "-s", "btc/usdt"), "did you mean BTC/USDT")
    assert_one_line_error(cli(*base, "-s", "ETH/USDT", "-s", "DOGE/BTC"),
                          "does not list symbol 'DOGE/BTC'; it lists BTC/USDT, BTC/USDT:USDT, "
                          "ETH/USDT, ETH/USDT:USDT")
    assert_one_line_error(cli(*base, "-s", "SOL/USDT:USDT"), "'SOL/USDT:USDT'")
    assert_one_line_error(cli(*base, "-s", "BTC/USDT", "-t", "7h"), "no timeframe '7h'",
                          "1m, 3m, 5m")
    with CandleStore(filled) as store:
        pd.testing.assert_frame_equal(store.series(), before)


def test_kraken_refuses_a_symbol_it_does_not_list_alike(cli, db):
    kraken = SimulatorConfig(Path(__file__).parent / "fixtures", dialect="kraken")
    with running(kraken) as sim:
        result = cli("fetch", "-e", "kraken", "-s", "ETH/USD", "--since", "2024-07-01", "--db",
                     db, "--exchange-url", sim.url)
        listing = cli("symbols", "-e", "kraken", "--exchange-url", sim.url)
    assert_one_line_error(result, "kraken does not list symbol 'ETH/USD'; did you mean BTC/USD?")
    assert sim.stats["/0/public/OHLC"] == 0
    assert listing.code == 0 and "BTC/USD" in listing.out and "ETH/USD" not in listing.out


def test_a_listed_series_with_no_candles_says_so_rather_than_ok(cli, db, simulator):
    result = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "-t", "1d", "--since",
                 "2024-07-01", "--db", db, "--exchange-url", simulator.url)
    assert result.code == 0, result.err
    assert "no candles: binance has none in the range asked for" in result.out
    assert " ok " not in result.out


def test_a_bad_import_changes_nothing(cli, filled, tmp_path):
    with CandleStore(filled) as store:
        before = store.read(SeriesKey("binance", "ETH/USDT", "1h"))
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n1722470400000,1,2,1,1,1\n"
                   "1722474000000,1,2,1,1,oops\n")
    assert_one_line_error(cli("import", bad, "-e", "binance", "-s", "ETH/USDT", "-t", "1h",
                              "--db", filled), "bad.csv: row 2: volume 'oops' is not a number")
    with CandleStore(filled) as store:
        assert store.read(SeriesKey("binance", "ETH/USDT", "1h")).equals(before)


def test_a_foreign_database_is_refused(cli, tmp_path):
    foreign = tmp_path / "notes.duckdb"
    foreign.write_bytes(b"hello")
    assert_one_line_error(cli("data", "list", "--db", foreign), "is not a DuckDB database")
    assert foreign.read_bytes() == b"hello"


def test_unreachable_exchange_gives_up_with_exit_1(cli, db):
    result = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "--since", "2024-07-01", "--db", db,
                 "--exchange-url", "http://127.0.0.1:9", "--retries", "1", "--timeout-ms", "300")
    assert_one_line_error(result, "load markets: gave up after 1 retries", code=1)


def test_fetch_settings_from_a_config_file(cli, db, tmp_path):
    config = tmp_path / "volcast.toml"
    config.write_text("[fetch]\nretries = 1\ntimeout_ms = 300\n")
    result = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "--since", "2024-07-01", "--db", db,
                 "--exchange-url", "http://127.0.0.1:9", "--config", config)
    assert_one_line_error(result, "gave up after 1 retries", code=1)
    config.write_text("[fetch]\nretrys = 1\n")
    assert_one_line_error(cli("fetch", "-e", "binance", "-s", "BTC/USDT", "--config", config,
                              "--db", db), "setting 'fetch.retrys'")


def test_demo_runs_end_to_end_and_again_adds_nothing(cli, db):
    first = cli("demo", "--db", db, "--epochs", "1")
    assert first.code == 0, first.err
    assert "17543" in first.out
    for model in ("lstm", "mstl", "hour_of_week_median_4w", "seasonal_naive_24"):
        assert model in first.out
    assert "2024-08-01 23:00" in first.out  # the 24th forecast hour
    report = db.parent / "report.html"
    assert f"report (opens offline in any browser): {report}" in first.out.replace("\n", "")
    assert "Forecast: the next 24 candles (lstm)" in report.read_text()
    again = cli("demo", "--db", db, "--epochs", "1")
    assert again.code == 0
    assert "17543 candles, 0 new" in again.out
    with CandleStore(db) as store:
        assert len(store.series()) == 2
    # the demo's model and backtests are found by the other commands and by the dashboard
    assert f"next: `volcast serve --db {db}`" in first.out.replace("\n", "")
    rows = json.loads(cli("overview", "--db", db, "--model", "lstm", "--format", "json").out)
    assert [r["symbol"] for r in rows if r["forecast"]] == ["BTC/USDT", "ETH/USDT"]
    predicted = cli("predict", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "--db", db,
                    "--format", "csv")
    assert predicted.code == 0 and predicted.out.splitlines()[1].endswith(",BTC")
    from fastapi.testclient import TestClient

    from volcast.web.app import create_app
    from volcast.workspace import Workspace

    with Workspace.open(db, read_only=True) as space, TestClient(create_app(space)) as client:
        stored = client.get("/api/backtests", params={"exchange": "binance",
                                                      "symbol": "BTC/USDT"}).json()
        assert {"lstm", "mstl", "hour_of_week_median_4w"} <= {b["model"] for b in stored}
        assert client.get("/api/series").json()[0]["trained"] == ["lstm"]


def test_ctrl_c_keeps_what_was_stored_and_says_how_to_resume(db):
    # a distant exchange: 18 pages take seconds, so the download is still running when the
    # signal comes however slowly this process is scheduled
    with running(SimulatorConfig(sample_dir(), latency_s=0.25)) as sim:
        child = subprocess.Popen(
            [sys.executable, "-m", "volcast.cli", "fetch", "-e", "binance", "-s", "BTC/USDT",
             "--since", "2022-08-01", "--db", str(db), "--exchange-url", sim.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while sim.stats["/api/v3/klines"] < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert err.strip().splitlines() == [
        "interrupted: every stored candle is kept; run the same command to resume"]
    with CandleStore(db) as store:
        assert 0 < len(store.read(BTC)) < 17543


@pytest.mark.parametrize("series", [
    ["-s", "BTC/USDT", "-s", "ETH/USDT", "-t", "1h", "-t", "4h"],
    ["-s", "BTC/USDT", "ETH/USDT", "-t", "1h", "4h"],  # freqtrade's habit
    ["-s", "BTC/USDT,ETH/USDT", "-t", "1h,4h"],
    ["-s", "BTC/USDT", "-t", "4h", "ETH/USDT", "1h", "-s", "BTC/USDT"],
])
def test_fetch_every_symbol_in_every_timeframe(cli, db, two_timeframes, series):
    result = cli("fetch", "-e", "binance", *series, "--since", "2024-07-01", "--db", db,
                 "--exchange-url", two_timeframes.url)
    assert result.code == 0, result.err
    with CandleStore(db) as store:
        listing = store.series()
    assert listing[["symbol", "timeframe", "rows"]].values.tolist() == [
        ["BTC/USDT", "1h", 744], ["BTC/USDT", "4h", 186],
        ["ETH/USDT", "1h", 744], ["ETH/USDT", "4h", 186]]


def test_extra_values_that_are_neither_symbol_nor_timeframe_are_refused(cli, db):
    assert_one_line_error(cli("fetch", "-e", "binance", "-s", "BTC/USDT", "BTCUSDT", "--db", db),
                          "symbol 'BTCUSDT' must be written as ccxt does")
    assert_one_line_error(cli("fetch", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "1M",
                              "--db", db), "unsupported timeframe '1M'")
    assert not db.exists()


def test_the_progress_bar_ends_on_the_summarys_figures(cli, db, simulator):
    result = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "-s", "ETH/USDT", "--since",
                 "2024-06-01", "--db", db, "--exchange-url", simulator.url)
    assert result.code == 0, result.err
    for pair in ("BTC/USDT", "ETH/USDT"):
        [added] = re.findall(rf"binance {pair} 1h\s*│\s*([\d,]+)\s*│", result.out)
        [bar] = re.findall(rf"binance {pair} 1h\W+(\d+)% ([\d,]+) new", result.out)
        assert added == bar[1] == f"{61 * 24:,}"
        assert bar[0] == "100"


WIDE = pd.DataFrame({
    "series": ["binance BTC/USDT 1h", "binance ETH/USDT:USDT 1h"],
    "mean": ["1,234,567.8", "98,765.4"], "std": ["6,482.0", "123,456,789.0"],
    "p10": ["1,111.1", "2.2"], "p50": ["55,555.5", "3.3"], "p90": ["999,999.9", "-4.4%"],
    "max": ["12,345,678.9", "1.5e+03"], "first": ["2024-07-01 00:00", "2022-08-01 00:00"],
    "note": ["a long note that wraps at spaces when the console is narrow", "ok"]})


def tables():
    """(table, its columns with the figures each must show whole) for every kind of table."""
    from volcast.cli.ui import frame_table, gaps_table, results_table, series_table
    from volcast.data.sync import SyncResult

    listing = pd.DataFrame({"exchange": ["binance"] * 2, "symbol": ["BTC/USDT", "ETH/USDT:USDT"],
                            "timeframe": ["1h", "15m"], "base": ["BTC", "ETH"],
                            "quote": ["USDT", "USDT"], "rows": [17543, 1_234_567],
                            "first": [JULY, JULY], "last": [JULY + 9 * HOUR, JULY + HOUR],
                            "gaps": [1, 12_345], "missing": [1, 123_456]})
    results = [SyncResult(BTC, added=1_234_567, pages=12_345, gaps=3, missing=45_678,
                          first=JULY, last=JULY + HOUR),
               SyncResult(SeriesKey("binance", "ETH/USDT", "1h"), added=7, pages=1,
                          error="binance ETH/USDT 1h: gave up after 8 retries (RequestTimeout: "
                                "binance GET http://127.0.0.1:9/api/v3/klines timed out)")]
    gaps = pd.DataFrame({"after": [JULY], "before": [JULY + 99_999 * HOUR], "missing": [99_998],
                         "confirmed": [1_000]})
    return [
        (frame_table(WIDE, "wide figures"),
         {c: [v for v in WIDE[c] if not re.search("[a-z]", v.replace("e+", ""))]
          for c in WIDE.columns}),
        (series_table(listing), {"series": [], "rows": ["17,543", "1,234,567"],
                                 "first": ["2024-07-01 00:00"],
                                 "last": ["2024-07-01 09:00", "2024-07-01 01:00"],
                                 "gaps (missing)": ["1 (1)", "12,345 (123,456)"]}),
        (results_table(results), {"series": [], "new candles": ["1,234,567"],
                                  "requests": ["12,345"], "stored from": ["2024-07-01 00:00"],
                                  "to": ["2024-07-01 01:00"], "gaps (missing)": ["3 (45,678)"]}),
        (gaps_table(gaps), {"after": ["2024-07-01 00:00"], "before": ["2035-11-27 15:00"],
                            "missing": ["99,998"], "status": ["98,998 unfetched"]})]


def printed(table, width):
    from rich.console import Console

    console = Console(width=width, record=True)
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("number", range(4))
def test_tables_never_cut_a_figure_and_say_which_columns_they_leave_out(width, number):
    table, columns = tables()[number]
    text = printed(table, width)
    assert max(len(line) for line in text.splitlines()) <= width
    flat = " ".join(text.split())
    caption = flat.split(f"left out to fit {width} columns: ")[1] if "left out" in flat else ""
    for name, figures in columns.items():
        if name in caption.split(", "):
            assert name != next(iter(columns))  # never the first column
        else:
            for figure in figures:
                assert figure in text, (name, figure)


def test_a_wide_frame_keeps_as_many_columns_as_fit():
    assert "left out to fit 80 columns: max, first, note" in " ".join(printed(
        tables()[0][0], 80).split())
    text = printed(tables()[0][0], 160)
    assert "left out" not in text and "2022-08-01 00:00" in text
    assert "a long note that wraps" in text  # text wraps at spaces, headers too, before


def test_data_list_shows_units_and_fits_the_terminal(cli, filled, monkeypatch):
    from volcast.cli import common

    wide = cli("data", "list", "--db", filled)
    assert re.search(r"binance ETH/USDT 1h\s*│ ETH\s*│ USDT\s*│\s*17,543 │", wide.out), wide.out
    assert "volume in" in wide.out and "1 (1)" in wide.out
    monkeypatch.setattr(common.out, "width", 80)
    narrow = cli("data", "list", "--db", filled)
    assert max(len(line) for line in narrow.out.splitlines()) <= 80
    for figure in ("17,543", "2022-08-01 00:00", "2024-07-31 23:00"):
        assert figure in narrow.out
    assert "left out to fit 80 columns: gaps (missing)" in narrow.out


@pytest.mark.parametrize(("volume", "opens", "message"), [
    ("1", "4102444800000", "row 2: opens after now"),
    ("1", "9000000000000000000", "row 2: opens after now"),
    ("1", "1230000000000", "row 2: opens before 2009-01-01"),
    ("Infinity", "1722474000000", "row 2: price or volume is not a finite number"),
    ("1e308", "1722474000000", "row 2: price or volume above 1e+18"),
])
def test_import_refuses_impossible_candles_and_the_store_is_unchanged(cli, filled, tmp_path,
                                                                      volume, opens, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"timestamp,open,high,low,close,volume\n1722470400000,1,2,1,1,1\n"
                   f"{opens},1,2,1,1,{volume}\n")
    before = filled.read_bytes()
    assert_one_line_error(cli("import", bad, "-e", "binance", "-s", "ETH/USDT", "-t", "1h",
                              "--db", filled), f"bad.csv: {message}")
    assert filled.read_bytes() == before


MEASURED = """
import json, resource, sys
import ccxt, duckdb, pandas, pyarrow  # what `volcast import` loads, loaded before measuring
import volcast.data.exchange, volcast.data.formats
from volcast.cli import main
sys.argv = ["volcast", *sys.argv[1:]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB on Linux
print(json.dumps({"code": code, "grown_mb": grown / 1024}))
"""


def measured_import(*args):
    """``volcast import ARGS`` in a fresh process: exit code, stderr, and how far its peak
    memory rose above what the libraries themselves take."""
    done = subprocess.run([sys.executable, "-c", MEASURED, "import", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["code"], done.stderr, figures["grown_mb"]


def test_a_decompression_bomb_is_refused_in_little_memory(db, tmp_path):
    # 480 KB of gzip that expands to 200 MB of rows once took 3.5 GB to read whole; read as
    # a stream it stops at the bound after a few MB
    bomb = tmp_path / "BTC_USDT-1h.json.gz"
    row = b"[1704067200000,1.0,2.0,0.5,1.5,10.0],"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"[")
        for _ in range(200):
            out.write(row * (1_000_000 // len(row)))
    assert bomb.stat().st_size < 1_000_000
    code, err, grown = measured_import(bomb, "-e", "binance", "-s", "BTC/USDT", "-t", "1h",
                                       "--db", db, "--max-rows", "100000")
    assert code == 2
    assert err.strip() == ("error: BTC_USDT-1h.json.gz: more than 100,000 rows, the bound on "
                           "one file; if the file is genuine, raise it with `volcast import "
                           "--max-rows N`")
    assert grown < 100, grown  # reading it whole takes over 1,000 MB
    assert not db.exists()


def test_a_bomb_of_zeros_is_refused_in_little_memory_with_the_default_bounds(db, tmp_path):
    bomb = tmp_path / "BTC_USDT-1h.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"timestamp,open,high,low,close,volume\n")
        for _ in range(200):
            out.write(b"0" * 1_000_000)
    code, err, grown = measured_import(bomb, "-e", "binance", "-s", "BTC/USDT", "-t", "1h",
                                       "--db", db)
    assert code == 2
    assert "BTC_USDT-1h.csv.gz: a line longer than 65,536 bytes" in err
    assert len(err.strip().splitlines()) == 1
    assert grown < 100, grown  # looking for the line's end takes over 200 MB


def test_fetch_fills_the_hole_between_imported_months(cli, db, simulator, tmp_path):
    # January and March imported: fetch --since 2024-01-01 said "ok" with 0 requests and left
    # February out; now it asks for February (and the tail) and the series has no gaps
    btc = read_candles(sample_file(), HOUR)
    for month, (start, end) in {"01": ("2024-01-01", "2024-02-01"),
                                "03": ("2024-03-01", "2024-04-01")}.items():
        part = btc[(btc["timestamp"] >= parse_time(start)) & (btc["timestamp"] < parse_time(end))]
        write_candles(part, tmp_path / f"{month}.csv")
        assert cli("import", tmp_path / f"{month}.csv", "-e", "binance", "-s", "BTC/USDT", "-t",
                   "1h", "--db", db).code == 0
    asked = simulator.stats["/api/v3/klines"]
    result = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "--since", "2024-01-01", "--until",
                 "2024-04-01", "--db", db, "--exchange-url", simulator.url)
    assert result.code == 0, result.err
    assert simulator.stats["/api/v3/klines"] > asked
    assert re.search(r"binance BTC/USDT 1h\W+100% 696 new", result.out), result.out
    gaps = cli("data", "gaps", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--db", db)
    assert "0 gaps, 0 missing candles" in gaps.out
    with CandleStore(db) as store:
        assert len(store.read(BTC)) == (31 + 29 + 31) * 24


def test_gaps_say_what_the_exchange_lacks_and_repair_asks_only_once(cli, filled, simulator):
    eth = ["-e", "binance", "-s", "ETH/USDT", "-t", "1h", "--db", filled]
    before = cli("data", "gaps", *eth)
    assert ("1 gaps, 1 missing candles (0 the exchange confirmed it has none of, 1 unfetched); "
            "`volcast data repair -e binance -s ETH/USDT -t 1h` fetches them") in before.out
    assert re.search(r"2023-03-24 12:00 │ 2023-03-24 14:00 │\s+1 │ unfetched", before.out)
    asked = simulator.stats["/api/v3/klines"]
    repaired = cli("data", "repair", *eth, "--exchange-url", simulator.url)
    assert repaired.code == 0, repaired.err
    assert simulator.stats["/api/v3/klines"] - asked == 1
    assert re.search(r"binance ETH/USDT 1h\W+100% 0 new", repaired.out), repaired.out
    assert "1 missing candles (1 the exchange confirmed it has none of, 0 unfetched)" in (
        repaired.out)
    after = cli("data", "gaps", *eth)
    assert re.search(r"2023-03-24 12:00 │ 2023-03-24 14:00 │\s+1 │ exchange has none", after.out)
    assert "fetches them" not in after.out
    again = cli("data", "repair", *eth, "--exchange-url", simulator.url)
    assert again.code == 0 and simulator.stats["/api/v3/klines"] - asked == 1


def test_repair_of_a_series_never_stored_is_one_line(cli, filled, simulator):
    assert_one_line_error(cli("data", "repair", "-e", "binance", "-s", "BTC/USDT", "-t", "1h",
                              "--db", filled, "--exchange-url", simulator.url),
                          "nothing stored for binance BTC/USDT 1h, so no holes to repair")


def test_delete_says_what_it_would_delete_and_needs_yes(cli, filled):
    eth = ["-e", "binance", "-s", "ETH/USDT", "-t", "1h", "--db", filled]
    before = filled.read_bytes()
    assert_one_line_error(cli("data", "delete", *eth, "--since", "2024-07-01"),
                          "would delete 744 candles of binance ETH/USDT 1h from 2024-07-01 00:00 "
                          "to 2024-07-31 23:00 UTC; nothing deleted: add --yes to delete them")
    assert_one_line_error(cli("data", "delete", *eth, "--since", "2030-01-01", "--yes"),
                          "binance ETH/USDT 1h holds no candles from 2030-01-01 until the last; "
                          "nothing to delete")
    assert filled.read_bytes() == before
    done = cli("data", "delete", *eth, "--since", "2024-07-01", "--until", "2024-07-02", "--yes")
    assert done.code == 0, done.err
    assert ("deleted 24 candles of binance ETH/USDT 1h from 2024-07-01 00:00 to 2024-07-01 "
            "23:00 UTC") in done.out
    assert "2 gaps, 25 missing candles" in cli("data", "gaps", *eth).out
    assert cli("data", "delete", *eth, "--yes").code == 0
    assert "binance ETH/USDT" not in cli("data", "list", "--db", filled).out


def test_a_store_poisoned_before_validation_still_lists_and_can_be_cleaned(cli, filled):
    # a candle in the year 285,200,616, stored by a volcast that did not check: `data list`
    # failed for the whole store ("internal error") and export wrote 0 rows
    key = SeriesKey("binance", "ETH/USDT", "1h")
    with CandleStore(filled) as store:
        store.upsert(key, pd.DataFrame({"timestamp": [9_000_000_000_000_000_000], "open": 1.0,
                                        "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}))
    listing = cli("data", "list", "--db", filled)
    assert listing.code == 0 and "9e+18 ms" in listing.out
    done = cli("data", "delete", "-e", "binance", "-s", "ETH/USDT", "-t", "1h", "--since",
               "2100-01-01", "--yes", "--db", filled)
    assert "deleted 1 candles of binance ETH/USDT 1h from 9e+18 ms to 9e+18 ms UTC" in done.out
    assert "2024-07-31 23:00" in cli("data", "list", "--db", filled).out


def test_the_simulator_serves_the_bundled_sample_by_default():
    """README: `volcast simulate-exchange` alone stands in for Binance with the bundled data."""
    child = subprocess.Popen([sys.executable, "-m", "volcast.cli", "simulate-exchange", "--port",
                              "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        url = line.split(" at ")[1].split(" ")[0]
        with urllib.request.urlopen(f"{url}/api/v3/exchangeInfo", timeout=30) as answer:
            pairs = {s["symbol"] for s in json.loads(answer.read())["symbols"]}
        assert pairs == {"BTCUSDT", "ETHUSDT"}
    finally:
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=30)
    assert child.returncode == 0


@pytest.mark.parametrize(("args", "fragment"), [
    (["fetch", "--since", "2030-01-01"], "--since 2030-01-01 is in the future"),
    (["fetch", "--since", "2024-02-01", "--until", "2024-01-01"], "must come after --since"),
    (["data", "repair", "--since", "2030-01-01"], "is in the future"),
    (["fetch", "--since", "2024-01-01", "--until", "2024-02-01", "--follow"],
     "leave out --until"),  # it followed past it, storing candles after --until
])
def test_a_download_of_nothing_is_an_error_not_success(cli, db, args, fragment):
    command = args[:2] if args[0] == "data" else args[:1]
    rest = args[len(command):]
    assert_one_line_error(cli(*command, "-e", "binance", "-s", "BTC/USDT", "-t", "1h", *rest,
                              "--db", db, "--exchange-url", "http://127.0.0.1:9"), fragment)


def test_follow_prints_a_line_only_for_rounds_that_stored_or_failed():
    from volcast.cli.data import follow_line
    from volcast.data.sync import SyncResult

    btc, eth = SeriesKey("binance", "BTC/USDT", "1h"), SeriesKey("binance", "ETH/USDT", "1h")
    assert follow_line([SyncResult(btc), SyncResult(eth)]) is None
    line = follow_line([SyncResult(btc, added=1), SyncResult(eth, error="timed out")])
    assert line.endswith("UTC stored BTC/USDT 1h +1; failed ETH/USDT 1h: timed out")
    many = [SyncResult(SeriesKey("binance", f"C{i}/USDT", "1h"), added=2) for i in range(40)]
    assert follow_line(many).endswith("stored 80 candles in 40 series")
