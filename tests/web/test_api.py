"""The HTTP API with a real DuckDB file holding the bundled sample."""

import io
import json

import pandas as pd
import pytest

from tests.web.conftest import BTC, ETH, TINY_LSTM, wait_for_job


def test_health_and_the_stored_series(client):
    assert client.get("/health").json() == {"status": "ok", "version": "0.1.0", "series": 2}
    series = client.get("/api/series").json()
    assert [(s["symbol"], s["rows"], s["trained"]) for s in series] == [
        ("BTC/USDT", 17543, []), ("ETH/USDT", 17543, [])]


def test_candle_pages_cover_the_series_once(client, store):
    seen, start, pages = [], 0, 0
    while start is not None:
        page = client.get("/api/candles", params=BTC | {"start": start, "limit": 5000}).json()
        seen += [c["timestamp"] for c in page["candles"]]
        start, pages = page["next_start"], pages + 1
    assert pages == 4 and len(seen) == len(set(seen)) == 17543
    assert page["candles"][-1]["timestamp_time"] == "2024-07-31T23:00:00+00:00"
    window = client.get("/api/candles", params=BTC | {"start": seen[10], "end": seen[13]}).json()
    assert [c["timestamp"] for c in window["candles"]] == seen[10:13]


@pytest.mark.parametrize("path", ["/api/candles", "/api/forecast", "/api/analysis",
                                  "/api/backtests"])
def test_an_unknown_series_is_404_with_a_message(client, path):
    answer = client.get(path, params=BTC | {"symbol": "DOGE/USDT"})
    assert answer.status_code == 404
    assert "no stored candles for binance DOGE/USDT 1h" in answer.json()["detail"]


@pytest.mark.parametrize("params", [
    BTC | {"limit": 0}, BTC | {"limit": 5001}, BTC | {"symbol": "BTCUSDT"},
    BTC | {"timeframe": "7x"}, BTC | {"exchange": "Bin ance"}, BTC | {"start": -1}])
def test_bad_parameters_are_422(client, params):
    answer = client.get("/api/candles", params=params)
    assert answer.status_code == 422 and answer.json()["detail"]


def test_bad_model_zone_and_threshold_are_422(client):
    assert client.get("/api/forecast", params=BTC | {"model": "prophet"}).status_code == 422
    assert client.get("/api/analysis", params=BTC | {"tz": "Mars/Base"}).status_code == 422
    assert client.get("/api/analysis", params=BTC | {"tz": "Factory"}).status_code == 422  # 500
    assert client.get("/api/overview", params={"threshold": -1}).status_code == 422
    assert client.get("/api/jobs/nothex").status_code == 422
    assert client.get("/api/jobs/abc123").status_code == 404


def test_a_body_with_nan_or_a_huge_value_is_422_without_echoing_it(client):
    """A NaN in a refused field once made the 422 itself unserialisable (a 500)."""
    answer = client.post("/api/jobs", content='{"kind": NaN, "exchange": "binance", "symbol": '
                         '"BTC/USDT"}', headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-1] == "kind"
    long = client.post("/api/jobs", json={"kind": "x" * 5000, "exchange": "binance",
                                          "symbol": "BTC/USDT"})
    assert long.status_code == 422 and len(long.text) < 1000


def test_a_reference_forecast_as_json_and_as_csv(client):
    params = BTC | {"model": "hour_of_week_median_4w"}
    body = client.get("/api/forecast", params=params).json()
    assert len(body["forecast"]) == 24 and body["forecast"][0]["time"] == \
        "2024-08-01T00:00:00+00:00"
    assert body["forecast"][0]["q10"] is None  # a point model: no interval, null not NaN
    by_header = client.get("/api/forecast", params=params, headers={"Accept": "text/csv"})
    by_query = client.get("/api/forecast", params=params | {"format": "csv"})
    assert by_header.headers["content-type"].startswith("text/csv")
    assert by_header.text == by_query.text
    frame = pd.read_csv(io.StringIO(by_query.text))
    assert frame["q50"].tolist() == pytest.approx([r["q50"] for r in body["forecast"]])


