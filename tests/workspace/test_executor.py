"""The executors and the flows over many series on them: Local and Ray give the same results
in the items' order, Ray's workers run one thread each and get what the pieces share once, a
task's error reaches the caller as itself; a backtest of many series equals each series'
backtest with the shared model, and leaves out (and names) a series too short for the cutoff.
Ray and non-Ray runs of whole commands are compared in tests/test_cli_ray.py."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from volcast.config import RaySettings, load_settings
from volcast.data.formats import read_candles
from volcast.data.sample import sample_file
from volcast.data.store import SeriesKey
from volcast.errors import NotFound, VolcastError
from volcast.evaluation.backtest import backtest
from volcast.workspace.batch import Shipped
from volcast.workspace.executor import Local, RayExecutor, connect, executor

from ..web.conftest import TINY_LSTM

BTC, ETH = SeriesKey("binance", "BTC/USDT", "1h"), SeriesKey("binance", "ETH/USDT", "1h")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of two workers for the module (it takes seconds to start)."""
    ray = connect(None, 2)
    yield ray
    ray.shutdown()


def square(item: int, shared: dict) -> tuple[int, int, int]:
    """The item squared plus what is shared, with where it ran: process, torch threads."""
    import torch

    return item * item + shared["add"], os.getpid(), torch.get_num_threads()


def refuse(item: int, shared: None) -> int:
    if item == 3:
        raise VolcastError("item 3 is refused")
    return item


def test_local_runs_each_piece_here_in_order_and_counts_them():
    counted = []
    found = Local().map(square, [3, 1, 2], {"add": 1}, lambda *c: counted.append(c))
    assert [value for value, *_ in found] == [10, 2, 5]
    assert {pid for _, pid, _ in found} == {os.getpid()}
    assert counted == [(1, 3), (2, 3), (3, 3)]


def test_ray_gives_the_same_results_in_order_from_one_thread_workers(ray_cluster, monkeypatch):
    puts = []
    real_put = ray_cluster.put
    monkeypatch.setattr(ray_cluster, "put", lambda value: puts.append(value) or real_put(value))
    items = list(range(8))
    counted = []
    found = RayExecutor(workers=2).map(square, items, {"add": 1}, lambda *c: counted.append(c))
    assert [value for value, *_ in found] == [v for v, *_ in Local().map(square, items,
                                                                           {"add": 1})]
    assert os.getpid() not in {pid for _, pid, _ in found}
    assert {threads for *_, threads in found} == {1}
    assert puts == [{"add": 1}]  # what the pieces share crosses once
    assert counted[-1] == (8, 8) and len(counted) == 8


def test_a_tasks_error_reaches_the_caller_as_itself(ray_cluster):
    with pytest.raises(VolcastError, match=r"^item 3 is refused$"):
        RayExecutor(workers=2).map(refuse, [1, 2, 3, 4], None)


def test_the_ray_settings_choose_the_executor_and_refuse_what_does_not_go_together(tmp_path):
    assert isinstance(executor(RaySettings()), Local)
    assert executor(RaySettings(enabled=True, workers=2)) == RayExecutor(None, 2)
    assert executor(RaySettings(address="auto")) == RayExecutor("auto")
    assert isinstance(executor(RaySettings(enabled=False, address="ray://h:10001")), Local)
    config = tmp_path / "volcast.toml"
    config.write_text('[ray]\naddress = "ray://head:10001"\nworkers = 2\n')
    with pytest.raises(VolcastError, match=r"^setting 'ray': .*workers sizes the local cluster"):
        load_settings(config)
    config.write_text('[ray]\naddress = "10.0.0.1:6379"\n')
    with pytest.raises(VolcastError, match=r"^setting 'ray.address': String should match"):
        load_settings(config)


