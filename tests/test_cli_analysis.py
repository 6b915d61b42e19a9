"""analyze / plot / report as a user runs them, and their clear errors."""

import json

import pytest

from tests.conftest import drawn_charts
from volcast.data.formats import read_candles, write_candles
from volcast.data.sample import sample_file


@pytest.fixture(scope="module")
def csv_file(btc, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "BTC_USDT-1h.csv"
    write_candles(btc.iloc[-24 * 75:], path)
    return path


@pytest.fixture(scope="module")
def quick_config(tmp_path_factory):
    """A small LSTM and a two-week test period: the report's whole path in seconds."""
    path = tmp_path_factory.mktemp("config") / "volcast.toml"
    path.write_text("[model.lstm]\nlookback = 48\nhidden_size = 8\nepochs = 1\n"
                    "train_days = 30\n\n[backtest]\ntest_days = 14\n")
    return path


def test_analyze_prints_every_section(cli, csv_file):
    result = cli("analyze", "--csv", csv_file, "--tz", "Europe/Berlin", "--top", "3")
    assert result.code == 0, result.err
    for title in ("coverage", "seasonality", "volume distribution", "by hour",
                  "by weekday", "largest spikes", "Spearman correlation"):
        assert title in result.out


def test_analyze_json_of_two_stored_pairs_has_their_shares(cli, db):
    for pair in ("BTC_USDT", "ETH_USDT"):
        cli("import", sample_file(pair=pair), "-e", "binance", "-s", pair.replace("_", "/"),
            "-t", "1h", "--db", db)
    result = cli("analyze", "-e", "binance", "-s", "BTC/USDT", "-s", "ETH/USDT", "--db", db,
                 "--format", "json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert [s["unique_id"] for s in out["series"]] == ["binance:BTC/USDT:1h",
                                                       "binance:ETH/USDT:1h"]
    assert sum(out["shares"]["overall"].values()) == pytest.approx(1.0)
    assert out["series"][0]["coverage"]["candles"] == 17_543


@pytest.mark.parametrize("kind", ["history", "heatmap"])
def test_plot_writes_png_and_html(cli, csv_file, tmp_path, kind):
    for suffix in ("png", "html"):
        path = tmp_path / f"{kind}.{suffix}"
        result = cli("plot", kind, "--csv", csv_file, "--out", path, "--relative")
        assert result.code == 0, result.err
        assert path.stat().st_size > 10_000


def test_backtest_files_feed_the_backtest_plots(cli, csv_file, tmp_path):
    out = tmp_path / "bt.csv"
    cli("backtest", "--model", "seasonal_naive_24", "--model", "hour_of_week_median_4w",
        "--csv", csv_file, "--test-days", "7", "--out", out)
    files = sorted(tmp_path.glob("bt.*.csv"))
    assert len(files) == 5  # both models and the other reference models
    args = [a for f in files for a in ("--predictions", f)]
    for kind in ("horizon", "comparison"):
        result = cli("plot", kind, *args, "--out", tmp_path / f"{kind}.png")
        assert result.code == 0, result.err
    fan = cli("plot", "fan", "--csv", csv_file, "--predictions", files[0], "--origin",
              "2024-07-31T00:00:00Z", "--out", tmp_path / "fan.png")
    assert fan.code == 0, fan.err
    calibration = cli("plot", "calibration", *args, "--out", tmp_path / "c.png")
    assert calibration.code == 2 and "no model with quantiles" in calibration.err


@pytest.mark.parametrize(("args", "message"), [
    (["plot", "pie", "--out", "x.png"], "unknown plot 'pie'"),
    (["plot", "history", "--out", "x.jpg"], "must end in .png"),
    (["plot", "horizon", "--out", "x.png"], "needs --predictions"),
    (["plot", "fan", "--out", "x.png"], "needs one --predictions file or a --model-dir"),
    (["plot", "heatmap", "--tz", "Mars/Olympus", "--out", "x.png"], "unknown time zone"),
    (["analyze", "--format", "xml"], "unknown --format 'xml'"),
    (["analyze", "--spike-k", "0"], "--spike-k must be above 0"),
    (["report", "--out", "r.pdf"], "must be an .html file"),
])
def test_bad_arguments_are_one_line_and_exit_2(cli, csv_file, tmp_path, args, message):
    result = cli(*args[:1], *args[1:], "--csv", csv_file) if args[0] != "plot" else cli(
        *args[:2], "--csv", csv_file, *args[2:])
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_a_file_that_is_not_predictions_is_refused(cli, csv_file, tmp_path):
    result = cli("plot", "horizon", "--predictions", csv_file, "--out", tmp_path / "h.png")
    assert result.code == 2 and "is not a backtest predictions file" in result.err


def test_a_report_of_two_series_in_a_time_zone_and_window(cli, csv_file, quick_config,
                                                          tmp_path):
    eth = tmp_path / "ETH_USDT-1h.csv"
    write_candles(read_candles(sample_file(pair="ETH_USDT")).iloc[-24 * 75:], eth)
    path = tmp_path / "r.html"
    result = cli("report", "--csv", csv_file, "--csv", eth, "--config", quick_config,
                 "--tz", "Asia/Tokyo", "--last", "60d", "--out", path)
    assert result.code == 0, result.err
    page = path.read_text()
    assert "volcast report: BTC_USDT-1h, ETH_USDT-1h" in page
    assert "Share of the quote volume" in page
    for name in ("BTC_USDT-1h", "ETH_USDT-1h"):
        assert f"{name}: Forecast: the next 24 candles (lstm)" in page
        assert f"{name} 2024-06-02 00:00 to 2024-07-31 23:00" in page  # the last 60 days
    assert "hours and weekdays in Asia/Tokyo" in page
    assert "busiest hour (Asia/Tokyo)" in page


def test_analyze_and_plot_take_a_time_window(cli, csv_file, tmp_path):
    result = cli("analyze", "--csv", csv_file, "--since", "2024-07-01", "--until", "2024-07-08",
                 "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["series"][0]["coverage"]["candles"] == 7 * 24
    last = json.loads(cli("analyze", "--csv", csv_file, "--last", "2w", "--format", "json").out)
    assert last["series"][0]["coverage"]["candles"] == 14 * 24
    plotted = cli("plot", "history", "--csv", csv_file, "--last", "7d", "--out",
                  tmp_path / "h.png")
    assert plotted.code == 0, plotted.err
    empty = cli("analyze", "--csv", csv_file, "--since", "2030-01-01")
    assert empty.code == 2 and "no candles in the chosen time window" in empty.err


def test_the_same_file_twice_is_refused_not_doubled(cli, csv_file, tmp_path):
    result = cli("analyze", "--csv", csv_file, "--csv", csv_file)
    assert result.code == 2 and "would both be series 'BTC_USDT-1h'" in result.err


def test_the_report_opens_offline_with_every_chart_drawn(cli, csv_file, quick_config, tmp_path,
                                                          browser):
    path = tmp_path / "report.html"
    result = cli("report", "--csv", csv_file, "--config", quick_config, "--out", path)
    assert result.code == 0, result.err
    page = path.read_text()
    for section in ("When volume comes", "Spikes", "Forecast: the next 24 candles (lstm)",
                    "hour_of_week_median_4w", "Plan capacity on q90"):
        assert section in page
    shapes, errors = drawn_charts(browser, path.as_uri())
    assert errors == []
    assert len(shapes) == 8 and min(shapes) > 0  # heatmaps x2, history, fan, 4 backtest views


def test_the_report_forecasts_with_a_given_model_folder(cli, csv_file, quick_config, tmp_path):
    model = tmp_path / "model"
    trained = cli("train", "--model", "lstm", "--csv", csv_file, "--config", quick_config,
                  "--out", model)
    assert trained.code == 0, trained.err
    path = tmp_path / "report.html"
    result = cli("report", "--csv", csv_file, "--model-dir", model, "--config", quick_config,
                 "--out", path)
    assert result.code == 0, result.err
    page = path.read_text()
    assert "Model trained on BTC_USDT-1h, candles 2024-05-18 00:00 to 2024-07-31 23:00 UTC" in page
    assert "lstm: MAE" in page  # the verdict against the best reference


@pytest.mark.parametrize(("args", "fragment"), [
    (["overview", "--timeframe", "1x"], "unsupported timeframe '1x'"),
    (["overview", "--timeframe", "100000000000000000000h"], "at most 4 weeks"),
    (["predict", "--model", "mstl", "--csv", "x.csv", "--horizon", "-5"], "--horizon"),
    (["predict", "--model", "mstl", "--csv", "x.csv", "--horizon", "0"], "--horizon"),
    (["analyze", "--csv", "x.csv", "-e", "binance", "-s", "BTC/USDT"], "not both"),
    (["analyze", "--csv", "x.csv", "--unit", "dollars"], "unknown unit 'dollars'"),
])
def test_wrong_requests_are_one_line_not_a_wrong_answer(cli, db, args, fragment):
    result = cli(*args, "--db", db)
    assert result.code == 2, result.out
    assert fragment in result.err and "Traceback" not in result.err


def test_an_unwritable_out_is_one_line(cli, csv_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    result = cli("plot", "history", "--csv", csv_file, "--out", locked / "h.png")
    locked.chmod(0o700)
    if result.code == 0:  # root ignores file modes: a file where a folder should be instead
        result = cli("plot", "history", "--csv", csv_file, "--out", csv_file / "h.png")
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.err.startswith(f"error: {locked}") or result.err.startswith(f"error: {csv_file}")
