"""Model versions: every save keeps one, a retrained model serves only when its validation
score is no worse, and a rollback serves an earlier version exactly, forecasts included."""

import filecmp
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from volcast.data.formats import read_candles
from volcast.data.sample import sample_file
from volcast.data.store import CandleStore, SeriesKey
from volcast.errors import NotFound, VolcastError
from volcast.models import load
from volcast.models.base import MANIFEST, WEIGHTS
from volcast.workspace import Workspace
from volcast.workspace.versions import KEEP_VERSIONS, RECORD

BTC, ETH = SeriesKey("binance", "BTC/USDT", "1h"), SeriesKey("binance", "ETH/USDT", "1h")
KEYS = [BTC, ETH]
GOOD = {"lookback": 48, "hidden_size": 8, "epochs": 3, "train_days": 30}
BAD = {"lookback": 24, "hidden_size": 4, "epochs": 1, "train_days": 7, "learning_rate": 1e-5,
       "features": ["volume"], "refit": False}
"""Tiny LSTMs that train in about a second: GOOD learns; BAD barely moves from its
initialisation, so on the validation window it is clearly worse (deterministic: one torch
thread, fixed seed)."""
DAYS = 45


@pytest.fixture
def space(tmp_path: Path) -> Iterator[Workspace]:
    """The newest 45 days of the sample's two pairs in a real store."""
    with CandleStore(tmp_path / "store.duckdb") as store:
        for key in KEYS:
            pair = key.symbol.replace("/", "_")
            store.upsert(key, read_candles(sample_file(pair=pair), key.tf_ms).tail(24 * DAYS))
        yield Workspace(store, tmp_path / "models")


def q50(space: Workspace, key: SeriesKey) -> list[float]:
    return space.forecast(key, "lstm")[1]["q50"].tolist()


def version_forecast(space: Workspace, key: SeriesKey, number: int) -> list[float]:
    """What the kept version forecasts from the latest candle, loaded from its own folder."""
    model = load(space.layout.versions(key, "lstm").path(number))
    return model.predict(space.long([key]), 24)["q50"].tolist()


def test_every_save_keeps_a_version_and_only_the_newest_ones(space):
    for _ in range(KEEP_VERSIONS + 2):
        space.train(KEYS, "seasonal_naive_24")
    for key in KEYS:
        history, serving = space.versions(key, "seasonal_naive_24")
        assert [v.number for v in history] == list(range(3, KEEP_VERSIONS + 3))
        assert serving == KEEP_VERSIONS + 2
        assert all(v.promoted and v.score is None for v in history)
        assert history[-1].series == ["binance:BTC/USDT:1h", "binance:ETH/USDT:1h"]
        top = space.layout.folder(key, "seasonal_naive_24")
        assert filecmp.cmp(top / MANIFEST, top / "versions" / f"{serving:04d}" / MANIFEST,
                           shallow=False)


def test_the_serving_version_is_kept_however_old(space):
    space.train(KEYS, "seasonal_naive_24")
    candidate = space.make("seasonal_naive_24")
    for _ in range(KEEP_VERSIONS + 1):
        space.layout.keep(KEYS, candidate, promote=False)
    numbers = space.layout.versions(BTC, "seasonal_naive_24").numbers()
    assert numbers == [1, *range(3, KEEP_VERSIONS + 3)]
    assert space.versions(BTC, "seasonal_naive_24")[1] == 1


def test_a_model_saved_before_versions_were_kept_becomes_version_1(space):
    old = space.make("lstm", BAD)
    old.fit(space.long(KEYS))
    old.save(space.layout.folder(BTC, "lstm"))  # as volcast saved models before
    before = q50(space, BTC)
    space.train([BTC], "lstm", GOOD)
    history, serving = space.versions(BTC, "lstm")
    assert [(v.number, v.promoted) for v in history] == [(1, True), (2, True)] and serving == 2
    assert q50(space, BTC) != before
    space.rollback(BTC, "lstm")
    assert q50(space, BTC) == before


