import gzip
import json
import zipfile

import pandas as pd
import pytest

from volcast.data.formats import read_candles, write_candles
from volcast.data.formats.validate import check_values
from volcast.data.sample import sample_file
from volcast.errors import VolcastError

H = 3_600_000


@pytest.fixture
def week(btc):
    return btc.iloc[:168].reset_index(drop=True)


@pytest.mark.parametrize("name", ["c.csv", "c.csv.gz", "c.json", "c.json.gz", "c.feather",
                                  "c.parquet"])
def test_every_writable_format_round_trips_exactly(tmp_path, week, name):
    write_candles(week, tmp_path / name)
    pd.testing.assert_frame_equal(read_candles(tmp_path / name, H), week)


def test_the_shared_csv_format_reads_unchanged(btc):
    with gzip.open(sample_file()) as handle:
        raw = pd.read_csv(handle)
    assert btc["volume"].tolist() == raw["volume"].tolist()
    assert btc["timestamp"].tolist() == raw["timestamp"].tolist()


def test_freqtrade_json_is_a_list_of_rows(tmp_path, week):
    path = tmp_path / "BTC_USDT-1h.json"
    path.write_text(json.dumps(week.values.tolist()))
    assert read_candles(path, H)["volume"].tolist() == week["volume"].tolist()


def binance_dump_rows(week, unit=1):
    rows = []
    for r in week.itertuples():
        rows.append(f"{r.timestamp * unit},{r.open},{r.high},{r.low},{r.close},{r.volume},"
                    f"{(r.timestamp + H - 1) * unit},123.4,{r.Index + 10},1.0,2.0,0")
    return "\n".join(rows) + "\n"


def test_binance_monthly_dump_zip_with_trade_counts(tmp_path, week):
    path = tmp_path / "BTCUSDT-1h-2022-08.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1h-2022-08.csv", binance_dump_rows(week))
    frame = read_candles(path, H)
    assert frame["timestamp"].tolist() == week["timestamp"].tolist()
    assert frame["trades"].tolist() == list(range(10, 178))


def test_binance_dump_in_microseconds_and_with_header(tmp_path, week):
    path = tmp_path / "BTCUSDT-1h-2025-01.csv"
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              "taker_buy_volume,taker_buy_quote_volume,ignore\n")
    path.write_text(header + binance_dump_rows(week, unit=1000))
    assert read_candles(path, H)["timestamp"].tolist() == week["timestamp"].tolist()


@pytest.mark.parametrize(("content", "message"), [
    ("timestamp,open,high,low,close\n1,1,1,1,1\n", "missing column.*volume"),
    ("timestamp,open,high,low,close,volume\n", "no candles"),
    ("timestamp,open,high,low,close,volume\n1659312000000,1,2,1,1,abc\n",
     "row 1: volume 'abc' is not a number"),
    ("timestamp,open,high,low,close,volume\n1659312000,1,2,1,1,1\n", "looks like seconds"),
    ("timestamp,open,high,low,close,volume\n1659312000000,1,2,1,1,-5\n", "negative"),
    ("timestamp,open,high,low,close,volume\n1659312000000,1,0.5,1,1,5\n", "high is below low"),
    ("timestamp,open,high,low,close,volume\n1659312000000,1,2,1,1,5,7\n",
     "rows have more fields than the header"),  # once "timestamp looks like seconds"
    ("timestamp,open,high,low,close,volume\n1659312000000,1,5,2,1,3\n",
     "open or close outside low..high"),
    ("timestamp,open,high,low,close,volume\n1659312000000,1,2,1,1,5\n1659312000000,1,2,1,1,6\n",
     "two different candles open at 2022-08-01 00:00"),
    ("timestamp,open,high,low,close,volume\n1659312000000,1,2,1,1,5\n1659313800000,1,2,1,1,6\n",
     "not on the timeframe's grid"),
])
def test_malformed_csv_files_get_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(VolcastError, match=message) as info:
        read_candles(path, H)
    assert "\n" not in str(info.value)
    assert "bad.csv" in str(info.value)


