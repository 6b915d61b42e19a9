"""The application layer as every entry point meets it: what one entry point makes, the
others find; the same flows, settings and comparisons everywhere."""

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import BTC, ETH, TINY_LSTM, wait_for_job
from volcast.config import Settings
from volcast.data import totals
from volcast.data.store import SeriesKey
from volcast.errors import VolcastError
from volcast.web.app import create_app
from volcast.workspace import Workspace
from volcast.workspace.flows import compared, versus
from volcast.workspace.sources import Window, key_of, series_id

BTC_KEY, ETH_KEY = SeriesKey(**BTC), SeriesKey(**ETH)
TINY_FLAGS = ["--lookback", "48", "--hidden-size", "8", "--epochs", "1", "--train-days", "30"]


def test_a_model_trained_by_the_cli_is_found_by_predict_overview_and_the_api(cli, store):
    path = store.path
    store.close()
    trained = cli("train", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "-s",
                  "ETH/USDT", "--db", path, *TINY_FLAGS)
    assert trained.code == 0, trained.err
    predicted = cli("predict", "--model", "lstm", "-e", "binance", "-s", "ETH/USDT", "--db",
                    path, "--format", "json")
    assert predicted.code == 0, predicted.err
    assert len(json.loads(predicted.out)) == 24
    rows = json.loads(cli("overview", "--db", path, "--model", "lstm", "--format", "json").out)
    assert [r["forecast"] is not None for r in rows] == [True, True]
    with Workspace.open(path, read_only=True) as space, \
            TestClient(create_app(space)) as client:
        body = client.get("/api/forecast", params=ETH | {"model": "lstm"}).json()
        assert body["trained"]["series"] == ["binance:BTC/USDT:1h", "binance:ETH/USDT:1h"]
        assert [s["trained"] for s in client.get("/api/series").json()] == [["lstm"], ["lstm"]]


def test_the_dashboard_trains_the_global_model_the_cli_trains(client, workspace):
    """One job for BTC learns from every stored series of the timeframe, as `volcast train -s
    BTC/USDT -s ETH/USDT` does, and serves both."""
    job = wait_for_job(client, client.post("/api/jobs", json=BTC | {
        "kind": "train", "settings": TINY_LSTM}).json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["result"]["training"]["series"] == ["binance:BTC/USDT:1h", "binance:ETH/USDT:1h"]
    for key in (BTC_KEY, ETH_KEY):
        assert workspace.layout.trained(key) == ["lstm"]


def test_serve_config_model_settings_reach_dashboard_jobs(store, tmp_path):
    settings = Settings(model={"lstm": TINY_LSTM | {"hidden_size": 6}})
    space = Workspace(store, tmp_path / "models", settings)
    with TestClient(create_app(space)) as client:
        job = wait_for_job(client, client.post("/api/jobs", json=BTC | {
            "kind": "train", "settings": {"epochs": 2}}).json()["id"])
    assert job["state"] == "done", job["error"]
    saved = json.loads((space.layout.folder(BTC_KEY, "lstm") / "model.json").read_text())
    assert saved["settings"]["hidden_size"] == 6  # from the config file
    assert saved["settings"]["epochs"] == 2  # the job's own settings win


def test_every_model_that_needs_no_training_is_served(client):
    from volcast.models import MODEL_NAMES, model_class

    for name in MODEL_NAMES:
        answer = client.get("/api/forecast", params=BTC | {"model": name})
        if model_class(name).needs_fitting:
            assert answer.status_code == 404
        else:
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["forecast"]) == 24


def test_what_a_backtest_compares():
    assert compared(["lstm"]) == ["lstm"]
    assert compared(["lstm", "lstm"]) == ["lstm"]
    both = compared(["lstm", "mstl"])
    assert both[:2] == ["lstm", "mstl"] and "hour_of_week_median_4w" in both and len(both) == 7
    assert versus("lstm") == both
    assert versus("mstl")[0] == "mstl" and versus("mstl").count("mstl") == 1


def test_the_overview_of_an_empty_timeframe_says_why(workspace):
    assert workspace.overview("4h", "hour_of_week_median_4w", None) == []
    assert workspace.why_empty("4h") == "no stored series with timeframe 4h; the store holds 1h"


def test_candle_pages_are_limited_in_the_store(store):
    frame = store.read(BTC_KEY, limit=3)
    assert len(frame) == 3 and frame["timestamp"].is_monotonic_increasing


def test_series_ids_name_their_stored_series_and_files_none():
    key = SeriesKey("binance", "BTC/USDT:USDT", "1h")
    assert key_of(series_id(key)) == key
    assert key_of("BTC_USDT-1h") is None


