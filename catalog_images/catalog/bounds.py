"""Memory and work bounds for reading a catalog someone else wrote.

A batch of rows is bounded by characters as well as rows (a 24 KB Parquet file of repeated
long strings once made one 10,000-row batch take 1 GiB); Parquet cells longer than any
usable value are cut before they become Python strings (their rows are rejected); a
gzipped CSV may inflate only so far (a 3 MB file can inflate to gigabytes).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH_CHARS = 64 * 1024 * 1024  # characters of used cells per batch of row dicts
PARQUET_READ_ROWS = 1024  # rows Arrow decodes at once at most, whatever the batch size
DECODE_BYTES = 64 * 1024 * 1024  # plain-encoded bytes Arrow decodes at once, about
MAX_CELL_CHARS = 64 * 1024  # longer than any valid prompt, sku or path: cut (then rejected)
INFLATE_RATIO = 200  # a .gz catalog inflates to at most this times its size...
MIN_INFLATE_CAP = 256 * 1024 * 1024  # ...or this many bytes, whichever is more


class InflateCapExceeded(OSError):
    """A compressed catalog inflates past its cap (a decompression bomb, or not a catalog)."""


class CappedGzip(gzip.GzipFile):
    """A gzip reader that stops once it has inflated more than ``limit`` bytes."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        super().__init__(path, "rb")
        size = os.path.getsize(path)
        self.limit = limit if limit is not None else max(MIN_INFLATE_CAP, size * INFLATE_RATIO)
        self.inflated = 0

    def _count(self, data: bytes) -> bytes:
        self.inflated += len(data)
        if self.inflated > self.limit:
            raise InflateCapExceeded(
                f"it inflates to over {self.limit} bytes ({INFLATE_RATIO} times its size at "
                "most); split it, or store it uncompressed")
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._count(super().read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._count(super().read1(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(super().readline(size))


def cell_chars(row: dict) -> int:
    """Characters a row dict holds in its text cells (its share of a batch's bound)."""
    return sum(len(value) for value in row.values() if isinstance(value, str))


class Batches:
    """Rows gathered into batches of at most ``rows`` rows and about BATCH_CHARS characters."""

    def __init__(self, rows: int, chars: int = BATCH_CHARS) -> None:
        self.rows, self.chars = rows, chars
        self.batch: list[dict] = []
        self._chars = 0

    def add(self, row: dict) -> list[dict] | None:
        """Add a row; the finished batch when this row completes one, else None."""
        self.batch.append(row)
        self._chars += cell_chars(row)
        if len(self.batch) >= self.rows or self._chars >= self.chars:
            return self.take()
        return None

    def take(self) -> list[dict]:
        """The rows gathered so far (perhaps none), and start a new batch."""
        batch, self.batch, self._chars = self.batch, [], 0
        return batch


def text_columns(parquet: pq.ParquetFile, names: list[str]) -> list[str]:
    """The string columns among ``names``: read as dictionaries, cut before decoding."""
    schema = parquet.schema_arrow
    return [n for n in names if pa.types.is_string(schema.field(n).type)
            or pa.types.is_large_string(schema.field(n).type)]


def decode_rows(parquet: pq.ParquetFile, names: list[str], most: int) -> int:
    """Rows to decode at once so that the ``names`` columns' plain-encoded bytes (from the
    row groups' metadata) stay near DECODE_BYTES; at least 1, at most ``most``."""
    metadata, wanted, worst = parquet.metadata, set(names), 0.0
    for number in range(metadata.num_row_groups):
        group = metadata.row_group(number)
        if group.num_rows:
            size = sum(group.column(i).total_uncompressed_size for i in range(group.num_columns)
                       if group.column(i).path_in_schema.split(".")[0] in wanted)
            worst = max(worst, size / group.num_rows)
    return max(1, min(most, int(DECODE_BYTES // max(worst, 1.0))))


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def cut_long_cells(array: pa.Array) -> tuple[pa.Array, dict[int, int]]:
    """``array`` (decoded if read as a dictionary) with text cells over MAX_CELL_CHARS cut to
    that length before they become Python strings, and {row index: original length} of the
    cells cut, so that their rows are rejected for their real length."""
    dictionary = pa.types.is_dictionary(array.type)
    values = array.dictionary if dictionary else array
    lengths = pc.utf8_length(values) if _is_text(values.type) and len(values) else None
    if lengths is None or (pc.max(lengths).as_py() or 0) <= MAX_CELL_CHARS:
        return (array.dictionary_decode() if dictionary else array), {}
    values = pc.utf8_slice_codeunits(values, 0, MAX_CELL_CHARS)
    row_lengths = pc.take(lengths, array.indices) if dictionary else lengths
    where = pc.indices_nonzero(pc.fill_null(pc.greater(row_lengths, MAX_CELL_CHARS), False))
    long = {i: row_lengths[i].as_py() for i in where.to_pylist()}
    if dictionary:
        values = pa.DictionaryArray.from_arrays(array.indices, values).dictionary_decode()
    return values, long
