"""The destination's index of current outputs: which sku holds an image of which fingerprint.

Append-only, so overlapping runs never overwrite each other's knowledge:
- ``state/parts/{run_id}/{seq}.parquet``: what a run uploaded, written as chunks finish;
- ``state/snapshots/{run_id}.parquet`` + ``.json``: a merged view and the runs it includes,
  written at the end of a run that uploaded something.
A reader takes the newest snapshot and every part of a run that snapshot does not include;
for a sku, the newest run wins. A quarantined image (a paid image of the wrong shape, under
``quarantine/``) is entered with its fingerprint marked (``quarantined_fingerprint``): the
plan settles its row without paying again, and never mistakes it for the row's image.
The index is an optimisation: before paying for a row the
pipeline still checks the object's own ``fingerprint`` metadata (tasks/generate.py), so a
stale index can cost a HEAD request, never an image.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import (
    S3Location,
    S3Settings,
    StorageError,
    capped_read,
    describe_s3_error,
)

log = logging.getLogger(__name__)
INDEX_SCHEMA = pa.schema([("sku", pa.string()), ("fingerprint", pa.string()),
                          ("s3_key", pa.string()), ("run_id", pa.string())])
BATCH_ROWS = 10_000
# Read back from a bucket others may write: a bigger object, or one of another shape, is
# skipped with a warning (the index is an optimisation; the image's metadata is the truth).
MAX_PART_BYTES = 64 * 1024 * 1024
MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
MAX_RUNS_BYTES = 16 * 1024 * 1024
INDEX_COLUMNS = ("sku", "fingerprint", "run_id")

QUARANTINED_MARK = "quarantined:"


def quarantined_fingerprint(fingerprint: str) -> str:
    """The index's fingerprint of a quarantined image of ``fingerprint``."""
    return QUARANTINED_MARK + fingerprint


@dataclass
class OutputIndex:
    """sku -> (fingerprint, run_id) of the image currently at the destination."""

    entries: dict[str, tuple[str, str]] = field(default_factory=dict)
    runs: set[str] = field(default_factory=set)  # runs the snapshot read includes
    part_runs: set[str] = field(default_factory=set)  # runs read from their parts files
    location: S3Location | None = None  # the destination this index describes

    def add_table(self, table: pa.Table | Iterable[pa.RecordBatch]) -> None:
        """Merge rows; for a sku the newest run wins.

        A batch at a time, with one string per run id: a million-entry snapshot read whole
        into Python lists, one run id copy per row, took 650 MiB (bench/memory.py).
        """
        batches = table.to_batches(BATCH_ROWS) if isinstance(table, pa.Table) else table
        run_ids: dict[str, str] = {}
        for batch in batches:
            for sku, fp, run_id in zip(batch.column("sku").to_pylist(),
                                       batch.column("fingerprint").to_pylist(),
                                       batch.column("run_id").to_pylist(), strict=True):
                run_id = run_ids.setdefault(run_id, run_id)
                current = self.entries.get(sku)
                if current is None or run_id >= current[1]:
                    self.entries[sku] = (fp, run_id)

    def fingerprint(self, sku: str) -> str | None:
        """The fingerprint of the sku's current image, or None."""
        entry = self.entries.get(sku)
        return entry[0] if entry else None

    def table(self) -> pa.Table:
        """The merged view as a table."""
        skus = list(self.entries)
        return pa.table({"sku": skus, "fingerprint": [self.entries[s][0] for s in skus],
                         "s3_key": [None] * len(skus),
                         "run_id": [self.entries[s][1] for s in skus]}, schema=INDEX_SCHEMA)