def test_the_lstm_needs_training_first(client):
    answer = client.get("/api/forecast", params=BTC | {"model": "lstm"})
    assert answer.status_code == 404 and "POST /api/jobs" in answer.json()["detail"]


def test_the_analysis_is_the_cli_json(client):
    body = client.get("/api/analysis", params=BTC | {"tz": "Europe/Berlin"}).json()
    one = body["series"][0]
    assert one["coverage"]["candles"] == 17543 and one["seasonality"]["tz"] == "Europe/Berlin"


def test_the_overview_shows_stale_data_and_the_threshold_share(client):
    rows = client.get("/api/overview", params={"threshold": 0}).json()
    assert [r["symbol"] for r in rows] == ["BTC/USDT", "ETH/USDT"]
    btc = rows[0]
    assert btc["stale"] is True and btc["age_s"] > 365 * 86400  # the sample ends in 2024
    assert btc["forecast"]["candles"] == 24 and btc["forecast"]["share_over_threshold"] == 1.0
    assert btc["forecast"]["p90_volume"] >= btc["forecast"]["expected_volume"] > 0
    untrained = client.get("/api/overview", params={"model": "lstm"}).json()[0]
    assert untrained["forecast"] is None and "no trained lstm" in untrained["note"]
    assert client.get("/api/overview", params={"timeframe": "4h"}).json() == []


def test_train_then_forecast_with_intervals_and_a_fresh_overview(client):
    start = client.post("/api/jobs", json=BTC | {"kind": "train", "settings": TINY_LSTM})
    assert start.status_code == 202
    job = wait_for_job(client, start.json()["id"])
    assert job["state"] == "done", job["error"]
    assert job["total"] >= 1 and job["message"].startswith("epoch")
    assert client.get("/api/series").json()[0]["trained"] == ["lstm"]
    rows = client.get("/api/forecast", params=BTC | {"model": "lstm"}).json()["forecast"]
    assert all(r["q10"] <= r["q50"] <= r["q90"] for r in rows)
    overview = client.get("/api/overview", params={"model": "lstm", "threshold": 1e12}).json()
    assert overview[0]["forecast"]["share_over_threshold"] == 0.0
    assert overview[1]["forecast"] is not None  # one global model: ETH learned too


def test_a_second_job_for_a_series_is_409_and_cancel_ends_it(client, workspace):
    long_training = TINY_LSTM | {"epochs": 200, "patience": 100, "refit": False}
    first = client.post("/api/jobs", json=BTC | {"kind": "train", "settings": long_training})
    again = client.post("/api/jobs", json=BTC | {"kind": "backtest"})
    assert again.status_code == 409 and "already running" in again.json()["detail"]
    other = client.post("/api/jobs", json=ETH | {"kind": "backtest",
                                                 "model": "seasonal_naive_24"})
    assert other.status_code == 202
    job_id = first.json()["id"]
    assert client.delete(f"/api/jobs/{job_id}").status_code == 200
    assert wait_for_job(client, job_id)["state"] == "cancelled"
    assert not workspace.layout.folder(workspace_key(), "lstm").exists()  # nothing half-saved
    wait_for_job(client, other.json()["id"])


def workspace_key():
    from volcast.data.store import SeriesKey

    return SeriesKey(**BTC)


def test_too_many_jobs_is_429(workspace):
    from fastapi.testclient import TestClient

    from volcast.web.app import create_app

    with TestClient(create_app(workspace, max_jobs=1)) as one_job:
        slow = TINY_LSTM | {"epochs": 200, "patience": 100, "refit": False}
        first = one_job.post("/api/jobs", json=BTC | {"kind": "train", "settings": slow})
        second = one_job.post("/api/jobs", json=ETH | {"kind": "train", "settings": slow})
        assert second.status_code == 429
        one_job.delete(f"/api/jobs/{first.json()['id']}")
        wait_for_job(one_job, first.json()["id"])


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"kind": "train", "settings": {"epochs": 0}}, 422, "setting 'lstm.epochs'"),
    ({"kind": "train", "settings": {"colour": "red"}}, 422, "colour"),
    ({"kind": "train", "symbol": "DOGE/USDT"}, 404, "no stored candles"),
    ({"kind": "dance"}, 422, ""),
    ({"kind": "fetch", "since": "yesterday-ish"}, 422, ""),
])
def test_bad_job_requests_are_refused_up_front(client, body, status, message):
    answer = client.post("/api/jobs", json=BTC | body)
    assert answer.status_code == status
    assert message in str(answer.json()["detail"])
    assert client.get("/api/jobs").json() == []


