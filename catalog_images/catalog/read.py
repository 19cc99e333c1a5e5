"""Read a catalog (CSV or Parquet, local or s3://) in bounded batches of plain dicts."""

from __future__ import annotations

import csv
import io
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from catalog_images.catalog.bounds import (
    MAX_CELL_CHARS,
    PARQUET_READ_ROWS,
    Batches,
    CappedGzip,
    cut_long_cells,
    decode_rows,
    text_columns,
)
from catalog_images.catalog.fetch import CatalogFetchError, fetch_catalog, max_catalog_bytes
from catalog_images.destination.storage import S3Settings

BATCH_ROWS = 10_000
ROW_NUMBER = "_row"  # 1-based data row number added to every row dict
BAD_LINE = "_bad_line"  # "line N (problem): text" for a CSV record that could not be parsed
BAD_CELLS = "_bad_cells"  # Parquet columns whose cell on this row is not valid UTF-8
LONG_CELLS = "_long_cells"  # Parquet column -> length of its cell on this row, when cut short
MAX_LINE_CHARS = 16 * 1024 * 1024  # a longer CSV line (or quoted field) is rejected unread
SHOWN_CHARS = 200  # of a bad line, in its rejection reason
READ_ERRORS = (OSError, EOFError, zlib.error, csv.Error, pa.ArrowException)


class CatalogError(ValueError):
    """The catalog cannot be read at all: the run stops before any request."""


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """A catalog ready to read: the local file, its format and where relative paths point."""

    uri: str
    local_path: Path
    fmt: str  # "csv" or "parquet"
    base: str  # directory (local path or s3:// prefix) for relative reference_image values


class Columns(list[str]):
    """A catalog's column names (stripped, unique), with its uri for messages and the Parquet
    columns that cannot be read as text (name -> type: list, struct, map...), which rows omit.
    """

    def __init__(self, names: list[str], uri: str = "", unreadable: dict[str, str] | None = None):
        super().__init__(names)
        self.uri = uri
        self.unreadable = unreadable or {}