def _list_keys(client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return sorted(keys)


def _read_parquet(client, bucket: str, key: str, max_bytes: int) -> Iterator[pa.RecordBatch]:
    """The index columns of a parts file or snapshot; StorageError/ValueError when it is too
    big or its columns are not the index's text columns."""
    body = capped_read(client.get_object(Bucket=bucket, Key=key)["Body"], max_bytes, key)
    parquet = pq.ParquetFile(io.BytesIO(body))
    schema = parquet.schema_arrow
    for name in INDEX_COLUMNS:
        if schema.get_field_index(name) < 0 or not pa.types.is_string(schema.field(name).type):
            raise ValueError(f"column {name!r} missing or not text")
    yield from parquet.iter_batches(BATCH_ROWS, columns=list(INDEX_COLUMNS))


def _add_object(index: OutputIndex, client, bucket: str, key: str, max_bytes: int) -> bool:
    """Merge one parts file or snapshot into ``index``; False (with a warning) when bad."""
    try:
        index.add_table(_read_parquet(client, bucket, key, max_bytes))
        return True
    except (ClientError, BotoCoreError) as exc:
        problem = describe_s3_error(exc)
    except (StorageError, ValueError, TypeError, OSError, pa.ArrowException) as exc:
        problem = f"{type(exc).__name__}: {str(exc)[:200]}"
    log.warning("index object s3://%s/%s skipped: %s", bucket, key, problem)
    return False


def _snapshot_runs(client, bucket: str, key: str) -> set[str] | None:
    """The runs a snapshot includes, or None when its list is unreadable or malformed."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        runs = json.loads(capped_read(body, MAX_RUNS_BYTES, key))["runs"]
        if isinstance(runs, list) and all(isinstance(run, str) for run in runs):
            return set(runs)
    except (ClientError, BotoCoreError, StorageError, ValueError, TypeError, KeyError,
            RecursionError):
        pass
    log.warning("index snapshot list s3://%s/%s unreadable: the snapshot is skipped", bucket,
                key)
    return None


def load_index(settings: S3Settings, location: S3Location) -> OutputIndex:
    """Read the newest snapshot and the parts of every run it does not include.

    A snapshot or part that is unreadable, too big or of another shape is skipped with a
    warning; without a usable snapshot every part is read.
    """
    client = settings.boto3_client()
    index = OutputIndex(location=location)
    layout = DestinationLayout(location)
    snapshots = [k for k in _list_keys(client, location.bucket, layout.snapshots_prefix())
                 if layout.is_snapshot(k)]
    if snapshots:
        latest = snapshots[-1]
        runs = _snapshot_runs(client, location.bucket, layout.snapshot_runs_key(latest))
        if runs is not None and _add_object(index, client, location.bucket, latest,
                                            MAX_SNAPSHOT_BYTES):
            index.runs = runs
        else:
            index.entries.clear()
    for key in _list_keys(client, location.bucket, layout.index_parts_prefix()):
        run_id = layout.run_of_index_part(key)
        if run_id not in index.runs and _add_object(index, client, location.bucket, key,
                                                    MAX_PART_BYTES):
            index.part_runs.add(run_id)
    pa.default_memory_pool().release_unused()  # the Parquet buffers, back to the system
    return index


def part_bytes(rows: list[dict]) -> bytes:
    """A parts file: rows with sku, fingerprint, s3_key, run_id."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA), buffer)
    return buffer.getvalue()


def part_key(location: S3Location, run_id: str, seq: int) -> str:
    """Where a run's n-th parts file goes."""
    return DestinationLayout(location).index_part_key(run_id, seq)


def write_snapshot(settings: S3Settings, location: S3Location, run_id: str) -> int:
    """Merge the current view into a new snapshot (after this run's parts are written)."""
    index = load_index(settings, location)
    runs = sorted(index.runs | index.part_runs | {run_id})
    buffer = io.BytesIO()
    pq.write_table(index.table(), buffer)
    client = settings.boto3_client()
    key = DestinationLayout(location).snapshot_key(run_id)
    # The list of runs first: readers look for the .parquet and then read its .json.
    client.put_object(Bucket=location.bucket, Key=DestinationLayout.snapshot_runs_key(key),
                      Body=json.dumps({"runs": runs}).encode())
    client.put_object(Bucket=location.bucket, Key=key, Body=buffer.getvalue())
    return len(index.entries)