def test_a_backtest_job_compares_with_mstl_and_every_reference(client):
    start = client.post("/api/jobs", json=BTC | {"kind": "backtest",
                                                 "model": "hour_of_day_median_7d"})
    job = wait_for_job(client, start.json()["id"], timeout=300)
    assert job["state"] == "done" and job["done"] == job["total"] == 60
    listed = client.get("/api/backtests", params=BTC).json()
    assert sorted(b["model"] for b in listed) == [
        "hour_of_day_median_28d", "hour_of_day_median_7d", "hour_of_week_median_4w", "mstl",
        "seasonal_naive_168", "seasonal_naive_24"]
    assert {b["origins"] for b in listed} == {60}
    one = client.get("/api/backtests", params=BTC | {"model": "hour_of_week_median_4w"}).json()
    assert one[0]["scores"]["mae"] == pytest.approx(532.33, abs=0.01)  # docs/forecasting.md
    assert one[0]["scores"]["coverage"] is None
    frame = pd.read_csv(io.StringIO(client.get("/api/backtests",
                                               params=BTC | {"format": "csv"}).text))
    assert len(frame) == 6 * 60 * 24
    assert list(frame.columns) == ["origin", "timestamp", "step", "y_true", "y_pred", "q10",
                                   "q90", "model"]


def test_a_fetch_job_downloads_from_the_exchange_simulator(tmp_path, simulator):
    from fastapi.testclient import TestClient

    from volcast.data.store import CandleStore
    from volcast.web.app import create_app
    from volcast.workspace import Workspace

    with CandleStore(tmp_path / "empty.duckdb") as store, TestClient(create_app(
            Workspace(store, tmp_path / "models", exchange_url=simulator.url))) as fresh:
        assert fresh.get("/api/overview").json() == []
        assert fresh.get("/health").json()["series"] == 0
        start = fresh.post("/api/jobs", json=ETH | {"kind": "fetch", "since": "2024-07-01"})
        job = wait_for_job(fresh, start.json()["id"])
        assert job["state"] == "done", job["error"]
        assert fresh.get("/health").json()["series"] == 1  # counted again when the job ended
        assert job["result"]["added"] == 31 * 24
        assert [s["rows"] for s in fresh.get("/api/series").json()] == [31 * 24]
        unknown = fresh.post("/api/jobs", json=ETH | {"kind": "fetch", "symbol": "SOL/USDT"})
        failed = wait_for_job(fresh, unknown.json()["id"])
        assert failed["state"] == "failed"
        assert "does not list symbol 'SOL/USDT'" in failed["error"]


def test_the_cli_overview_shows_what_the_dashboard_shows(cli, store, tmp_path):
    path = store.path
    store.close()
    as_json = cli("overview", "--db", path, "--threshold", "0", "--format", "json")
    assert as_json.code == 0, as_json.err
    rows = json.loads(as_json.out)
    assert [r["symbol"] for r in rows] == ["BTC/USDT", "ETH/USDT"]
    assert rows[0]["stale"] and rows[0]["forecast"]["share_over_threshold"] == 1.0
    table = cli("overview", "--db", path)
    assert table.code == 0
    assert "(stale)" in table.out and "binance ETH/USDT 1h" in table.out
    untrained = json.loads(cli("overview", "--db", path, "--model", "lstm", "--format",
                               "json").out)
    assert untrained[0]["note"].startswith("no trained lstm for binance BTC/USDT 1h")
    assert cli("overview", "--db", path, "--model", "nope").code == 2
