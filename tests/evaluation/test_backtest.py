"""The backtest emits exactly the protocol's rows, without look-ahead, and scores them right."""

import numpy as np
import pandas as pd
import pytest

from volcast.data.frames import on_grid, to_long
from volcast.errors import VolcastError
from volcast.evaluation.backtest import PREDICTION_COLUMNS, backtest, default_cutoff
from volcast.evaluation.scores import naive_scale, score
from volcast.models import create
from volcast.models.lstm.windows import sound_ends

from ..models.conftest import TINY, H, hand_made

DAY = 24 * H


@pytest.fixture(scope="module")
def series(btc):
    return to_long(btc.iloc[-24 * 100:].reset_index(drop=True), "btc")  # 100 days


def test_rows_and_origins_follow_the_protocol(series):
    result = backtest(create("seasonal_naive_24"), series)
    p = result.predictions
    last = int(series["ds"].iloc[-1])
    cutoff = last + H - 60 * DAY
    assert result.cutoff == cutoff == default_cutoff(series["ds"], H, 60)
    assert list(p.columns) == PREDICTION_COLUMNS
    assert sorted(p["origin"].unique()) == [cutoff + k * DAY for k in range(60)]
    assert len(p) == 60 * 24 and p["step"].tolist() == list(range(1, 25)) * 60
    assert (p["timestamp"] == p["origin"] + (p["step"] - 1) * H).all()
    actual = series.set_index("ds")["y"]
    assert (p["y_true"].to_numpy() == actual.reindex(p["timestamp"]).to_numpy()).all()
    assert p["q10"].isna().all()


def test_origins_stop_when_a_full_horizon_no_longer_remains(series):
    cutoff = int(series["ds"].iloc[-1]) - 30 * H  # 31 candles left: one origin, not two
    p = backtest(create("seasonal_naive_24"), series, cutoff=cutoff).predictions
    assert p["origin"].unique().tolist() == [cutoff]


@pytest.mark.parametrize("name", ["hour_of_week_median_4w", "mstl", "lstm"])
def test_changing_candles_after_an_origin_does_not_change_its_forecast(series, name):
    settings = TINY | {"horizon": 24} if name == "lstm" else None
    cutoff = int(series["ds"].iloc[-1]) + H - 3 * DAY
    first = backtest(create(name, settings), series, cutoff=cutoff)
    origin = cutoff + DAY
    tampered = series.copy()
    tampered.loc[tampered["ds"] >= origin, ["y", "high"]] *= 50
    second = backtest(create(name, settings), tampered, cutoff=cutoff)
    mine = first.predictions["origin"] <= origin
    pd.testing.assert_frame_equal(
        first.predictions.loc[mine, ["origin", "y_pred", "q10", "q90"]],
        second.predictions.loc[mine, ["origin", "y_pred", "q10", "q90"]])
    assert not first.predictions["y_true"].equals(second.predictions["y_true"])


@pytest.mark.parametrize("name", ["lstm", "ensemble"])
def test_all_origins_at_once_forecast_as_one_predict_per_origin(series, name, monkeypatch):
    """The neural models' fast path (``predict_origins``) near gaps too: one candle missing
    just before an origin, two within the 28 days the first origins' windows read."""
    settings = TINY | {"horizon": 24} | ({"gbm_rounds": 20} if name == "ensemble" else {})
    cutoff = int(series["ds"].iloc[-1]) + H - 10 * DAY
    gaps = [cutoff + 6 * DAY - H, cutoff - 25 * DAY, cutoff - 25 * DAY + H]
    holed = series[~series["ds"].isin(gaps)].reset_index(drop=True)
    model = create(name, settings)
    at_once = backtest(model, holed, cutoff=cutoff).predictions
    neural = getattr(model, "lstm", model)  # the ensemble's windows are its LSTM's
    origins = np.sort(at_once["origin"].unique())
    _, shared = sound_ends(on_grid(holed, H), origins, H, neural.inputs.reach(H), neural.s.lookback,
                           [])
    assert shared.tolist() == [False] * 4 + [True] * 2 + [False] * 4  # both ways are used
    monkeypatch.setattr(model, "predict_origins", lambda *args: None)
    one_by_one = backtest(model, holed, cutoff=cutoff, fit=False).predictions
    pd.testing.assert_frame_equal(at_once, one_by_one, rtol=1e-6)


