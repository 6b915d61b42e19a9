"""Each plot kind shows the numbers it claims and writes a real picture."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from tests.analysis.conftest import HOUR, calendar_volume, series
from tests.conftest import drawn_charts
from volcast.errors import VolcastError
from volcast.viz import charts as c
from volcast.viz import save


def every_kind(history: pd.DataFrame, runs: dict[str, pd.DataFrame]) -> dict[str, c.Chart]:
    forecast = pd.DataFrame({"ds": history["ds"].iloc[-1] + HOUR * np.arange(1, 25),
                             "q10": 50.0, "q50": 100.0, "q90": 150.0})
    return {"history": c.history_chart(history, "BTC"),
            "heatmap": c.heatmap_chart(history, "BTC"),
            "heatmap_relative": c.heatmap_chart(history, "BTC", relative=True),
            "shares": c.shares_chart(pd.concat([history, history.assign(unique_id="ETH")])),
            "fan": c.fan_chart(history, forecast, "BTC"),
            "origin_fan": c.origin_fan(history, runs["good"], "BTC"),
            "horizon": c.horizon_chart(runs), "comparison": c.comparison_chart(runs),
            "calibration": c.calibration_chart(runs)}


def test_every_kind_writes_a_png_that_is_not_one_colour(history, runs, tmp_path):
    for kind, chart in every_kind(history, runs).items():
        path = tmp_path / f"{kind}.png"
        save(chart, path)
        pixels = imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600, kind
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10, kind


def test_every_kind_as_html_draws_in_a_browser_offline(history, runs, tmp_path, browser):
    for kind, chart in every_kind(history, runs).items():
        path = tmp_path / f"{kind}.html"
        save(chart, path)
        shapes, errors = drawn_charts(browser, path.as_uri())
        assert errors == [], kind
        assert len(shapes) == 1 and shapes[0] > 0, kind


def test_horizon_and_comparison_use_the_mae_of_each_step(runs):
    horizon = {t.name: t for t in c.horizon_chart(runs).traces}
    assert horizon["good"].y == pytest.approx([0.5 * s for s in range(1, 25)])
    assert horizon["naive"].y[23] == pytest.approx(24.0)
    bars = c.comparison_chart(runs).traces[0]
    assert bars.x == ["good", "naive"] and bars.y == pytest.approx([6.25, 12.5])


def test_calibration_plots_the_share_below_each_quantile(runs):
    chart = c.calibration_chart(runs)
    assert [t.name for t in chart.traces] == ["perfect calibration",
                                              "good (q10-q90 covers 100%)"]  # naive: no q
    # y_true = pred + 0.5 step: above the median every time, inside +/-15 up to step 30
    assert chart.traces[1].y == pytest.approx([0.0, 0.0, 1.0])


def test_shares_need_several_series_and_draw_each_one(history):
    with pytest.raises(VolcastError, match="several series"):
        c.shares_chart(history)
    two = pd.concat([history, history.assign(unique_id="ETH", high=30.0, low=30.0, close=30.0)])
    lines = c.shares_chart(two).traces
    assert [t.name for t in lines] == ["BTC", "ETH"]
    assert lines[1].y == pytest.approx([0.75] * 6)  # quote volume: volume x typical price


def test_calibration_without_any_quantiles_is_a_clear_error(runs):
    with pytest.raises(VolcastError, match="no model with quantiles"):
        c.calibration_chart({"naive": runs["naive"]})


def test_the_relative_heatmap_reads_through_a_level_change():
    volume = calendar_volume(8, {14: 3.0})
    volume[24 * 7 * 4:] *= 10  # the level jumps tenfold after four weeks
    chart = c.heatmap_chart(series(volume), "s", relative=True)
    z = chart.traces[0].z
    assert z.shape == (7, 24)
    assert z[:, 14] == pytest.approx(3.0) and z[:, 3] == pytest.approx(1.0)
    absolute = c.heatmap_chart(series(volume), "s").traces[0].z
    assert absolute[2, 14] > 1000  # the absolute view is dominated by the high months


def test_local_time_moves_the_heatmap_and_says_so(history):
    chart = c.heatmap_chart(history, "BTC", tz="Asia/Tokyo")
    assert "Asia/Tokyo" in chart.title
    assert np.nanargmax(chart.traces[0].z[0]) == 23  # 14:00 UTC is 23:00 in Tokyo


def test_a_heatmap_of_daily_candles_is_refused_clearly():
    daily = series(np.full(60, 100.0)).assign(ds=lambda f: f["ds"] * 0 + 1_704_067_200_000
                                              + 86_400_000 * np.arange(60))
    with pytest.raises(VolcastError, match="needs candles shorter than a day"):
        c.heatmap_chart(daily, "d")


def test_the_history_marks_the_spikes():
    volume = 100 + np.random.default_rng(0).normal(0, 3, 24 * 20)
    volume[24 * 10 + 3] = 10_000
    chart = c.history_chart(series(volume), "BTC")
    marked = chart.traces[1]
    assert marked.name == "spikes (1)" and marked.y == [10_000]


def test_a_forecast_fan_without_quantiles_has_no_band(history):
    forecast = pd.DataFrame({"ds": history["ds"].iloc[-1] + HOUR * np.arange(1, 4),
                             "q10": np.nan, "q50": 1.0, "q90": np.nan})
    kinds = [t.kind for t in c.fan_chart(history, forecast, "x").traces]
    assert kinds == ["line", "line"]


def test_an_unknown_origin_and_suffix_are_refused(history, runs, tmp_path):
    with pytest.raises(VolcastError, match="no forecast from origin 5"):
        c.origin_fan(history, runs["good"], "BTC", origin=5)
    with pytest.raises(VolcastError, match=r"must end in \.png"):
        save(c.horizon_chart(runs), tmp_path / "x.jpg")
    assert not Path(tmp_path / "x.jpg").exists()
