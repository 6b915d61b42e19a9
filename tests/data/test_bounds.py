"""Every reader streams its file and stops at the bounds: rows, bytes after decompression, and
lines that never end. Bombs are generated here; memory is measured in tests/test_cli.py."""

import gzip
import json
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from volcast.data.formats import Limits, read_candles, write_candles
from volcast.data.formats import arrow as arrow_module
from volcast.data.formats import binance_dump as dump_module
from volcast.data.formats import csv as csv_module
from volcast.data.formats import freqtrade_json as json_module
from volcast.data.formats.bounds import MAX_LINE_BYTES
from volcast.errors import VolcastError

H = 3_600_000
ROW = b"1704067200000,1.0,2.0,0.5,1.5,10.0\n"


def gzip_of(path, block: bytes, times: int, head: bytes = b""):
    """A gzip file of ``head`` then ``block`` repeated: megabytes on disk, far more inside."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(head)
        for _ in range(times):
            out.write(block)
    return path


@pytest.mark.parametrize("name", ["c.csv", "c.csv.gz", "c.json", "c.json.gz", "c.feather",
                                  "c.parquet"])
def test_reading_in_small_chunks_changes_nothing(tmp_path, btc, monkeypatch, name):
    """Chunk and block edges fall between rows of the whole sample: nothing lost or doubled,
    and a bad row is named by its place in the file, not in its chunk."""
    monkeypatch.setattr(csv_module, "CHUNK_ROWS", 1000)
    monkeypatch.setattr(json_module, "_BLOCK", 4096)
    monkeypatch.setattr(arrow_module, "CHUNK_ROWS", 1000)
    write_candles(btc, tmp_path / name)
    pd.testing.assert_frame_equal(read_candles(tmp_path / name, H), btc)
    bad = btc.copy()
    bad.loc[4999, "volume"] = -1.0
    write_candles(bad, tmp_path / name)
    with pytest.raises(VolcastError, match="row 5000: negative price or volume"):
        read_candles(tmp_path / name, H)


def test_a_binance_dump_in_small_chunks_keeps_its_header_rule(tmp_path, btc, monkeypatch):
    monkeypatch.setattr(dump_module, "CHUNK_ROWS", 100)
    week = btc.iloc[:168]
    rows = "".join(f"{r.timestamp},{r.open},{r.high},{r.low},{r.close},{r.volume},"
                   f"{r.timestamp + H - 1},1,{i},1,1,0\n" for i, r in enumerate(week.itertuples()))
    path = tmp_path / "BTCUSDT-1h-2022-08.csv"
    path.write_text("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                    "taker_buy_volume,taker_buy_quote_volume,ignore\n" + rows)
    frame = read_candles(path, H)
    assert frame["trades"].tolist() == list(range(168))


@pytest.mark.parametrize(("name", "block"), [
    ("rows.csv.gz", ROW * 30_000),
    ("rows.json.gz", b"[1704067200000,1.0,2.0,0.5,1.5,10.0]," * 30_000),
])
def test_more_rows_than_the_bound_are_refused_naming_it_and_its_flag(tmp_path, name, block):
    head = b"timestamp,open,high,low,close,volume\n" if name.endswith("csv.gz") else b"["
    path = gzip_of(tmp_path / name, block, 20, head)  # 600,000 rows
    with pytest.raises(VolcastError) as info:
        read_candles(path, H, limits=Limits(max_rows=100_000))
    assert str(info.value) == (f"{name}: more than 100,000 rows, the bound on one file; if the "
                               "file is genuine, raise it with `volcast import --max-rows N`")


@pytest.mark.parametrize("name", ["rows.csv.gz", "rows.json.gz"])
def test_more_bytes_than_the_bound_are_refused_naming_it_and_its_flag(tmp_path, name):
    head = b"timestamp,open,high,low,close,volume\n" if name.endswith("csv.gz") else b"["
    block = ROW * 30_000 if name.endswith("csv.gz") else b"[1704067200000,1,2,0.5,1.5,10]," * 30_000
    path = gzip_of(tmp_path / name, block, 10, head)
    with pytest.raises(VolcastError) as info:
        read_candles(path, H, limits=Limits(max_bytes=2_000_000))
    assert str(info.value) == (f"{name}: more than 2,000,000 bytes after decompression, the "
                               "bound on one file; if the file is genuine, raise it with "
                               "`volcast import --max-bytes N`")


@pytest.mark.parametrize("name", ["zeros.csv.gz", "zeros.csv", "BTCUSDT-1h-2024-01.csv"])
def test_a_line_that_never_ends_is_refused(tmp_path, name):
    if name.endswith(".gz"):
        path = gzip_of(tmp_path / name, b"0" * 1_000_000, 5,
                       b"timestamp,open,high,low,close,volume\n")
    else:
        path = tmp_path / name
        path.write_bytes(b"1704067200000" + b"0" * 5_000_000)
    with pytest.raises(VolcastError, match=f"a line longer than {MAX_LINE_BYTES:,} bytes"):
        read_candles(path, H)


def test_json_that_is_not_rows_is_refused_at_its_first_block(tmp_path):
    zeros = gzip_of(tmp_path / "zeros.json.gz", b"0" * 1_000_000, 200)
    with pytest.raises(VolcastError, match="expected a list of"):
        read_candles(zeros, H)
    row = gzip_of(tmp_path / "one-row.json.gz", b"0," * 1_000_000, 5, b"[[")
    with pytest.raises(VolcastError, match=f"a row longer than {MAX_LINE_BYTES:,} bytes"):
        read_candles(row, H)


def test_a_zip_is_refused_by_the_size_it_declares_before_it_is_inflated(tmp_path, monkeypatch):
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BTCUSDT-1h-2024-01.csv", b"1704067200000,1,2,0.5,1.5,10,"
                         b"1704070799999,1,7,1,1,0\n" * 200_000)
    parsed = []
    monkeypatch.setattr(dump_module.pd, "read_csv", lambda *a, **k: parsed.append(1))
    with pytest.raises(VolcastError, match="more than 1,000,000 bytes after decompression"):
        read_candles(path, H, limits=Limits(max_bytes=1_000_000))
    assert parsed == []


def test_columnar_files_are_refused_by_what_they_declare_before_decompressing(tmp_path,
                                                                               monkeypatch):
    rows = 300_000
    table = pa.table({"date": pa.array(range(rows), pa.timestamp("ms", "UTC")),
                      **{c: pa.array([1.0] * rows) for c in ("open", "high", "low", "close",
                                                               "volume")}})
    feather.write_feather(table, tmp_path / "c.feather", compression="zstd", chunksize=rows)
    table.to_pandas().to_parquet(tmp_path / "c.parquet", compression="zstd")
    decoded = []
    monkeypatch.setattr(arrow_module.pa.ipc, "read_record_batch",
                        lambda *a: decoded.append(1))
    monkeypatch.setattr(arrow_module.parquet.ParquetFile, "iter_batches",
                        lambda *a, **k: decoded.append(1))
    for name in ("c.feather", "c.parquet"):
        with pytest.raises(VolcastError, match=f"{name}: more than 1,000 rows"):
            read_candles(tmp_path / name, H, limits=Limits(max_rows=1000))
        with pytest.raises(VolcastError, match="more than 100,000 bytes after decompression"):
            read_candles(tmp_path / name, H, limits=Limits(max_bytes=100_000))
    assert decoded == []


def test_a_feather_batch_declares_what_it_decompresses_to(tmp_path, btc):
    write_candles(btc, tmp_path / "c.feather")  # lz4, batches of 64K rows
    with pa.memory_map(str(tmp_path / "c.feather")) as source:
        source.seek(8)
        schema = pa.ipc.read_schema(pa.ipc.read_message(source))
        message = pa.ipc.read_message(source)
        batch = pa.ipc.read_record_batch(message, schema)
    assert arrow_module.batch_size(message) == (batch.num_rows, batch.nbytes)
    assert batch.num_rows == len(btc)


@pytest.mark.parametrize(("rows", "size", "flag"), [(0, 10, "--max-rows"), (10, -1, "--max-bytes")])
def test_bounds_must_be_positive(rows, size, flag):
    with pytest.raises(VolcastError, match=f"{flag} must be at least 1"):
        Limits(rows, size)


def test_json_rows_keep_their_numbers(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([[1704067200000 + i * H, 1, 2, 0.5, 1.5, i] for i in range(5)]))
    assert read_candles(path, H)["volume"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