def test_a_retrained_model_serves_only_when_it_scores_no_worse(space):
    first = space.retrain(KEYS, "lstm", 3, BAD)
    assert (first.promoted, first.version, first.serving_score) == (True, 1, None)
    better = space.retrain(KEYS, "lstm", 3, GOOD)
    assert better.promoted and better.version == 2
    assert better.candidate_score < better.serving_score == pytest.approx(first.candidate_score)
    assert "version 2 serves" in better.why
    worse = space.retrain(KEYS, "lstm", 3, BAD)
    assert not worse.promoted and worse.version == 3
    assert worse.candidate_score > worse.serving_score == pytest.approx(better.candidate_score)
    assert "version 3 is kept, not serving" in worse.why
    for key in KEYS:
        history, serving = space.versions(key, "lstm")
        assert [(v.number, v.promoted) for v in history] == [(1, True), (2, True), (3, False)]
        assert serving == 2
        assert history[2].score == pytest.approx(worse.candidate_score)
        assert history[2].validation == worse.validation
        assert q50(space, key) == version_forecast(space, key, 2)


def test_the_validation_window_is_left_out_of_training_and_scores_both_models(space):
    promotion = space.retrain(KEYS, "lstm", 3, BAD)
    last = int(space.long([BTC])["ds"].max())
    window = promotion.validation
    assert (window.days, window.last) == (3, last)
    assert window.first == last + 3_600_000 - 3 * 24 * 3_600_000
    trained = space.forecaster(BTC, "lstm").info
    assert trained["last_ds"] == window.first - 3_600_000 and trained["version"] == 1


def test_a_rollback_serves_the_earlier_version_exactly(space):
    space.retrain(KEYS, "lstm", 3, BAD)
    space.retrain(KEYS, "lstm", 3, GOOD)
    serving = q50(space, BTC)  # cached in the workspace: the rollback must replace it
    chosen = space.rollback(BTC, "lstm")
    assert chosen.number == 1
    assert q50(space, BTC) == version_forecast(space, BTC, 1) != serving
    assert q50(space, ETH) == serving_of(space, ETH)  # the other series is untouched
    top, kept = space.layout.folder(BTC, "lstm"), space.layout.versions(BTC, "lstm").path(1)
    for name in (MANIFEST, WEIGHTS):
        assert filecmp.cmp(top / name, kept / name, shallow=False)
    assert space.versions(BTC, "lstm")[1] == 1
    space.rollback(BTC, "lstm", to=2)
    assert q50(space, BTC) == serving


def serving_of(space: Workspace, key: SeriesKey) -> list[float]:
    return version_forecast(space, key, space.versions(key, "lstm")[1])


def test_rollback_refuses_what_it_cannot_serve_in_one_line(space):
    with pytest.raises(NotFound, match="no kept versions of lstm for binance BTC/USDT 1h"):
        space.rollback(BTC, "lstm")
    space.train(KEYS, "lstm", BAD)
    with pytest.raises(VolcastError, match=r"no promoted version before the serving one \(1\)"):
        space.rollback(BTC, "lstm")
    with pytest.raises(NotFound, match="no version 7 of lstm for binance BTC/USDT 1h; kept: 1"):
        space.rollback(BTC, "lstm", to=7)
    with pytest.raises(NotFound, match="no stored candles for binance DOGE/USDT 1h"):
        space.rollback(SeriesKey("binance", "DOGE/USDT", "1h"), "lstm")


def test_a_damaged_version_record_is_one_line(space):
    space.train([BTC], "seasonal_naive_24")
    record = space.layout.versions(BTC, "seasonal_naive_24").path(1) / RECORD
    record.write_text(json.dumps({"number": "one"}))
    with pytest.raises(VolcastError, match=f"{record}: setting 'number'"):
        space.versions(BTC, "seasonal_naive_24")


@pytest.mark.parametrize(("keys", "days", "message"), [
    (KEYS, 0.5, "a validation window of 0.5 days holds fewer 1h candles than one forecast"),
    ([BTC, SeriesKey("binance", "ETH/USDT", "4h")], 3, "of one timeframe, not 1h, 4h"),
])
def test_retraining_refuses_a_window_it_cannot_score(space, keys, days, message):
    with pytest.raises(VolcastError, match=message):
        space.retrain(keys, "lstm", days, BAD)
    assert space.layout.trained(BTC) == []