def long_frame(hours: int) -> pd.DataFrame:
    ds = 1_700_000_000_000 // 3_600_000 * 3_600_000 + 3_600_000 * pd.RangeIndex(hours)
    return pd.DataFrame({"unique_id": "s", "ds": ds, "y": 1.0})


def test_time_windows_cut_each_series():
    long = long_frame(24 * 10)
    assert len(Window.parse(None, None, "2d").cut(long)) == 48
    first = int(long["ds"].iloc[24])
    cut = Window.parse(str(first), str(first + 5 * 3_600_000), None).cut(long)
    assert cut["ds"].tolist() == long["ds"].iloc[24:29].tolist()


@pytest.mark.parametrize(("since", "until", "last", "message"), [
    ("2024-01-01", None, "90d", "--since or --last"),
    (None, None, "ninety", "bad --last 'ninety'"),
    ("2024-02-01", "2024-01-01", None, "--until must come after --since"),
])
def test_bad_time_windows_are_one_line(since, until, last, message):
    with pytest.raises(VolcastError, match=message):
        Window.parse(since, until, last)


def test_a_window_without_candles_is_an_error():
    with pytest.raises(VolcastError, match="no candles in the chosen time window"):
        Window.parse("2030-01-01", None, None).cut(long_frame(48))


def test_a_point_model_has_no_p90_and_the_overview_says_so(workspace):
    row = workspace.overview("1h", "hour_of_week_median_4w", 0.0)[0]
    assert row["forecast"]["expected_volume"] > 0
    assert row["forecast"]["p90_volume"] is None and row["forecast"]["peak_p90"] is None
    assert row["forecast"]["share_over_threshold"] is None
    assert "gives no interval, so no p90" in row["note"]
    with_interval = workspace.overview("1h", "mstl", 0.0)[0]
    assert with_interval["forecast"]["p90_volume"] > with_interval["forecast"]["expected_volume"]
    assert with_interval["note"] is None


def test_the_next_day_is_a_day_on_any_timeframe(workspace, store):
    hourly = store.read(BTC_KEY).tail(24 * 90)
    four_hours = hourly.groupby(hourly["timestamp"] // 14_400_000 * 14_400_000).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), volume=("volume", "sum")).reset_index(names="timestamp")
    store.upsert(SeriesKey("binance", "BTC/USDT", "4h"), four_hours)
    day = workspace.overview("4h", "mstl", None)[0]["forecast"]
    assert (day["candles"], day["hours"]) == (6, 24)


def test_a_forecast_shorter_than_a_day_says_how_far_it_reaches():
    from volcast.workspace.core import next_day

    frame = pd.DataFrame({"ds": [0, 60_000], "q10": [1.0, 1.0], "q50": [2.0, 2.0],
                          "q90": [3.0, 5.0]})
    row = next_day(frame, 2, 1440, 60_000, 4.0, "lstm")
    assert row["forecast"] | {} == {"candles": 2, "hours": 2 / 60, "from": 0,
                                    "expected_volume": 4.0, "p90_volume": 8.0, "peak_p90": 5.0,
                                    "share_over_threshold": 0.5}
    assert row["note"].startswith("covers the next 2 candles")


def test_training_keeps_the_series_stored_backtest(workspace):
    """The demo backtests the LSTM, then saves it: both must stay for the dashboard."""
    results = workspace.backtest(BTC_KEY, ["seasonal_naive_24"])
    workspace.layout.save_model([BTC_KEY], results[0].forecaster)
    assert workspace.layout.trained(BTC_KEY) == ["seasonal_naive_24"]
    assert [name for name, _, _ in workspace.backtests(BTC_KEY)] == ["seasonal_naive_24"]


def test_a_markets_model_never_learns_from_an_exchange_total(workspace, store):
    """Building a total must not change what a market's global model learns; the total's own
    model learns from the markets too."""
    totals.build(store, BTC["exchange"], "USDT", BTC["timeframe"])
    total = SeriesKey(BTC["exchange"], "*/USDT", BTC["timeframe"])
    assert total in workspace.keys(BTC["timeframe"])
    assert total not in workspace.learns_with(SeriesKey(**BTC))
    assert set(workspace.learns_with(total)) == {total, SeriesKey(**BTC), SeriesKey(**ETH)}
    # --all and --top choose among markets: a total is not one (it would rank first)
    assert total not in workspace.markets(BTC["exchange"], BTC["timeframe"])
    assert total not in workspace.markets(BTC["exchange"], BTC["timeframe"], top=1)
