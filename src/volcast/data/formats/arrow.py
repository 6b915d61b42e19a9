"""Columnar files through pyarrow: freqtrade's feather files (a ``date`` column, UTC datetimes)
and Parquet (``timestamp`` in ms, or ``date`` datetimes); both written with ``date``.

Both are read one record batch (feather) or batch of a row group (Parquet) at a time, and each
is checked against the bounds by what the file declares before it is decompressed: Parquet's
footer holds rows and uncompressed sizes; a feather batch's header holds its rows and buffers,
and each compressed buffer starts with its uncompressed length (the Arrow IPC format)."""

import struct
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as parquet

from volcast.data.formats.base import CandleFormat
from volcast.data.formats.bounds import CHUNK_ROWS, Limits
from volcast.data.store import CANDLE_COLUMNS, PRICE_COLUMNS
from volcast.errors import VolcastError


def _from_table(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.rename(columns=str.lower)
    if "timestamp" not in frame and "date" in frame:
        dates = pd.to_datetime(frame["date"], utc=True)
        frame["timestamp"] = dates.astype("datetime64[ms, UTC]").astype("int64")
    missing = [c for c in CANDLE_COLUMNS if c not in frame]
    if missing:
        raise VolcastError(f"{name}: missing column(s) {', '.join(missing)} (need date or "
                           "timestamp, open, high, low, close, volume)")
    return frame[[c for c in [*CANDLE_COLUMNS, "trades"] if c in frame]]


def _to_table(frame: pd.DataFrame) -> pd.DataFrame:
    dates = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return pd.DataFrame({"date": dates, **{c: frame[c] for c in PRICE_COLUMNS}})


def _field(meta: bytes, table: int, index: int) -> int | None:
    """Where field ``index`` of the flatbuffer table at ``table`` lies, None when absent."""
    vtable = table - struct.unpack_from("<i", meta, table)[0]
    at = 4 + 2 * index
    if at >= struct.unpack_from("<H", meta, vtable)[0]:
        return None
    offset = struct.unpack_from("<H", meta, vtable + at)[0]
    return table + offset if offset else None


def _deref(meta: bytes, at: int | None) -> int:
    if at is None:
        raise ValueError("record batch header lacks a required field")
    return at + struct.unpack_from("<I", meta, at)[0]


def batch_size(message: pa.ipc.Message) -> tuple[int, int]:
    """(rows, bytes once decompressed) of an Arrow IPC record batch, read from its header and
    buffer prefixes without decompressing it. Message.header is RecordBatch{length, nodes,
    buffers: [Buffer{offset, length}], compression}; a compressed buffer begins with its
    uncompressed length as int64 (-1: stored as is)."""
    meta = message.metadata.to_pybytes()
    header = _deref(meta, _field(meta, _deref(meta, 0), 2))
    length_at = _field(meta, header, 0)  # absent when 0, as flatbuffers leave defaults out
    rows = struct.unpack_from("<q", meta, length_at)[0] if length_at else 0
    buffers = _deref(meta, _field(meta, header, 2))
    compressed = _field(meta, header, 3) is not None
    size = 0
    for index in range(struct.unpack_from("<I", meta, buffers)[0]):
        offset, length = struct.unpack_from("<qq", meta, buffers + 4 + 16 * index)
        if compressed and length >= 8:
            declared = struct.unpack_from("<q", message.body, offset)[0]
            size += length - 8 if declared == -1 else declared
        else:
            size += length
    return rows, size


class FeatherFormat(CandleFormat):
    name = "feather"
    suffixes = (".feather",)

    def read(self, path: Path, limits: Limits) -> Iterator[pd.DataFrame]:
        with pa.memory_map(str(path)) as source:
            if source.read(6) != b"ARROW1":
                raise ValueError("not an Arrow IPC (feather version 2) file")
            source.seek(8)
            schema = pa.ipc.read_schema(pa.ipc.read_message(source))
            rows = size = 0
            while True:
                try:
                    message = pa.ipc.read_message(source)
                except EOFError:
                    return
                if message.type != "record batch":
                    raise VolcastError(f"{path.name}: holds a {message.type}; candle columns "
                                       "are plain numbers and dates")
                batch_rows, batch_bytes = batch_size(message)
                rows, size = rows + batch_rows, size + batch_bytes
                limits.check_rows(rows, path.name)
                limits.check_bytes(size, path.name)
                batch = pa.ipc.read_record_batch(message, schema)
                yield _from_table(batch.to_pandas(), path.name)

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        feather.write_feather(_to_table(frame), path, compression="lz4")


class ParquetFormat(CandleFormat):
    name = "parquet"
    suffixes = (".parquet",)

    def read(self, path: Path, limits: Limits) -> Iterator[pd.DataFrame]:
        with parquet.ParquetFile(path) as source:
            meta = source.metadata
            limits.check_rows(meta.num_rows, path.name)
            limits.check_bytes(sum(meta.row_group(i).total_byte_size
                                   for i in range(meta.num_row_groups)), path.name)
            for batch in source.iter_batches(batch_size=CHUNK_ROWS):
                yield _from_table(batch.to_pandas(), path.name)

    def write(self, frame: pd.DataFrame, path: Path) -> None:
        _to_table(frame).to_parquet(path, index=False)
