"""`volcast models list` and `volcast models rollback`, through the real entry point: what
`volcast train` keeps, and what `volcast predict` serves after a rollback."""

import json
from pathlib import Path

import pytest

from volcast.data.formats import read_candles
from volcast.data.sample import sample_file
from volcast.data.store import CandleStore, SeriesKey

TINY = ["--lookback", "48", "--hidden-size", "8", "--epochs", "1", "--train-days", "7"]
BTC = ["-e", "binance", "-s", "BTC/USDT", "-t", "1h"]


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A store with the newest 30 days of the sample's two pairs (closed again: the CLI
    opens it)."""
    path = tmp_path / "store.duckdb"
    with CandleStore(path) as store:
        for pair in ("BTC_USDT", "ETH_USDT"):
            key = SeriesKey("binance", pair.replace("_", "/"), "1h")
            store.upsert(key, read_candles(sample_file(pair=pair), key.tf_ms).tail(24 * 30))
    return path


def train(cli, db: Path, *flags: str) -> None:
    done = cli("train", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "-s", "ETH/USDT",
               "--db", db, *TINY, *flags)
    assert done.code == 0, done.err


def predicted(cli, db: Path) -> list[float]:
    answer = cli("predict", "--model", "lstm", *BTC, "--db", db, "--format", "json")
    assert answer.code == 0, answer.err
    return [row["q50"] for row in json.loads(answer.out)]


def test_trained_versions_are_listed_and_a_rollback_is_what_predict_serves(cli, stored):
    train(cli, stored)
    first = predicted(cli, stored)
    train(cli, stored, "--hidden-size", "12")
    assert predicted(cli, stored) != first
    listed = cli("models", "list", "--db", stored, "-s", "BTC/USDT")
    assert listed.code == 0, listed.err
    rows = [line for line in listed.out.splitlines() if "binance BTC/USDT 1h" in line]
    assert len(rows) == 2 and "ETH/USDT" not in listed.out
    assert rows[0].split("│")[3].strip() == "1" and rows[0].split("│")[7].strip() == ""
    assert rows[1].split("│")[3].strip() == "2" and rows[1].split("│")[7].strip() == "yes"

    rolled = cli("models", "rollback", *BTC, "--model", "lstm", "--db", stored)
    assert (rolled.code, rolled.out.strip()) == (0, "lstm version 1 now serves binance "
                                                    "BTC/USDT 1h")
    assert predicted(cli, stored) == first
    again = cli("models", "rollback", *BTC, "--model", "lstm", "--to", "2", "--db", stored)
    assert again.code == 0, again.err
    assert predicted(cli, stored) != first


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "5"], "no version 5 of lstm for binance BTC/USDT 1h; kept: 1"),
    ([], "has no promoted version before the serving one (1); choose one with --to"),
    (["--model", "mstl"], "no kept versions of mstl for binance BTC/USDT 1h"),
    (["--model", "prophet"], "unknown model 'prophet'"),
    (["-s", "DOGE/USDT"], "no stored candles for binance DOGE/USDT 1h"),
])
def test_a_rollback_that_cannot_be_done_is_one_line(cli, stored, args, message):
    train(cli, stored)
    failed = cli("models", "rollback", *BTC, "--model", "lstm", "--db", stored, *args)
    assert failed.code == 2
    assert message in failed.err and len(failed.err.strip().splitlines()) == 1


def test_listing_models_that_do_not_exist_says_how_to_make_one(cli, stored):
    listed = cli("models", "list", "--db", stored, "--model", "lstm")
    assert listed.code == 0
    assert "no trained models match; train one with `volcast train`" in listed.out
