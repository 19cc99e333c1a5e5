"""Read a catalog (CSV or Parquet, local or s3://) in bounded batches of plain dicts."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tasks.storage import S3Settings, StorageError, download_to

BATCH_ROWS = 10_000
ROW_NUMBER = "_row"  # 1-based data row number added to every row dict
BAD_LINE = "_bad_line"  # set on a CSV line that could not be parsed


class CatalogError(ValueError):
    """The catalog cannot be read at all: the run stops before any request."""


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """A catalog ready to read: the local file, its format and where relative paths point."""

    uri: str
    local_path: Path
    fmt: str  # "csv" or "parquet"
    base: str  # directory (local path or s3:// prefix) for relative reference_image values


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


def open_catalog(uri: str, settings: S3Settings, work_dir: Path) -> CatalogFile:
    """Locate (and for s3:// download) the catalog; CatalogError when it cannot be read."""
    fmt = catalog_format(uri)
    if uri.startswith("s3://"):
        local = work_dir / ("catalog." + ("csv" if fmt == "csv" else "parquet"))
        try:
            download_to(settings, uri, local)
        except StorageError as exc:
            raise CatalogError(f"catalog {uri}: {exc}") from None
        return CatalogFile(uri, local, fmt, uri.rsplit("/", 1)[0])
    path = Path(uri).expanduser()
    if not path.is_file():
        raise CatalogError(f"catalog {uri}: no such file")
    return CatalogFile(uri, path, fmt, str(path.resolve().parent))


def read_columns(catalog: CatalogFile) -> list[str]:
    """Column names, read from the CSV header or the Parquet schema."""
    try:
        if catalog.fmt == "parquet":
            return list(pq.ParquetFile(catalog.local_path).schema_arrow.names)
        with open_text(catalog.local_path) as handle:
            header = next(csv.reader(handle, delimiter=_delimiter(catalog)), None)
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"catalog {catalog.uri}: not valid UTF-8 text ({exc.reason} at byte {exc.start}); "
            "re-save the file as UTF-8"
        ) from None
    except (OSError, pa.ArrowException, csv.Error) as exc:
        raise CatalogError(f"catalog {catalog.uri}: cannot read: {exc}") from None
    if not header or not any(h.strip() for h in header):
        raise CatalogError(f"catalog {catalog.uri}: empty file or no header line")
    return [h.strip() for h in header]


def open_text(path: Path):
    """Open a (possibly gzipped) UTF-8 text file, skipping a byte-order mark."""
    if path.name.lower().endswith(".gz"):
        import gzip

        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _delimiter(catalog: CatalogFile) -> str:
    return "\t" if catalog.uri.lower().endswith(".tsv") else ","


def iter_rows(catalog: CatalogFile, batch_rows: int = BATCH_ROWS) -> Iterator[list[dict]]:
    """Yield the catalog as lists of at most ``batch_rows`` dicts of strings (or None).

    Each dict carries its 1-based data row number under ``_row``. A CSV line with the
    wrong number of fields is not dropped: it comes as ``{"_row": n, "_bad_line": text}``.
    """
    columns = read_columns(catalog)
    try:
        if catalog.fmt == "parquet":
            yield from _parquet_rows(catalog, batch_rows)
        else:
            yield from _csv_rows(catalog, columns, batch_rows)
    except pa.ArrowInvalid as exc:
        raise CatalogError(f"catalog {catalog.uri}: {_arrow_message(exc)}") from None
    except (OSError, pa.ArrowException) as exc:
        raise CatalogError(f"catalog {catalog.uri}: cannot read: {exc}") from None


def _arrow_message(exc: Exception) -> str:
    text = str(exc)
    if "UTF8" in text or "UTF-8" in text:
        return f"not valid UTF-8 text ({text.splitlines()[0]}); re-save the file as UTF-8"
    return text.splitlines()[0] if text else type(exc).__name__


def _parquet_rows(catalog: CatalogFile, batch_rows: int) -> Iterator[list[dict]]:
    number = 0
    for batch in pq.ParquetFile(catalog.local_path).iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
        rows = table.to_pylist()
        for row in rows:
            number += 1
            row[ROW_NUMBER] = number
        yield rows


def _csv_rows(catalog: CatalogFile, columns: list[str], batch_rows: int) -> Iterator[list[dict]]:
    bad_lines: list[tuple[int | None, str]] = []

    def on_invalid(row) -> str:
        bad_lines.append((row.number, row.text or ""))
        return "skip"

    reader = pacsv.open_csv(
        catalog.local_path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=4 << 20),
        parse_options=pacsv.ParseOptions(
            delimiter=_delimiter(catalog), invalid_row_handler=on_invalid,
            newlines_in_values=True,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in columns}, strings_can_be_null=False,
        ),
    )
    number = 0
    pending: list[dict] = []
    for batch in reader:
        for row in batch.to_pylist():
            number += 1
            row[ROW_NUMBER] = number
            pending.append(row)
        while bad_lines:
            line, text = bad_lines.pop(0)
            number += 1
            pending.append({ROW_NUMBER: number, BAD_LINE: f"line {line}: {text[:200]}"})
        while len(pending) >= batch_rows:
            yield pending[:batch_rows]
            pending = pending[batch_rows:]
    for line, text in bad_lines:
        number += 1
        pending.append({ROW_NUMBER: number, BAD_LINE: f"line {line}: {text[:200]}"})
    if pending:
        yield pending
