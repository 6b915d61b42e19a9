"""alternative.me, CBOE and FRED downloads against the macro simulator: faults retried,
FRED's pages, resume, bad payloads (one line, exit 2, store unchanged), the API key never
shown."""

import asyncio
import gzip
import json
from collections import Counter

import pandas as pd
import pytest
from aiohttp import web

from volcast.data.covariates import macro, table
from volcast.data.sample import exogenous_file
from volcast.data.store import CandleStore
from volcast.data.timeframe import parse_time
from volcast.simulator.macro import FAULTS, MacroConfig, running
from volcast.simulator.server import serving

from ...conftest import FAST
from ...test_cli import assert_one_line_error

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
JULY = parse_time("2024-07-01")


def shared(name):
    with gzip.open(exogenous_file(name)) as handle:
        return pd.read_csv(handle)


def fetch(db, url, source, series=(), page=macro.FRED_PAGE, settings=FAST):
    with CandleStore(db) as store:
        return asyncio.run(macro.fetch(store, source, settings, url, series, KEY, page))


def stored(db, name):
    with CandleStore(db) as store:
        return table.read(store, name)


@pytest.fixture
def env_key(monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", KEY)


@pytest.fixture
def cut(tmp_path):
    """A simulator folder whose files end with June 2024."""
    for name in ("fear_greed", "vix"):
        frame = shared(name)
        frame[frame["timestamp"] < JULY].to_csv(tmp_path / f"{name}.csv", index=False)
    return tmp_path


def test_all_three_at_a_thirty_percent_fault_rate_equal_the_source(db):
    config = MacroConfig(fail_rate=0.3, seed=5, retry_after_s=0, stall_s=1.5)
    with running(config) as sim:
        fetch(db, sim.url, "fear_greed")
        fetch(db, sim.url, "vix")
        fetch(db, sim.url, "fred", ["VIXCLS", "DGS10"], page=100)
    assert sum(v for k, v in sim.stats.items() if k.startswith("fault:") and " " not in k) > 5
    fear, vix = shared("fear_greed"), shared("vix")
    assert stored(db, "fear_greed")["ts"].tolist() == fear["timestamp"].tolist()
    assert stored(db, "fear_greed")["value"].tolist() == fear["value"].tolist()
    assert stored(db, "vix")["value"].tolist() == vix["close"].tolist()
    fred = stored(db, "fred:VIXCLS")  # FRED's VIXCLS is the close of every day that has one
    assert fred["ts"].tolist() == vix["timestamp"].tolist()
    assert fred["value"].tolist() == vix["close"].round(2).tolist()
    assert fred["published_ms"].iloc[-1] == parse_time("2024-08-01T22:00Z")
    assert len(stored(db, "fred:DGS10")) == len(vix)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_kind_is_retried(db, fault):
    config = MacroConfig(fail_rate=0.5, seed=2, faults=(fault,), retry_after_s=0, stall_s=1.5)
    with running(config) as sim:
        fetch(db, sim.url, "fear_greed")
        fetch(db, sim.url, "fred", ["VIXCLS"], page=1000)
    assert sim.stats[f"fault:{fault}"] > 0
    assert len(stored(db, "fear_greed")) == 2370 and len(stored(db, "fred:VIXCLS")) == 1923


@pytest.mark.parametrize("page", [7, 1953, 1954, 1955])
def test_fred_pages_neither_skip_nor_repeat(db, page, cut):
    with running(MacroConfig(cut)) as sim:  # 1954 weekdays to June 2024
        [download] = fetch(db, sim.url, "fred", ["DTWEXBGS"], page=page)
    assert download.sent == 1954
    assert sim.stats["/fred/series/observations"] == -(-1954 // page)
    with gzip.open(exogenous_file("vix")) as handle:
        days = pd.read_csv(handle)["timestamp"]
    assert stored(db, "fred:DTWEXBGS")["ts"].tolist() == days[days < JULY].tolist()


def test_a_rerun_asks_only_for_what_is_newer(db, cut):
    with running(MacroConfig(cut)) as sim:
        first = fetch(db, sim.url, "fred", ["VIXCLS"]) + fetch(db, sim.url, "fear_greed") + fetch(
            db, sim.url, "vix")
    with running(MacroConfig()) as sim:
        again = fetch(db, sim.url, "fred", ["VIXCLS"]) + fetch(db, sim.url, "fear_greed") + fetch(
            db, sim.url, "vix")
        [unchanged] = fetch(db, sim.url, "fred", ["VIXCLS"])
    assert [len(d.batch.frame) for d in first] == [1900, 2339, 1900]
    july = [len(d.batch.frame) for d in again]
    assert july == [23, 31, 23]  # July 2024: 31 days, 23 weekdays (CBOE has July 4th too)
    assert again[0].sent == 23  # FRED was asked from July on
    assert again[1].sent < 2370  # alternative.me for the days since, not all of them
    assert (unchanged.sent, len(unchanged.batch.frame)) == (0, 0)
    assert len(stored(db, "vix")) == 1923 and len(stored(db, "fear_greed")) == 2370


def fng(data, metadata=None):
    return {"name": "Fear and Greed Index", "data": data, "metadata": metadata or {"error": None}}


GOOD = [{"value": "50", "timestamp": "1722384000"}, {"value": "40", "timestamp": "1722297600"}]
BAD_PAYLOADS = [
    ("fear_greed", "/fng/", fng([GOOD[0], {"value": "abc", "timestamp": "1722297600"}]),
     ["alternative.me fear & greed: row 2: value 'abc' is not a number"]),
    ("fear_greed", "/fng/", fng([{"value": "50", "timestamp": "1722384000000"}]),
     ["row 1: dated after now"]),
    ("fear_greed", "/fng/", {"data": "none"}, ["unexpected answer (no 'data' list of objects)"]),
    ("fear_greed", "/fng/", fng([], {"error": "limit too large"}),
     ["the API answered an error (limit too large)"]),
    ("vix", macro.VIX_PATH, "DATE,OPEN,HIGH,LOW,CLOSE\n07/30/2024,1,1,1,16\n2024-07-31,1,1,1,17\n",
     ["CBOE VIX_History.csv: row 2: date '2024-07-31' is not MM/DD/YYYY"]),
    ("fred", macro.FRED_PATH, {"count": 2, "observations": [
        {"date": "2024-07-30", "value": "."}, {"date": "2024-07-31", "value": "n/a"}]},
     ["FRED VIXCLS: row 2: value 'n/a' is not a number"]),
    ("fred", macro.FRED_PATH, {"observations": []}, ["no 'count' of observations"]),
]


@pytest.mark.parametrize(("source", "path", "body", "fragments"), BAD_PAYLOADS)
def test_a_bad_payload_is_one_line_and_leaves_the_store_as_it_was(cli, db, env_key, source,
                                                                    path, body, fragments):
    async def answer(request):
        if isinstance(body, str):
            return web.Response(text=body, content_type="text/csv")
        return web.json_response(body)

    app = web.Application()
    app.router.add_get(path, answer)
    with CandleStore(db) as store:
        table.write(store, [table.Batch("vix", "", "cboe", pd.DataFrame(
            {"ts": [JULY], "value": [12.0], "published_ms": [JULY]}))])
        before = table.listing(store)
    args = ["--series", "VIXCLS"] if source == "fred" else []
    with serving(app, Counter()) as server:
        result = cli("covariates", "fetch", source, *args, "--url", server.url, "--db", db)
    assert_one_line_error(result, *fragments)
    with CandleStore(db) as store:
        pd.testing.assert_frame_equal(table.listing(store), before)


def test_json_that_never_parses_gives_up_with_exit_1(cli, db):
    async def cut_short(request):
        return web.Response(text='{"data": [{"value": "5', content_type="application/json")

    app = web.Application()
    app.router.add_get("/fng/", cut_short)
    with serving(app, Counter()) as server:
        result = cli("covariates", "fetch", "fear_greed", "--url", server.url, "--db", db,
                     "--retries", "1")
    assert_one_line_error(result, "alternative.me fear & greed: gave up after 1 retries (cut "
                          "short (JSON that does not parse", code=1)


def test_the_fred_key_is_never_shown_nor_stored(cli, db, env_key, capsys):
    async def echo(request):  # a server that repeats the query (and so the key) in its error
        return web.Response(text=f"bad request: {request.query_string}", status=400)

    app = web.Application()
    app.router.add_get(macro.FRED_PATH, echo)
    results = []
    with running(MacroConfig(fred_api_key=KEY)) as sim:
        results.append(cli("covariates", "fetch", "fred", "--series", "VIXCLS,DGS10", "--url",
                           sim.url, "--db", db))
        assert results[-1].code == 0, results[-1].err
    with running(MacroConfig(fred_api_key="another-key")) as sim:
        results.append(cli("covariates", "fetch", "fred", "--series", "DGS10", "--url",
                           sim.url, "--db", db))
        assert_one_line_error(results[-1], "FRED DGS10", "HTTP 400 from 127.0.0.1",
                              "api_key is not registered")
    with running(MacroConfig(fail_rate=1.0, faults=("503",))) as sim:
        results.append(cli("covariates", "fetch", "fred", "--series", "DGS10", "--url",
                           sim.url, "--db", db, "--retries", "0"))
        assert_one_line_error(results[-1], "gave up after 0 retries (HTTP 503)", code=1)
    with serving(app, Counter()) as server:
        results.append(cli("covariates", "fetch", "fred", "--series", "DGS10", "--url",
                           server.url, "--db", db))
        assert_one_line_error(results[-1], "api_key=***")
    for result in results:
        assert KEY not in result.out + result.err
    assert KEY.encode() not in db.read_bytes()
    assert len(stored(db, "fred:DGS10")) == 1923


def test_fred_needs_a_key_and_a_series_with_a_known_release(cli, db, monkeypatch, tmp_path):
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    assert_one_line_error(cli("covariates", "fetch", "fred", "--series", "VIXCLS", "--db", db),
                          "FRED needs an API key", "FRED_API_KEY")
    monkeypatch.setenv("FRED_API_KEY", KEY)
    assert_one_line_error(cli("covariates", "fetch", "fred", "--series", "VIXCLS,CPIAUCSL",
                              "--db", db), "FRED series 'CPIAUCSL' has no publication rule")
    config = tmp_path / "volcast.toml"
    config.write_text(f'[covariates]\nfred_api_key = "{KEY}"\n[fetch]\nretries = 0\n')
    monkeypatch.delenv("FRED_API_KEY")
    with running(MacroConfig(fred_api_key=KEY)) as sim:
        result = cli("covariates", "fetch", "fred", "--series", "vixcls", "--url", sim.url,
                     "--db", db, "--config", config)
    assert result.code == 0, result.err
    assert "fred:VIXCLS: 1977 values received, 1923 new" in result.out
    assert json.loads(cli("covariates", "list", "--db", db, "--format", "json").out)[0][
        "name"] == "fred:VIXCLS"
