"""The nowcast of the open candle: its API's contract, its saved form, and a real measurement on
a slice of Binance.US 1-minute candles (2023-03-10 .. 2023-03-21, BTC/USD and BTC/USDT)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volcast.data.timeframe import DAY_MS, timeframe_ms
from volcast.errors import VolcastError
from volcast.live.nowcast import Nowcaster, candles_of, evaluate, walk_priors
from volcast.models import create

DATA = Path(__file__).parent / "data"
HOUR_MS = timeframe_ms("1h")
QS = ("q10", "q50", "q90")


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    frames = [pd.read_csv(path).rename(columns={"timestamp": "ds", "volume": "y"}).assign(
        unique_id=path.name.split("-")[0]) for path in sorted(DATA.glob("*-1m.csv.gz"))]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def priors(minutes: pd.DataFrame) -> pd.DataFrame:
    """The hour-of-day median's forecast at each hour's open, from the hours before it."""
    candles = candles_of(minutes, HOUR_MS)
    return walk_priors(create("hour_of_day_median_7d"), candles,
                       int(candles["ds"].min()) + DAY_MS)


@pytest.fixture(scope="module")
def split(minutes: pd.DataFrame) -> int:
    return int(minutes["ds"].min()) + 8 * DAY_MS


@pytest.fixture(scope="module")
def fitted(minutes: pd.DataFrame, priors: pd.DataFrame, split: int) -> Nowcaster:
    return Nowcaster.fit(minutes[minutes["ds"] < split], HOUR_MS, priors)


def test_beats_the_prior_and_linear_extrapolation_on_held_out_hours(
        fitted: Nowcaster, minutes: pd.DataFrame, priors: pd.DataFrame, split: int) -> None:
    scored = evaluate(fitted, minutes[minutes["ds"] >= split], priors, [45])
    assert len(scored) == 2 * 4 * 24  # both series, every held-out hour
    mae = {k: (scored[k] - scored["actual"]).abs().mean()
           for k in ("prior", "linear", "q50", "recent_q50")}
    assert mae["recent_q50"] < mae["linear"]
    assert mae["recent_q50"] < mae["prior"]
    assert mae["q50"] < min(mae["linear"], mae["prior"])  # from the volume so far alone
    inside = ((scored["recent_q10"] <= scored["actual"])
              & (scored["actual"] <= scored["recent_q90"])).mean()
    assert 0.65 <= inside <= 0.95  # an 80% interval, roughly honest on unseen hours


def test_elapsed_zero_is_the_prior(fitted: Nowcaster) -> None:
    result = fitted.nowcast(0.0, 0.0, 120.0, 0)
    assert result["q50"] == pytest.approx(120.0, rel=1e-12)
    assert result["q10"] < 120.0 < result["q90"]


def test_near_the_close_it_is_the_volume_so_far(fitted: Nowcaster) -> None:
    for prior in (None, 10.0, 1000.0):
        late = fitted.nowcast(200.0, 0.999, prior, 0, recent=20.0)
        assert all(200.0 <= late[q] <= 202.0 for q in QS)
        assert fitted.nowcast(200.0, 1.0, prior, 0) == dict.fromkeys(QS, 200.0)


def test_monotone_in_the_volume_so_far_and_ordered(fitted: Nowcaster) -> None:
    volumes = np.geomspace(0.5, 5000, 40)
    for elapsed in (0.01, 0.1, 0.25, 0.5, 0.75, 0.95):
        for prior in (None, 50.0, 500.0):
            for recent in (None, 0.4):
                rows = [fitted.nowcast(float(v), elapsed, prior, 0, recent) for v in volumes]
                for q in QS:
                    values = np.array([r[q] for r in rows])
                    assert np.all(np.diff(values) >= 0), (elapsed, prior, recent, q)
                for v, r in zip(volumes, rows, strict=True):
                    assert v <= r["q10"] <= r["q50"] <= r["q90"] < math.inf


def test_the_pace_rules_once_the_candle_is_under_way(fitted: Nowcaster) -> None:
    """Half-way through an hour that traded 100, a prior of 10 or of 1000 moves the median
    far less than tenfold: the pace carries most of the weight by then."""
    low, high = (fitted.nowcast(100.0, 0.5, prior, 0)["q50"] for prior in (10.0, 1000.0))
    assert 100 < low < high < 400
    assert high / low < 3


def test_without_a_prior_it_falls_back_to_the_pace(fitted: Nowcaster) -> None:
    alone = fitted.nowcast(100.0, 0.5, None, 0)
    assert alone == fitted.nowcast(100.0, 0.5, 0.0, 0)  # a q50 of 0 is no prior either
    assert 150 < alone["q50"] < 250  # about twice what half the hour traded
    assert fitted.nowcast(0.0, 0.0, None, 0) == dict.fromkeys(QS, 0.0)  # nothing known
    assert fitted.nowcast(0.0, 0.3, None, 0) == dict.fromkeys(QS, 0.0)


def test_recent_minutes_pull_the_remainder(fitted: Nowcaster) -> None:
    quiet, busy = (fitted.nowcast(100.0, 0.75, 150.0, 0, recent=r)["q50"] for r in (1.0, 30.0))
    assert quiet < busy


def test_any_candle_length(minutes: pd.DataFrame) -> None:
    quarter = Nowcaster.fit(minutes, timeframe_ms("15m"), None)
    assert len(quarter.params.grid) == 13
    assert quarter.recent_fraction == pytest.approx(1 / 12)
    result = quarter.nowcast(30.0, 0.5, None, 0)
    assert 45 < result["q50"] < 90


def test_save_load_round_trip(fitted: Nowcaster, tmp_path: Path) -> None:
    path = tmp_path / "nowcast.json"
    fitted.save(path)
    loaded = Nowcaster.load(path)
    assert loaded.params == fitted.params
    for args in ((50.0, 0.37, 80.0, 0, 3.0), (50.0, 0.37, None, 0, None), (0.0, 0.0, 80.0, 0)):
        assert loaded.nowcast(*args) == fitted.nowcast(*args)
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()


def test_the_shipped_default_loads() -> None:
    default = Nowcaster.default()
    assert default.params.candle_ms == HOUR_MS
    result = default.nowcast(100.0, 0.5, 200.0, 0, recent=8.0)
    assert 100 < result["q10"] < result["q50"] < result["q90"]


@pytest.mark.parametrize(("args", "message"), [
    ((10.0, -0.1, None, 0), "elapsed fraction .* not -0.1"),
    ((10.0, 1.5, None, 0), "elapsed fraction .* not 1.5"),
    ((10.0, math.nan, None, 0), "elapsed fraction .* not nan"),
    ((-1.0, 0.5, None, 0), "volume so far .* not -1.0"),
    ((math.inf, 0.5, None, 0), "volume so far .* not inf"),
    ((10.0, 0.5, -5.0, 0), "prior forecast .* not -5.0"),
    ((10.0, 0.5, None, -1), "open time .* not -1"),
    ((10.0, 0.5, None, 0, 11.0), "recent volume .* not 11.0"),
])
def test_bad_input_is_one_line(fitted: Nowcaster, args: tuple, message: str) -> None:
    with pytest.raises(VolcastError, match=message) as error:
        fitted.nowcast(*args)
    assert "\n" not in str(error.value)


def test_bad_fit_input(minutes: pd.DataFrame) -> None:
    with pytest.raises(VolcastError, match="whole minutes"):
        Nowcaster.fit(minutes, 90_000, None)
    with pytest.raises(VolcastError, match="lack column"):
        Nowcaster.fit(minutes.drop(columns="y"), HOUR_MS, None)
    with pytest.raises(VolcastError, match=">= 0"):
        Nowcaster.fit(minutes.assign(y=-1.0), HOUR_MS, None)
    with pytest.raises(VolcastError, match="at least 10 complete candles"):
        Nowcaster.fit(minutes.head(300), HOUR_MS, None)


def _tampered(fitted: Nowcaster, tmp_path: Path, change: object) -> Path:
    data = fitted.params.model_dump(mode="json")
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["variants"]["pace+prior"]["weights"].__setitem__(5, [0.9, 0.8]),
     "summing to 1"),
    (lambda d: d["grid"].reverse(), "grid must rise"),
    (lambda d: d["variants"].pop("prior"), "variants must be exactly"),
    (lambda d: d["variants"]["pace"]["ratios"].__setitem__(3, [2, 1, 3]), "ordered"),
    (lambda d: d["variants"]["pace"]["bias"].pop(), "grid's 13 entries"),
    (lambda d: d.__setitem__("format", "pickle"), "format"),
    (lambda d: d["share"].__setitem__(1, float("nan")), "share"),
])
def test_a_tampered_file_is_refused_in_one_line(fitted: Nowcaster, tmp_path: Path,
                                                change: object, message: str) -> None:
    path = _tampered(fitted, tmp_path, change)
    with pytest.raises(VolcastError, match=message) as error:
        Nowcaster.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_not_a_params_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(VolcastError, match="not a nowcast parameters file"):
        Nowcaster.load(tmp_path / "x.json")
    with pytest.raises(VolcastError, match="cannot read"):
        Nowcaster.load(tmp_path / "missing.json")
