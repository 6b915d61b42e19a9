"""The LSTM: it learns, it is reproducible, it round-trips, and it refuses bad settings."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from volcast.errors import VolcastError
from volcast.models import create, load
from volcast.models.base import FitStopped
from volcast.models.lstm import train as train_module

from .conftest import TINY

SAVED_BY_0_1_0 = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "lstm-0.1.0"
FORECAST_0_1_0 = {  # what volcast 0.1.0 forecast with that model for ``recent``
    "q10": [468.20761, 348.84460, 405.50143, 381.21414, 264.21887, 293.95813],
    "q50": [925.68488, 830.29504, 974.46899, 778.39044, 655.19989, 674.75659],
    "q90": [1710.0270, 1597.2471, 1899.0889, 1565.5131, 1522.5614, 1351.2493]}


@pytest.fixture(scope="module")
def trained(recent):
    model = create("lstm", TINY | {"epochs": 6})
    model.fit(recent)
    return model


def test_a_tiny_lstm_learns(trained):
    losses = [h["train"] for h in trained.history]
    assert losses[-1] < losses[0]
    assert trained.info["fingerprint"] and trained.info["series"] == ["btc"]


def test_forecast_shape_order_and_positivity(trained, recent):
    f = trained.predict(recent, 6)
    last = recent["ds"].iloc[-1]
    assert f["ds"].tolist() == [last + k * 3_600_000 for k in range(1, 7)]
    assert (f["q10"] <= f["q50"]).all() and (f["q50"] <= f["q90"]).all()
    assert (f["q10"] >= 0).all()


def test_same_seed_same_model(recent, trained):
    again = create("lstm", TINY | {"epochs": 6})
    again.fit(recent)
    np.testing.assert_array_equal(again.predict(recent, 6)[["q10", "q50", "q90"]].to_numpy(),
                                  trained.predict(recent, 6)[["q10", "q50", "q90"]].to_numpy())


def test_save_load_round_trips_to_identical_forecasts(trained, recent, tmp_path):
    trained.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["model"] == "lstm" and manifest["versions"]["torch"] == torch.__version__
    assert not list(tmp_path.glob("m/*.pkl")) and (tmp_path / "m" / "weights.safetensors").exists()
    loaded = load(tmp_path / "m")
    assert loaded.predict(recent, 6).equals(trained.predict(recent, 6))


def test_global_model_on_two_series(recent):
    other = recent.assign(unique_id="btc_x3", y=recent["y"] * 3)
    model = create("lstm", TINY | {"epochs": 1})
    model.fit(pd.concat([recent, other]))
    f = model.predict(pd.concat([recent, other]), 6)
    assert sorted(f["unique_id"].unique()) == ["btc", "btc_x3"]
    # per-window scaling: three times the volume, three times the forecast
    q50 = {uid: part["q50"].to_numpy() for uid, part in f.groupby("unique_id")}
    ratio = q50["btc_x3"] / q50["btc"]
    np.testing.assert_allclose(ratio, 3, rtol=0.02)


def test_other_quantiles_are_supported(recent):
    model = create("lstm", TINY | {"epochs": 1, "quantiles": [0.05, 0.5, 0.95]})
    model.fit(recent)
    f = model.predict(recent, 6)
    assert (f["q5"] <= f["q50"]).all() and (f["q50"] <= f["q95"]).all()
    assert f["q10"].isna().all()


@pytest.mark.parametrize(("settings", "message"), [
    ({"quantiles": [0.1, 0.9]}, "include 0.5"),
    ({"quantiles": [0.5, 1.2]}, "between 0 and 1"),
    ({"features": ["range"]}, "must include volume"),
    ({"features": ["volume", "sentiment"]}, "lstm.features"),
    ({"epochs": 0}, "lstm.epochs"),
    ({"dropout": 1.0}, "lstm.dropout"),
    ({"hidden": 8}, "lstm.hidden"),
    ({"device": "tpu"}, "lstm.device"),
    ({"threads": 1}, "lstm.threads"),  # retired: runtime.configure_process sets threads
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(VolcastError, match=message) as info:
        create("lstm", settings)
    assert "\n" not in str(info.value)


def test_too_little_history_is_a_clear_error(recent):
    with pytest.raises(VolcastError, match="too little history"):
        create("lstm", TINY).fit(recent.iloc[:60])


def test_horizon_beyond_training_is_refused(trained, recent):
    with pytest.raises(VolcastError, match="forecasts at most 6 candles ahead"):
        trained.predict(recent, 7)


def test_damaged_model_folders_fail_clearly(trained, tmp_path):
    with pytest.raises(VolcastError, match="not a volcast model folder"):
        load(tmp_path)
    trained.save(tmp_path / "m")
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(VolcastError, match="damaged weights"):
        load(tmp_path / "m")
    trained.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["state"]["net"]["hidden"] = 16
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(VolcastError, match=r"state\.net\.hidden is 16; the settings ask for 8"):
        load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(VolcastError, match="is damaged"):
        load(tmp_path / "m")


def test_a_seed_ensemble_averages_its_members_and_round_trips(recent, tmp_path):
    model = create("lstm", TINY | {"epochs": 1, "members": 2})
    model.fit(recent)
    assert len(model.nets) == 2 and {h["member"] for h in model.history} == {0, 1}
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["state"]["members"] == 2
    assert load(tmp_path / "m").predict(recent, 6).equals(model.predict(recent, 6))


def test_refit_trains_again_on_every_window(recent):
    with_refit = create("lstm", TINY | {"epochs": 2})
    without = create("lstm", TINY | {"epochs": 2, "refit": False})
    with_refit.fit(recent)
    without.fit(recent)
    assert with_refit.scales == without.scales  # calibrated on the same held-out windows
    assert not with_refit.predict(recent, 6).equals(without.predict(recent, 6))


def test_a_model_saved_by_volcast_0_1_0_loads_and_forecasts_as_it_did(recent):
    saved = json.loads((SAVED_BY_0_1_0 / "model.json").read_text())
    assert saved["settings"]["threads"] == 1  # a retired setting, dropped when loading
    model = load(SAVED_BY_0_1_0)
    forecast = model.predict(recent, 6)
    for column, expected in FORECAST_0_1_0.items():
        np.testing.assert_allclose(forecast[column], expected, rtol=1e-6)
    assert model.info["series"] == ["btc"]


def test_daily_candles_train_and_forecast(recent):
    """One candle per day: the 'one day back' input is the candle just before each forecast
    step, which for steps after the first lies beyond the origin and must stay masked."""
    daily = recent.iloc[::24].reset_index(drop=True)  # hourly closes every 24 h: a daily grid
    daily = pd.concat([daily] * 3, ignore_index=True).assign(
        ds=lambda f: f["ds"].iloc[0] + 86_400_000 * np.arange(len(f)))
    model = create("lstm", TINY | {"lookback": 30, "train_days": None})
    model.fit(daily)
    forecast = model.predict(daily, 6)
    assert len(forecast) == 6 and (forecast["q50"] > 0).all()
    assert (forecast["ds"].diff().dropna() == 86_400_000).all()


def test_a_model_without_calendar_inputs_forecasts(recent):
    model = create("lstm", TINY | {"epochs": 1, "features": ["volume", "range"]})
    model.fit(recent)
    assert len(model.predict(recent, 6)) == 6


def test_progress_counts_every_epoch_of_every_phase_and_member_once(recent):
    """base.EpochProgress: epochs 1, 2, 3, ... over early stopping, refit and both members,
    against a total that starts at the most the fit can take and only shrinks."""
    calls = []
    model = create("lstm", TINY | {"epochs": 8, "patience": 1, "members": 2, "refit": True})
    model.fit(recent, lambda epoch, total, train, val: calls.append((epoch, total)))
    epochs, totals = [e for e, _ in calls], [t for _, t in calls]
    assert epochs == list(range(1, len(calls) + 1))
    assert all(1 <= e <= t for e, t in calls)
    assert totals[0] == 2 * 2 * 8 and totals == sorted(totals, reverse=True)
    assert [e / t for e, t in calls] == sorted(e / t for e, t in calls)
    assert epochs[-1] == totals[-1] < totals[0]  # early stopping shortened this fit
    refits = sum(min((h for h in model.history if h["member"] == m), key=lambda h: h["val"])
                 ["epoch"] for m in (0, 1))
    assert len(calls) == len(model.history) + refits


def test_training_leaves_the_process_thread_count_alone(recent):
    before = torch.get_num_threads()
    create("lstm", TINY | {"epochs": 1}).fit(recent)
    assert torch.get_num_threads() == before


class StopDuring:
    """A ``base.StoppableProgress`` whose stop is asked for while the ``at``-th batch runs (from
    inside its loss, as a cancel arrives mid-batch); counts the losses computed (batches run,
    training and validation)."""

    def __init__(self, monkeypatch, at: int) -> None:
        self.at, self.batches, self.stop = at, 0, False
        real = train_module.pinball

        def counting(*args):
            self.batches += 1
            self.stop = self.stop or self.batches == self.at
            return real(*args)

        monkeypatch.setattr(train_module, "pinball", counting)

    def __call__(self, epoch, total, train, val) -> None:
        pass

    def should_stop(self) -> bool:
        return self.stop


@pytest.mark.parametrize("at", [1, 3, 18, 19, 45, 100, 147])
def test_a_stop_takes_effect_before_the_next_batch(recent, monkeypatch, at):
    """Here each member runs 2 epochs of 17 training and 2 validation batches, then a refit
    of 2 x 18 (148 in all): a stop asked for in the first batch, mid-epoch, in validation, in
    the refit, in the second member and in the last batch but one."""
    progress = StopDuring(monkeypatch, at)
    model = create("lstm", TINY | {"epochs": 2, "members": 2})
    with pytest.raises(FitStopped):
        model.fit(recent, progress)
    assert progress.batches == at  # the batch in flight ends; no other one starts
    assert not model.is_fitted


def test_a_plain_progress_function_never_stops_a_fit(recent):
    model = create("lstm", TINY | {"epochs": 1})
    model.fit(recent, lambda *call: None)
    assert model.is_fitted


def test_adam_is_torch_adam():
    """train.Adam (made without torch.optim, see its docstring) updates weights exactly as
    torch.optim.Adam does."""
    from volcast.models.lstm.network import NetConfig, VolumeLSTM, pinball

    def weights(optimiser):
        torch.manual_seed(0)
        net = VolumeLSTM(NetConfig(7, 6, [0.1, 0.5, 0.9], 8, 1, 0.1))
        step = optimiser(net)
        data = torch.Generator().manual_seed(1)
        for _ in range(20):
            past, future = torch.randn(16, 48, 7, generator=data), torch.randn(16, 6, 9,
                                                                              generator=data)
            loss = pinball(net(past, future), torch.randn(16, 6, generator=data),
                           torch.tensor([0.1, 0.5, 0.9]))
            net.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            step.step()
        return net.state_dict()

    ours = weights(lambda net: train_module.Adam(list(net.parameters()), 2e-3))
    torchs = weights(lambda net: torch.optim.Adam(net.parameters(), lr=2e-3))
    assert all(torch.equal(ours[k], torchs[k]) for k in torchs)


def test_micro_batches_sum_to_the_whole_batchs_gradient():
    """micro_batch (less training memory) changes the gradient only by rounding; without
    dropout, whose masks each slice draws anew."""
    from volcast.models.lstm.network import NetConfig, VolumeLSTM

    torch.manual_seed(0)
    net = VolumeLSTM(NetConfig(7, 6, [0.1, 0.5, 0.9], 8, 1, 0.0))
    batch = {"past": torch.randn(40, 48, 7), "future": torch.randn(40, 6, 9),
             "target": torch.randn(40, 6)}
    quantiles = torch.tensor([0.1, 0.5, 0.9])

    def gradient(micro):
        net.zero_grad()
        loss = train_module._backward(net, batch, quantiles, micro, 40)
        return loss, torch.cat([p.grad.flatten() for p in net.parameters()])

    (whole, expected), (sliced, summed) = gradient(None), gradient(16)  # 16 + 16 + 8
    assert sliced == pytest.approx(whole, rel=1e-5)
    torch.testing.assert_close(summed, expected, rtol=1e-4, atol=1e-6)
    assert gradient(64)[1].equal(expected)  # one slice: the plain gradient


@pytest.mark.parametrize("step", [3_600_000, 86_400_000, 604_800_000])  # 1h, 1d, 1w
def test_a_batch_from_many_series_is_each_series_windows(step):
    """A training batch's windows are made in one call on every series end to end
    (``windows.Pool``); each window is the one its own series alone makes: no seasonal lag
    or normalisation reaches into the series before it (the short one starts a week late, so
    its 28-day lags must stay empty where the series before it has candles). The pool holds
    only the rows the windows read (series 0's first 328 are left out: its first window ends
    at 1000, and reads 28 days of hours back; at 1d and 1w the lags count 28 rows back, and
    the lookback reaches further), and refuses a window outside them."""
    from volcast.models.lstm.settings import NeuralSettings
    from volcast.models.lstm.windows import (
        Pool,
        SeriesArrays,
        context_rows,
        make_windows,
        window_batch,
    )

    rng = np.random.default_rng(3)
    lengths = (2000, 400, 700)
    arrays = [SeriesArrays(rng.normal(size=(n, 3)).astype(np.float32),
                           rng.normal(size=(n, 4)).astype(np.float32), step)
              for n in lengths]
    settings = NeuralSettings(lookback=24, horizon=24)
    pairs = np.array([[2, 650], [0, 1500], [1, 24], [2, 100], [0, 1976], [1, 300], [0, 1000]])
    pool = Pool.of(arrays, [(n, pairs[pairs[:, 0] == n, 1]) for n in range(3)], 24)
    reach = context_rows(24, step)  # a week's lags: 4 weeks of hours, 28 days, 28 weeks
    assert reach == {3_600_000: 28 * 24, 86_400_000: 28, 604_800_000: 28}[step]
    assert pool.skipped.tolist() == [1000 - reach, 0, max(0, 100 - reach)]
    assert len(pool.arrays.raw) == sum(lengths) - pool.skipped.sum()
    with pytest.raises(ValueError, match="outside its series"):
        window_batch(pool, np.array([[0, 999]]), settings)
    batch = window_batch(pool, pairs, settings)
    ordered = pairs[np.argsort(pairs[:, 0], kind="stable")]  # grouped by series, order kept
    for row, (series, end) in enumerate(ordered):
        alone = make_windows(arrays[series], np.array([end]), 24, 24)
        for key, value in alone.items():
            np.testing.assert_array_equal(batch[key][row], value[0], err_msg=key)
