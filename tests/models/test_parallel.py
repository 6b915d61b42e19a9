"""Data-parallel fits over gloo, without Ray: ranks in processes of their own end with the
weights one process computing every shard gets, whatever the number of ranks and however the
shards fall on them: a count that is not a multiple of the ranks, more shards than a batch
has windows (empty parts), a short last batch, micro-batches inside the parts. (Ray's ranks:
tests/workspace/test_executor.py and tests/test_cli_ray.py.)"""

import multiprocessing
import socket

import numpy as np
import pytest

from volcast.data.formats import read_candles
from volcast.data.frames import to_long
from volcast.data.sample import sample_file
from volcast.models import create, parallel

BASE = {"lookback": 48, "hidden_size": 8, "epochs": 2, "train_days": 20, "batch_size": 8,
        "stride": 3}


def fitted(settings: dict, ranks: parallel.Ranks = parallel.ALONE) -> dict[str, np.ndarray]:
    """A tiny LSTM fitted on the bundled BTC/USDT as ``ranks``' share of the work (the launch
    hands the fit to this process' place in the group): its weights and loss history."""
    def launch(fit, shards, progress):
        return fit(ranks, progress)

    model = create("lstm", settings)
    with parallel.spread(launch):
        model.fit(to_long(read_candles(sample_file()), "btc"))
    weights = {k: v.numpy() for k, v in model.nets[0].state_dict().items()}
    return weights | {"history": np.array([[h["train"], h["val"]] for h in model.history])}


def rank(number: int, world: int, address: str, settings: dict, out) -> None:
    """One rank, in a process of its own."""
    from volcast.models.runtime import configure_process

    configure_process(threads=1)
    with parallel.joined(number, world, address) as ranks:
        out.put((number, fitted(settings, ranks)))


@pytest.mark.parametrize(("world", "more"), [
    (2, {"shards": 3}),                          # 2 parts on rank 0, 1 on rank 1
    (3, {"shards": 12, "micro_batch": 8}),       # parts of 0-1 windows: most ranks idle
])
def test_ranks_in_processes_train_the_weights_one_process_trains(world, more):
    settings = BASE | more
    alone = fitted(settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    ranks = [spawn.Process(target=rank, args=(n, world, address, settings, out))
             for n in range(world)]
    for process in ranks:
        process.start()
    results = dict(out.get(timeout=300) for _ in ranks)
    for process in ranks:
        process.join(timeout=60)
        assert process.exitcode == 0
    for number in range(world):
        assert results[number].keys() == alone.keys()
        for key, value in alone.items():
            np.testing.assert_array_equal(results[number][key], value, err_msg=key)
    single = fitted(BASE)  # and sharding changed the run: the test can tell weights apart
    assert not np.array_equal(single["history"], alone["history"])
