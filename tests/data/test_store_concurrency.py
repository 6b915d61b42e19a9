"""One store file, many processes: writers and readers take turns on the file, nothing is
lost, and no operation fails because another process holds the file (docs/live.md)."""

import subprocess
import sys
import textwrap
import threading

import pytest

from volcast.data.store import CandleStore, SeriesKey
from volcast.errors import VolcastError

HOUR = 3_600_000
PAGES, PER_PAGE = 15, 50

WRITER = """
import sys
import pandas as pd
from volcast.data.store import CandleStore, SeriesKey
store = CandleStore(__import__("pathlib").Path(sys.argv[1]))
key = SeriesKey("binance", sys.argv[2], "1h")
for page in range({pages}):
    ts = [(page * {per} + i) * {hour} for i in range({per})]
    frame = pd.DataFrame({{"timestamp": ts, "open": 1.0, "high": 2.0, "low": 0.5,
                          "close": 1.5, "volume": [float(t % 97) for t in ts]}})
    assert store.upsert(key, frame) == {per}
print("wrote", flush=True)
"""

READER = """
import sys
from pathlib import Path
from volcast.data.store import CandleStore
waits = []
store = CandleStore(Path(sys.argv[1]), read_only=True, on_wait=waits.append)
for _ in range({rounds}):
    listed = store.series()
    assert list(listed.columns[:3]) == ["exchange", "symbol", "timeframe"]
print("read", max(waits), flush=True)
"""


def run_all(scripts: list[list[str]]) -> list[str]:
    processes = [subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for args in scripts]
    outs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outs.append(out)
    return outs


def test_writers_and_readers_in_other_processes_share_the_file(db):
    CandleStore(db).close()
    writer = textwrap.dedent(WRITER.format(pages=PAGES, per=PER_PAGE, hour=HOUR))
    reader = textwrap.dedent(READER.format(rounds=30))
    outs = run_all([[writer, str(db), "BTC/USDT"], [writer, str(db), "ETH/USDT"],
                    [reader, str(db)], [reader, str(db)]])
    assert outs[0] == outs[1] == "wrote\n"
    assert all(out.startswith("read ") for out in outs[2:])
    store = CandleStore(db, read_only=True)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        rows, first, last = store.extent(SeriesKey("binance", symbol, "1h"))
        assert (rows, first, last) == (PAGES * PER_PAGE, 0, (PAGES * PER_PAGE - 1) * HOUR)


HOLDER = """
import sys, time
import duckdb
deadline = time.monotonic() + 20
while True:  # the store lets go LINGER_S after its last operation
    try:
        duckdb.connect(sys.argv[1]).close()
        break
    except duckdb.IOException:
        assert time.monotonic() < deadline, "the file was never let go"
        time.sleep(0.01)
print("opened", flush=True)
"""


def test_the_store_lets_go_of_the_file_after_an_operation(db):
    """Between operations another process may open the file for writing; during one it may
    not."""
    store = CandleStore(db)
    assert store.series().empty
    assert run_all([[textwrap.dedent(HOLDER), str(db)]]) == ["opened\n"]
    with store.connection() as con:  # while an operation runs, the file is held
        assert con.execute("SELECT count(*) FROM series").fetchall() == [(0,)]
        with pytest.raises(VolcastError, match="still in use by another process"):
            CandleStore(db, read_only=True, wait_s=0.2).series()


def test_a_busy_store_gives_other_processes_their_turn(db):
    """Operations back to back in one process (a dashboard under load) keep the file open
    across them, but at most TURN_S at a time: a writer in another process gets in."""
    store = CandleStore(db)
    done = threading.Event()
    failed: list[BaseException] = []
    rounds = [0]

    def busy() -> None:
        try:
            while not done.is_set():
                store.series()
                rounds[0] += 1
        except BaseException as error:  # reported by the test below
            failed.append(error)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        writer = textwrap.dedent(WRITER.format(pages=2, per=PER_PAGE, hour=HOUR)).replace(
            "Path(sys.argv[1]))", "Path(sys.argv[1]), wait_s=20)")
        assert run_all([[writer, str(db), "BTC/USDT"]]) == ["wrote\n"]
    finally:
        done.set()
        thread.join()
    assert failed == [] and rounds[0] > 0  # busy all along, as the writer got in
    assert store.extent(SeriesKey("binance", "BTC/USDT", "1h"))[0] == 2 * PER_PAGE


def test_nested_operations_share_one_connection_and_a_failed_one_rolls_back(db):
    store = CandleStore(db)
    with store.connection() as outer, store.connection() as inner:
        assert outer is inner
    with pytest.raises(RuntimeError), store.transaction() as con:
        con.execute("CREATE TABLE scratch (a INTEGER)")
        raise RuntimeError("half-written")
    with store.connection() as con:
        tables = {row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    assert "scratch" not in tables