def test_wrong_timeframe_is_caught_before_it_fakes_gaps(tmp_path, week):
    path = tmp_path / "hourly.csv"
    write_candles(week, path)
    with pytest.raises(VolcastError, match="mostly 60 minutes apart, not 5"):
        read_candles(path, 300_000)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("x.json", "[[1, 2", "not valid JSON"),
    ("x.json", '{"a": 1}', "expected a list"),
    ("x.feather", "not arrow", "cannot read as feather"),
    ("x.parquet", "not parquet", "cannot read as parquet"),
    ("x.zip", "not a zip", "cannot read as binance-dump"),
    ("x.xlsx", "??", "cannot tell the format"),
])
def test_damaged_files_of_each_format(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(VolcastError, match=message):
        read_candles(path, H)


def test_missing_file_and_unknown_format_name(tmp_path):
    with pytest.raises(VolcastError, match="no such file"):
        read_candles(tmp_path / "nope.csv", H)
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(VolcastError, match="unknown format 'xls'"):
        read_candles(tmp_path / "a.csv", H, fmt="xls")


FUTURE = 4_102_444_800_000  # 2100-01-01
ABSURD = 9_000_000_000_000_000_000  # the year 285,200,616
GOOD = [[1_704_067_200_000 + i * H, 1.0, 2.0, 0.5, 1.5, 10.0, 7] for i in range(3)]
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume", "trades"]
BAD_ROWS = {  # case: (column, value as a file would hold it, what the one line says)
    "from 2100": ("timestamp", FUTURE, "opens after now"),
    "year 285,200,616": ("timestamp", ABSURD, "opens after now"),
    "before 2009": ("timestamp", 1_230_000_000_000, "opens before 2009-01-01"),
    "inf": ("volume", float("inf"), "not a finite number"),
    "Infinity": ("volume", "Infinity", "not a finite number"),
    "1e308": ("volume", 1e308, "above 1e+18"),
    "true": ("volume", True, "volume 'True' is not a number"),
    "negative trades": ("trades", -3, "trade count is not a whole number"),
    "fractional trades": ("trades", 1.5, "trade count is not a whole number"),
}


def write_raw(path, rows, fmt):
    """Rows of COLUMNS written as each format holds them, values untouched (no validation)."""
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as parquet

    if fmt == "csv":
        path.write_text("\n".join([",".join(COLUMNS)] + [",".join(map(str, r)) for r in rows]))
    elif fmt == "json":
        path.write_text(json.dumps([r[:6] for r in rows]))
    elif fmt == "binance-dump":
        path.write_text("".join(f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[0]},1,{r[6]},1,1,0\n"
                                for r in rows))
    else:
        table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)})
        (feather.write_feather if fmt == "feather" else parquet.write_table)(table, path)


@pytest.mark.parametrize("case", BAD_ROWS)
@pytest.mark.parametrize(("fmt", "name"), [("csv", "c.csv"), ("json", "c.json"),
                                           ("feather", "c.feather"), ("parquet", "c.parquet"),
                                           ("binance-dump", "BTCUSDT-1h-2024-01.csv")])
def test_every_reader_refuses_impossible_times_and_values(tmp_path, fmt, name, case):
    column, value, message = BAD_ROWS[case]
    binary = fmt in ("feather", "parquet")
    if (fmt == "json" and column == "trades") or (binary and value == "Infinity"):
        pytest.skip("the format cannot hold it")
    rows = [list(r) for r in GOOD]
    rows[1][COLUMNS.index(column)] = value
    if binary and value is True:  # a column holds one type: a bool column of volumes
        rows = [[*r[:5], True, *r[6:]] for r in rows]
    write_raw(tmp_path / name, rows, fmt)
    with pytest.raises(VolcastError) as info:
        read_candles(tmp_path / name, H)
    text = str(info.value)
    assert "\n" not in text and name in text
    assert message in text and "row " in text
    assert f"row {1 if binary and value is True else 2}:" in text


def test_the_bounds_are_inclusive_of_real_data(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[1][5], rows[1][6] = 1e17, 10**9
    write_raw(tmp_path / "c.csv", rows, "csv")
    assert read_candles(tmp_path / "c.csv", H)["trades"].tolist() == [7, 10**9, 7]


def test_a_read_only_format_is_refused_for_writing_in_one_line(tmp_path, btc):
    with pytest.raises(VolcastError, match="reads binance-dump files but does not write them"):
        write_candles(btc.head(3), tmp_path / "x.csv", "binance-dump")
    assert not (tmp_path / "x.csv").exists()


def test_an_exchange_page_may_hold_an_open_outside_low_high_a_file_may_not():
    """Some exchanges' APIs send such candles (ccxt's tests skip the check for them): a page
    refused for one would stop that market's download at it on every run."""
    frame = pd.DataFrame({"timestamp": [1659312000000], "open": [1.0], "high": [5.0],
                          "low": [2.0], "close": [3.0], "volume": [3.0]})
    check_values(frame, "page", 2 * 1659312000000, "the exchange's clock")
    with pytest.raises(VolcastError, match=r"open or close outside low\.\.high"):
        check_values(frame, "file", 2 * 1659312000000, "now", within_range=True)