def test_a_gap_just_before_an_origin_is_filled_and_never_scored():
    series = hand_made(40 * 24)
    cutoff = 30 * DAY
    holed = series[~series["ds"].isin([cutoff - H, cutoff + 2 * H])]
    p = backtest(create("seasonal_naive_24"), holed, cutoff=cutoff, test_days=10).predictions
    first = p[p["origin"] == cutoff]
    assert np.isnan(first["y_true"].iloc[2])
    assert first["y_pred"].iloc[0] == 29000.0  # day 29 hour 0, not shifted by the gap


def test_scores_on_hand_made_predictions():
    predictions = pd.DataFrame({
        "origin": 0, "timestamp": [0, H, 2 * H, 3 * H], "step": [1, 2, 3, 4],
        "y_true": [10.0, 20.0, 0.0, np.nan], "y_pred": [12.0, 20.0, 0.0, 5.0],
        "q10": [8.0, 21.0, 0.0, 1.0], "q90": [13.0, 25.0, 1.0, 9.0]})
    overall = score(predictions, scale=2.0)["overall"]
    assert overall["n"] == 3  # the missing actual is not scored
    assert overall["mae"] == pytest.approx(2 / 3)
    assert overall["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert overall["smape"] == pytest.approx(100 * (2 * 2 / 22) / 3)
    assert overall["mase"] == pytest.approx(1 / 3)
    assert overall["coverage"] == pytest.approx(2 / 3)
    q10 = np.mean([0.1 * 2, 0.9 * 1, 0])  # y above q10 costs 0.1 per unit, below 0.9
    q50 = np.mean([0.5 * 2, 0, 0])
    q90 = np.mean([0.1 * 3, 0.1 * 5, 0.1 * 1])  # y below q90 costs 0.1 per unit
    pinball = np.mean([q10, q50, q90])
    assert overall["pinball"] == pytest.approx(pinball)


def test_mase_scale_is_the_in_sample_24_step_naive_error():
    train = hand_made(10 * 24)  # y(t) - y(t - 24) = 1000 everywhere
    assert naive_scale(train, H) == 1000.0


def test_bad_cutoffs(series):
    with pytest.raises(VolcastError, match="no training data"):
        backtest(create("seasonal_naive_24"), series, cutoff=int(series["ds"].iloc[0]))
    with pytest.raises(VolcastError, match="less than one full horizon"):
        backtest(create("seasonal_naive_24"), series, cutoff=int(series["ds"].iloc[-1]))
    with pytest.raises(VolcastError, match="not on the series' timeframe grid"):
        backtest(create("seasonal_naive_24"), series, cutoff=int(series["ds"].iloc[-100]) + 1)


def test_the_verdict_says_plainly_when_a_model_loses_to_the_reference():
    from types import SimpleNamespace

    from volcast.evaluation.compare import verdicts
    from volcast.models import create

    def result(model, mae):
        return SimpleNamespace(model=model, scores={"overall": {"mae": mae}},
                               forecaster=create(model))

    lines = verdicts([result("lstm", 90.0), result("mstl", 120.0),
                      result("seasonal_naive_24", 130.0), result("hour_of_week_median_4w", 100.0)])
    assert lines == [
        "lstm: MAE 90.00, 10.0% below the best reference model (hour_of_week_median_4w, 100.00)",
        "mstl: MAE 120.00, 20.0% ABOVE (worse than) the best reference model "
        "(hour_of_week_median_4w, 100.00): it does not beat the seasonal reference"]
    assert verdicts([result("lstm", 1.0)]) == []  # nothing to compare with


def test_references_that_cannot_reach_the_horizon_are_left_out_unless_asked_for():
    from volcast.config import Settings
    from volcast.workspace.flows import backtest_frames

    daily = hand_made(24 * 400).iloc[::24].assign(unique_id="d")  # 400 daily candles
    settings = Settings()
    results = backtest_frames(settings, ["seasonal_naive_24", "seasonal_naive_168"], None,
                              daily)
    assert [r.model for r in results] == ["seasonal_naive_24", "seasonal_naive_168"]
    with pytest.raises(VolcastError, match="at most 1 candles ahead"):
        backtest_frames(settings, ["seasonal_naive_24", "hour_of_day_median_7d"], None, daily)
