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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location, S3Settings

INDEX_SCHEMA = pa.schema([("sku", pa.string()), ("fingerprint", pa.string()),
                          ("s3_key", pa.string()), ("run_id", pa.string())])
BATCH_ROWS = 10_000
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


def _read_parquet(client, bucket: str, key: str) -> Iterator[pa.RecordBatch]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    yield from pq.ParquetFile(io.BytesIO(body)).iter_batches(
        BATCH_ROWS, columns=["sku", "fingerprint", "run_id"])


def load_index(settings: S3Settings, location: S3Location) -> OutputIndex:
    """Read the newest snapshot and the parts of every run it does not include."""
    client = settings.boto3_client()
    index = OutputIndex()
    layout = DestinationLayout(location)
    snapshots = [k for k in _list_keys(client, location.bucket, layout.snapshots_prefix())
                 if layout.is_snapshot(k)]
    if snapshots:
        latest = snapshots[-1]
        index.add_table(_read_parquet(client, location.bucket, latest))
        meta = client.get_object(Bucket=location.bucket,
                                 Key=layout.snapshot_runs_key(latest))["Body"].read()
        index.runs = set(json.loads(meta)["runs"])
    for key in _list_keys(client, location.bucket, layout.index_parts_prefix()):
        run_id = layout.run_of_index_part(key)
        if run_id not in index.runs:
            index.add_table(_read_parquet(client, location.bucket, key))
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
