"""volcast with --ray against the same commands without it, on a universe of four markets from
the exchange simulator (Ray: a local cluster of two workers): per-market downloads store the
same candles (through faults too, and again after a hole), and the backtests (a reference
model and a tiny seeded LSTM, trained data-parallel on both workers) and forecasts of every
market, and a trained model's weights, are identical to the byte. And
the one-line errors: Ray not installed, a cluster that does not answer, --ray where it does
nothing."""

import io
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from volcast.data.sample import sample_dir
from volcast.data.store import CandleStore, SeriesKey
from volcast.data.timeframe import DAY_MS, format_time
from volcast.simulator import SimulatorConfig, running
from volcast.workspace import downloads

from .conftest import HOUR
from .workspace.test_executor import ray_cluster

__all__ = ["ray_cluster"]

NOW = 1722466800000 + HOUR  # when the sample's newest candle closes: 2024-08-01 00:00
UNIVERSE = SimulatorConfig(sample_dir(), markets=4, delisted=0.0, halted=0.0, seed=7,
                           now_ms=NOW, speed=0.0)
FAULTY = replace(UNIVERSE, fail_rate=0.2, faults=("429", "500", "truncated"), retry_after_s=0)
QUICK = "[fetch]\nretries = 12\nbackoff_s = 0.01\nbackoff_max_s = 0.2\nrate_limit = false\n"
TINY = ["--lookback", "48", "--hidden-size", "8", "--epochs", "2", "--train-days", "20",
        "--shards", "2"]  # with --ray, the LSTM trains on both workers


def fetch(cli, db: Path, url: str, config: Path, *more: str):
    done = cli("fetch", "-e", "binance", "--top", "4", "--quote", "USDT", "--since",
               format_time(NOW - 30 * DAY_MS), "--db", db, "--exchange-url", url, "--config",
               config, *more)
    assert done.code == 0, done.err
    return done


def stored(db: Path) -> dict[str, list]:
    """Every stored candle and every range confirmed empty, per series."""
    with CandleStore(db, read_only=True) as store:
        keys = [SeriesKey(s.exchange, s.symbol, s.timeframe)
                for s in store.series().itertuples()]
        return {str(k): [store.read(k).to_dict("list"), store.empty_ranges(k)] for k in keys}


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "volcast.toml"
    path.write_text(QUICK)
    return path


def test_ray_downloads_store_what_one_process_stores(cli, tmp_path, config, ray_cluster,
                                                     monkeypatch):
    monkeypatch.setattr(downloads, "SERIES_PER_TASK", 1)  # a task per market
    here, there = tmp_path / "here.duckdb", tmp_path / "there.duckdb"
    with running(UNIVERSE) as sim:
        fetch(cli, here, sim.url, config)
    with running(FAULTY) as sim:
        done = fetch(cli, there, sim.url, config, "--ray")
        assert "binance top 4 USDT markets: 4 chosen" in done.out
        assert stored(there) == stored(here) and len(stored(here)) == 4
        key = SeriesKey("binance", "BTC/USDT", "1h")
        with CandleStore(there) as store:
            assert store.delete(key, NOW - 20 * DAY_MS, NOW - 19 * DAY_MS) == 24
        again = cli("fetch", "-e", "binance", "-s", "BTC/USDT", "--db", there,
                    "--exchange-url", sim.url, "--config", config, "--ray")
    assert again.code == 0, again.err
    assert "binance BTC/USDT 1h │          24" in again.out  # the hole, and nothing else
    assert stored(there) == stored(here)


def test_backtests_and_forecasts_of_a_universe_are_identical_with_ray(cli, tmp_path, config,
                                                                    ray_cluster):
    db = tmp_path / "store.duckdb"
    with running(UNIVERSE) as sim:
        fetch(cli, db, sim.url, config)
    runs = {}
    for name, flags in (("here", []), ("ray", ["--ray", "--ray-workers", "2"])):
        models = tmp_path / name
        done = cli("backtest", "--model", "lstm", "--model", "seasonal_naive_24", "-e",
                   "binance", "--all", "--test-days", "10", "--db", db, "--models", models,
                   *TINY, *flags)
        assert done.code == 0, done.err
        assert "4 series backtested from 2024-07-22 00:00 UTC" in done.out
        files = sorted(models.rglob("backtest.csv"))
        runs[name] = {str(p.relative_to(models)): p.read_bytes() for p in files}
    assert len(runs["here"]) == 4 * 6  # lstm, seasonal_naive_24 and the other 4 references
    assert runs["ray"] == runs["here"]

    weights = {}
    for name, flags in (("m", []), ("m-ray", ["--ray-workers", "2"])):  # --shards 2: both
        trained = cli("train", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "-s",
                      "ETH/USDT", "--db", db, "--models", tmp_path / name, *TINY, *flags)
        assert trained.code == 0, trained.err
        weights[name] = (tmp_path / name / "binance/BTC_USDT/1h/lstm/weights.safetensors"
                         ).read_bytes()
    assert weights["m-ray"] == weights["m"]  # trained on the two workers: the same weights
    outputs = {}
    for model, chosen, series in (("lstm", ["-s", "BTC/USDT", "-s", "ETH/USDT"], 2),
                                  ("seasonal_naive_24", ["--all"], 4)):
        args = ["predict", "--model", model, "-e", "binance", *chosen, "--format", "csv",
                "--db", db, "--models", tmp_path / "m"]
        here, there = cli(*args), cli(*args, "--ray")
        assert (here.code, here.err, there.code, there.err) == (0, "", 0, "")
        assert there.out == here.out and here.out.count("\n") == 1 + 24 * series
        outputs[model] = here.out
    # the global model's two series forecast in one batched call, as each does alone
    alone = cli("predict", "--model", "lstm", "-e", "binance", "-s", "ETH/USDT", "--format",
                "csv", "--db", db, "--models", tmp_path / "m")
    assert alone.code == 0, alone.err
    both = pd.read_csv(io.StringIO(outputs["lstm"]))
    one = pd.read_csv(io.StringIO(alone.out))
    assert_frame_equal(both[both["unique_id"] == one["unique_id"][0]].reset_index(drop=True),
                       one, rtol=1e-5)  # a batch of 2 may round a float32 differently
    # --all forecasts the trained markets and lists the others, where one named fails
    every = cli("predict", "--model", "lstm", "-e", "binance", "--all", "--format", "csv",
                "--db", db, "--models", tmp_path / "m")
    assert (every.code, every.out) == (0, outputs["lstm"])
    assert every.err.count("left out: no trained lstm for binance") == 2
    named = cli("predict", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "-s",
                "SOL/USDT", "--db", db, "--models", tmp_path / "m")
    assert named.code == 2 and "no trained lstm for binance SOL/USDT 1h" in named.err