def printable(text: str) -> str:
    """``text`` with control and invisible characters escaped (``\\n``, ``\\x00``), unquoted."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def catalog_format(uri: str) -> str:
    """'csv' or 'parquet' from the file name; CatalogError otherwise."""
    name = uri.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise CatalogError(f"catalog {uri!r}: unknown format; use a .csv or .parquet file")


def open_catalog(uri: str, settings: S3Settings, work_dir: Path,
                 max_bytes: int | None = None) -> CatalogFile:
    """Locate (for s3://, download under ``max_bytes``: catalog/fetch.py) the catalog;
    CatalogError when it cannot be read or is over the cap."""
    fmt = catalog_format(uri)
    if uri.startswith("s3://"):
        gz = ".gz" if uri.lower().endswith(".gz") else ""  # inflated as read, under its cap
        local = work_dir / ("catalog." + ("csv" if fmt == "csv" else "parquet") + gz)
        try:
            limit = max_catalog_bytes() if max_bytes is None else max_bytes
            fetch_catalog(settings, uri, local, limit)
        except CatalogFetchError as exc:
            raise CatalogError(str(exc)) from None
        return CatalogFile(uri, local, fmt, uri.rsplit("/", 1)[0])
    path = Path(uri).expanduser()
    if not path.is_file():
        raise CatalogError(f"catalog {uri}: no such file")
    return CatalogFile(uri, path, fmt, str(path.resolve().parent))


def read_columns(catalog: CatalogFile) -> Columns:
    """Column names, read from the CSV header or the Parquet schema, stripped of spaces.

    CatalogError when there is no header, or when a name appears twice.
    """
    unreadable: dict[str, str] = {}
    try:
        if catalog.fmt == "parquet":
            header, unreadable = _parquet_header(catalog)
        else:
            header = _csv_header(catalog)
    except UnicodeDecodeError:
        raise CatalogError(_not_utf8(catalog)) from None
    except (csv.Error, _LineTooLong) as exc:
        raise CatalogError(f"catalog {catalog.uri}: header line: {_csv_problem(exc)}") from None
    except READ_ERRORS as exc:
        raise CatalogError(f"catalog {catalog.uri}: cannot read: {_reason(exc)}") from None
    if not header or not any(h.strip() for h in header):
        raise CatalogError(f"catalog {catalog.uri}: empty file or no header line")
    names = [h.strip() for h in header]
    twice = [name for name, count in Counter(names).items() if name and count > 1]
    if twice:
        raise CatalogError(
            f"catalog {catalog.uri}: column {printable(twice[0])!r} appears twice in the header; "
            "rename or remove one of them"
        )
    return Columns(names, catalog.uri, unreadable)


def iter_rows(catalog: CatalogFile, batch_rows: int = BATCH_ROWS,
              columns: list[str] | None = None) -> Iterator[list[dict]]:
    """Yield the catalog as lists of at most ``batch_rows`` dicts of strings (or None), and
    of about bounds.BATCH_CHARS characters; only ``columns`` (all when None) are kept.

    Each dict carries its 1-based data row number under ``_row``, in file order. A CSV
    record that cannot be parsed (wrong number of fields, broken quoting, a line over
    MAX_LINE_CHARS) is not dropped: it comes as ``{"_row": n, "_bad_line": text}``. A
    Parquet cell that is not valid UTF-8 comes as None, its column listed under
    ``_bad_cells``; Parquet columns that cannot be text (Columns.unreadable) are left out.
    """
    header = read_columns(catalog)
    wanted = set(header if columns is None else columns)
    try:
        if catalog.fmt == "parquet":
            yield from _parquet_rows(catalog, header, wanted, batch_rows)
        else:
            yield from _csv_rows(catalog, header, wanted, batch_rows)
    except UnicodeDecodeError:
        raise CatalogError(_not_utf8(catalog)) from None
    except pa.ArrowInvalid as exc:
        raise CatalogError(f"catalog {catalog.uri}: {_reason(exc)}") from None
    except READ_ERRORS as exc:
        raise CatalogError(f"catalog {catalog.uri}: cannot read: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    return printable(text.splitlines()[0]) if text else type(exc).__name__


def _not_utf8(catalog: CatalogFile) -> str:
    line = _first_non_utf8_line(catalog.local_path) if catalog.fmt == "csv" else None
    where = f" on line {line}" if line else ""
    return f"catalog {catalog.uri}: not valid UTF-8 text{where}; re-save the file as UTF-8"


def _first_non_utf8_line(path: Path) -> int | None:
    """The number of the first line that is not UTF-8 (only read after a decoding error)."""
    try:
        with open_binary(path) as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except READ_ERRORS:
        pass
    return None


# --------------------------------------------------------------------------- CSV


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing a .gz file."""
    if path.name.lower().endswith(".gz"):
        return CappedGzip(path)
    return open(path, "rb")


def open_text(path: Path) -> TextIO:
    """Open a (possibly gzipped) UTF-8 text file, skipping a byte-order mark."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")


def _delimiter(catalog: CatalogFile) -> str:
    return "\t" if catalog.uri.lower().endswith(".tsv") else ","


class _LineTooLong(Exception):
    """A CSV line over MAX_LINE_CHARS: skipped without being kept in memory."""


class _Lines:
    """Numbered physical lines of a text file, fed to csv.reader.

    The lines of the record being parsed are kept, so that a record with broken quoting can
    be rejected alone and its other lines given back to be read as records of their own: an
    unclosed quote then costs one row, not every row after it.
    """

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._given_back: deque[tuple[int, str | None]] = deque()
        self._count = 0
        self.record: list[tuple[int, str | None]] = []  # (line number, text or None if too long)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        number, line = self._given_back.popleft() if self._given_back else self._read()
        self.record.append((number, line))
        if line is None:
            raise _LineTooLong(f"the line is over {MAX_LINE_CHARS} characters")
        return line

    def _read(self) -> tuple[int, str | None]:
        line = self._handle.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        self._count += 1
        if len(line) < MAX_LINE_CHARS or line.endswith(("\n", "\r")):
            return self._count, line
        while (rest := self._handle.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
            pass
        return self._count, None

    def give_back(self) -> None:
        """Make every line of the current record but its first the next ones read."""
        self._given_back.extendleft(reversed(self.record[1:]))

    def bad(self, problem: str, first_line_only: bool = False) -> str:
        """'line N (problem): text' for the current record, escaped and cut short."""
        number = self.record[0][0] if self.record else self._count
        shown = self.record[:1] if first_line_only else self.record
        text = "".join(line or "" for _, line in shown).rstrip("\r\n")
        cut = "..." if len(text) > SHOWN_CHARS else ""
        return f"line {number} ({problem}): {printable(text[:SHOWN_CHARS])}{cut}"


def _csv_reader(handle: TextIO, catalog: CatalogFile) -> tuple[_Lines, Iterator[list[str]]]:
    """A strict csv.reader over numbered lines: bad quoting is an error, not a guess."""
    if csv.field_size_limit() < MAX_LINE_CHARS:  # default 128 KiB; long prompts are rejected
        csv.field_size_limit(MAX_LINE_CHARS)  # by the validator with their length instead
    lines = _Lines(handle)
    return lines, csv.reader(lines, delimiter=_delimiter(catalog), strict=True)


def _csv_header(catalog: CatalogFile) -> list[str] | None:
    with open_text(catalog.local_path) as handle:
        return next(_csv_reader(handle, catalog)[1], None)


def _csv_rows(catalog: CatalogFile, columns: list[str], wanted: set[str],
              batch_rows: int) -> Iterator[list[dict]]:
    with open_text(catalog.local_path) as handle:
        lines, reader = _csv_reader(handle, catalog)
        next(reader, None)  # the header, read by read_columns
        batches = Batches(batch_rows)
        for number, row in enumerate(_csv_records(reader, lines, columns, wanted), start=1):
            row[ROW_NUMBER] = number
            if (batch := batches.add(row)) is not None:
                yield batch
        if batch := batches.take():
            yield batch


def _csv_records(reader: Iterator[list[str]], lines: _Lines, columns: list[str],
                 wanted: set[str]) -> Iterator[dict]:
    """Every record as a dict of the ``wanted`` columns, or as ``{BAD_LINE: ...}`` when it
    cannot be parsed."""
    width = len(columns)
    keep = [(i, name) for i, name in enumerate(columns) if name in wanted]
    while True:
        lines.record.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except (csv.Error, _LineTooLong) as exc:
            yield {BAD_LINE: lines.bad(_csv_problem(exc), first_line_only=True)}
            lines.give_back()
            continue
        if len(fields) == width:
            yield {name: fields[i] for i, name in keep}
        elif fields:  # [] is a blank line
            problem = f"{len(fields)} field{'s' * (len(fields) != 1)}, the header has {width}"
            yield {BAD_LINE: lines.bad(problem)}


def _csv_problem(exc: Exception) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return ("unclosed quote: the quoted field runs to the end of the file; close it, and "
                'write a quote inside a quoted field as ""')
    if "expected after" in text:
        return ("bad quoting: a closing quote must be followed by the delimiter or the end of "
                'the line; write a quote inside a quoted field as ""')
    if "field larger than field limit" in text:
        return f"a field is over {MAX_LINE_CHARS} characters (an unclosed quote?)"
    return printable(text)


# --------------------------------------------------------------------------- Parquet


def _parquet_header(catalog: CatalogFile) -> tuple[list[str], dict[str, str]]:
    """Column names and the columns that cannot be cast to text, with their types."""
    schema = pq.ParquetFile(catalog.local_path).schema_arrow
    unreadable = {field.name.strip(): str(field.type) for field in schema
                  if not _castable_to_text(field.type)}
    return list(schema.names), unreadable


def _castable_to_text(kind: pa.DataType) -> bool:
    try:
        pa.array([], type=kind).cast(pa.string())
    except (pa.ArrowException, TypeError, ValueError):
        return False
    return True


def _parquet_rows(catalog: CatalogFile, columns: Columns, used: set[str],
                  batch_rows: int) -> Iterator[list[dict]]:
    """Rows of the used, text-castable columns only: other columns are never decoded.

    Arrow decodes PARQUET_READ_ROWS rows at a time; rows are handed on in Batches."""
    plain = pq.ParquetFile(catalog.local_path)
    wanted = [(raw, name) for raw, name in zip(plain.schema_arrow.names, columns, strict=True)
              if name and name in used and name not in columns.unreadable]
    raws, names = [raw for raw, _ in wanted], [name for _, name in wanted]
    parquet = pq.ParquetFile(catalog.local_path, read_dictionary=text_columns(plain, raws))
    number = 0
    batches = Batches(batch_rows)
    step = decode_rows(parquet, raws, min(batch_rows, PARQUET_READ_ROWS))
    for batch in parquet.iter_batches(batch_size=step, columns=raws):
        rows: list[dict] = [{} for _ in range(batch.num_rows)]
        for name, array in zip(names, batch.columns, strict=True):
            array, long = cut_long_cells(array)
            cells, bad = _column_texts(catalog, name, array)
            for row, cell in zip(rows, cells, strict=True):
                row[name] = cell
            for index in bad:
                rows[index].setdefault(BAD_CELLS, []).append(name)
            for index, length in long.items():
                rows[index].setdefault(LONG_CELLS, {})[name] = length
        for row in rows:
            number += 1
            row[ROW_NUMBER] = number
            if (done := batches.add(row)) is not None:
                yield done
    if done := batches.take():
        yield done


def _column_texts(catalog: CatalogFile, name: str, array: pa.Array) -> tuple[list, list[int]]:
    """A column's cells as str or None, and the indexes of cells that are not valid UTF-8."""
    try:
        text = array.cast(pa.string())
        text.validate(full=True)
        return text.to_pylist(), []
    except pa.ArrowInvalid:
        pass
    try:
        raw = array.cast(pa.binary()).to_pylist()
    except pa.ArrowException as exc:
        raise CatalogError(
            f"catalog {catalog.uri}: column {printable(name)!r} cannot be read as text: "
            f"{_reason(exc)}"
        ) from None
    cells: list[str | None] = []
    bad: list[int] = []
    for index, value in enumerate(raw):
        try:
            cells.append(None if value is None else _decoded(value))
        except UnicodeDecodeError:
            cells.append(None)
            bad.append(index)
    return cells, bad


def _decoded(value: bytes) -> str:
    """A cell's text; a cell longer than any usable value is cut first (and then rejected
    for its length), so that it never becomes a huge Python string."""
    if len(value) > 4 * MAX_CELL_CHARS:
        return value[:4 * MAX_CELL_CHARS].decode("utf-8", "ignore")
    return value.decode("utf-8")