def test_nothing_imports_ray_without_it():
    code = ("import sys; import volcast.cli, volcast.workspace.batch, volcast.workspace.downloads;"
            "from volcast.config import RaySettings; from volcast.workspace.executor import "
            "executor; assert executor(RaySettings()).map(max, [1, 2], 0) == [1, 2];"
            "assert 'ray' not in sys.modules, 'ray imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr


def test_a_shipped_model_forecasts_as_the_trained_one_and_loads_once(btc):
    from volcast.models import create

    long = btc.rename(columns={"timestamp": "ds", "volume": "y"}).assign(unique_id="btc")
    model = create("lstm", TINY_LSTM)
    model.fit(long)
    shipped = Shipped.trained(model)
    assert {name for name, _ in shipped.files} == {"model.json", "weights.safetensors"}
    loaded = shipped.forecaster()
    assert loaded is Shipped.trained(model).forecaster()  # the same files: loaded once
    pd.testing.assert_frame_equal(loaded.predict(long, 24), model.predict(long, 24))


@pytest.mark.parametrize("name", ["lstm", "ensemble"])
def test_a_fit_with_shards_trains_on_the_workers_to_the_same_weights(ray_cluster, btc, name):
    """shards = 2: each batch's two parts on two Ray workers joined over gloo (and the
    validation split between them) give the weights, history and scales that one process
    computing both parts gives: the fit depends on the shards, not on where they ran. The
    driver's progress hears every epoch of rank 0."""
    from volcast.models import create, parallel

    long = btc.rename(columns={"timestamp": "ds", "volume": "y"}).assign(unique_id="btc")
    settings = TINY_LSTM | {"epochs": 2, "shards": 2, "batch_size": 64}
    here = create(name, settings)
    here.fit(long)
    epochs = []
    spread = create(name, settings)
    with parallel.spread(RayExecutor(None, 2).launcher()):
        spread.fit(long, lambda *epoch: epochs.append(epoch[:2]))
    lstm_here, lstm_spread = (getattr(m, "lstm", m) for m in (here, spread))
    assert lstm_spread.history == lstm_here.history
    assert lstm_spread.scales == lstm_here.scales
    for ours, theirs in zip(lstm_here.nets, lstm_spread.nets, strict=True):
        assert all(value.equal(theirs.state_dict()[key])
                   for key, value in ours.state_dict().items())
    pd.testing.assert_frame_equal(spread.predict(long, 24), here.predict(long, 24))
    assert epochs and epochs[-1][0] == epochs[-1][1] == len(lstm_here.history) * 2  # + refit


def test_a_backtest_of_many_equals_each_series_backtest_with_the_shared_model(workspace):
    workspace.settings.backtest.test_days = 5
    eth = read_candles(sample_file(pair="ETH_USDT"), ETH.tf_ms)
    late = SeriesKey("binance", "LATE/USDT", "1h")
    workspace.store.upsert(late, eth.tail(48))  # starts after the cutoff: left out
    batch = workspace.backtest_many([BTC, ETH, late], ["lstm", "seasonal_naive_24"],
                                    {"lstm": TINY_LSTM})
    assert list(batch.results) == [BTC, ETH]
    assert batch.left_out == {late: f"{late}: the cutoff leaves no training data before it"}
    for key in (BTC, ETH):
        results = batch.results[key]
        assert [r.model for r in results][:2] == ["lstm", "seasonal_naive_24"]
        lstm = results[0]
        assert lstm.forecaster.info["series"] == [BTC.unique_id, ETH.unique_id]
        alone = backtest(lstm.forecaster, workspace.long([key]), horizon=24,
                         cutoff=batch.cutoff, fit=False)
        pd.testing.assert_frame_equal(lstm.predictions, alone.predictions)
        stored = dict((name, frame) for name, frame, _ in workspace.backtests(key))
        pd.testing.assert_frame_equal(stored["lstm"], lstm.predictions, check_dtype=False)


def test_a_backtest_of_many_takes_one_timeframe(workspace):
    with pytest.raises(VolcastError, match="series of one timeframe"):
        workspace.backtest_many([BTC, SeriesKey("binance", "BTC/USDT", "4h")],
                                ["seasonal_naive_24"])


def test_a_series_without_its_model_is_left_out_or_with_strict_refused_first(workspace):
    """``--all`` lists what has no model and forecasts the rest; series asked for by name
    (``strict``) are refused before any is read or forecast."""
    workspace.train([BTC], "lstm", TINY_LSTM | {"epochs": 1})
    counted: list[tuple[int, int]] = []
    made = workspace.forecast_many([BTC, ETH], "lstm", done=lambda *n: counted.append(n))
    assert set(made.frame["unique_id"]) == {BTC.unique_id} and list(made.left_out) == [ETH]
    assert counted == [(1, 1)]
    counted.clear()
    with pytest.raises(NotFound, match=f"no trained lstm for {ETH}"):
        workspace.forecast_many([BTC, ETH], "lstm", done=lambda *n: counted.append(n),
                                strict=True)
    assert counted == []


def test_a_damaged_model_folder_is_left_out_and_named_where_it_is(workspace):
    """One edited folder among the markets' models: ``--all`` forecasts the others and names
    it; asked for by name, one line naming the user's folder (not the temporary copy a
    batch loads it from)."""
    workspace.train([BTC, ETH], "lstm", TINY_LSTM | {"epochs": 1})
    folder = workspace.layout.folder(ETH, "lstm")
    (folder / "model.json").write_text("{garbage")
    made = workspace.forecast_many([BTC, ETH], "lstm")
    assert set(made.frame["unique_id"]) == {BTC.unique_id} and list(made.left_out) == [ETH]
    assert str(folder) in made.left_out[ETH] and "volcast-model-" not in made.left_out[ETH]
    with pytest.raises(VolcastError, match="is damaged") as refused:
        workspace.forecast_many([BTC, ETH], "lstm", strict=True)
    assert str(folder) in str(refused.value) and "volcast-model-" not in str(refused.value)