def test_ray_not_installed_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    done = cli("backtest", "--model", "seasonal_naive_24", "-e", "binance", "-s", "BTC/USDT",
               "-s", "ETH/USDT", "--db", tmp_path / "s.duckdb", "--ray")
    assert (done.code, done.err) == (2, "error: --ray needs Ray, an optional dependency: pip "
                                        "install 'volcast[ray]'\n")


def test_a_cluster_that_does_not_answer_is_one_line(cli, tmp_path, config):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends
    config.write_text(f'[ray]\naddress = "ray://127.0.0.1:{port}"\n')
    done = cli("predict", "--model", "seasonal_naive_24", "-e", "binance", "-s", "BTC/USDT",
               "--db", tmp_path / "s.duckdb", "--config", config)
    assert done.code == 2
    assert done.err == (f"error: no Ray cluster answers at ray://127.0.0.1:{port} (Connection "
                        "refused); start one (ray start --head) or fix [ray] address\n")


@pytest.mark.parametrize(("args", "message"), [
    (["fetch", "-e", "binance", "-s", "BTC/USDT", "--follow", "--ray"],
     "error: --follow stores each candle as it closes, in this process: leave out --ray"),
    (["backtest", "--model", "seasonal_naive_24", "-e", "binance", "-s", "BTC/USDT",
      "--ray-workers", "2"], "error: --ray runs the work of many stored series"),
    (["backtest", "--model", "seasonal_naive_24", "-e", "binance", "-s", "BTC/USDT", "-s",
      "ETH/USDT", "--out", "x.csv"], "error: --out writes the predictions of one series"),
    (["predict", "--model", "seasonal_naive_24", "-e", "binance", "--all", "--top", "3"],
     "error: give --all or --top 3, not both"),
    (["train", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "-s", "ETH/USDT",
      "--ray"], "error: --ray trains a network with --shards N (N > 1) on N Ray workers; "
     "lstm has 1 shard"),
    (["train", "--model", "mstl", "-e", "binance", "-s", "BTC/USDT", "--ray-workers", "2"],
     "error: --ray trains a network with --shards N"),
])
def test_ray_and_many_series_flags_where_they_do_nothing_are_one_line(cli, db, simulator,
                                                                      args, message):
    from volcast.data.formats import read_candles
    from volcast.data.sample import sample_file

    with CandleStore(db) as store:
        for pair in ("BTC_USDT", "ETH_USDT"):
            key = SeriesKey("binance", pair.replace("_", "/"), "1h")
            store.upsert(key, read_candles(sample_file(pair=pair), key.tf_ms))
    done = cli(*args, "--db", db, *(["--exchange-url", simulator.url] if args[0] == "fetch"
                                    else []))
    assert done.code == 2 and done.err.count("\n") == 1
    assert done.err.startswith(message), done.err


def test_a_configured_address_alone_leaves_single_series_work_in_this_process(cli, db,
                                                                              config):
    """[ray] address turns Ray on for the work of many series only: a single series' backtest,
    and the training of a model with nothing to spread (one shard), run here and never ask
    the cluster (nothing answers at the address)."""
    from volcast.data.formats import read_candles
    from volcast.data.sample import sample_file

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(f'[ray]\naddress = "ray://127.0.0.1:{port}"\n')
    with CandleStore(db) as store:
        key = SeriesKey("binance", "BTC/USDT", "1h")
        store.upsert(key, read_candles(sample_file(pair="BTC_USDT"), key.tf_ms))
    done = cli("backtest", "--model", "seasonal_naive_24", "-e", "binance", "-s", "BTC/USDT",
               "--db", db, "--config", config)
    assert done.code == 0, done.err
    assert "seasonal_naive_24" in done.out
    trained = cli("train", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "--db", db,
                  "--config", config, *TINY[:-2])  # without --shards 2
    assert trained.code == 0, trained.err
