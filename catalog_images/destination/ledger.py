"""The runs ledger: one small JSON object per run under ``runs/{run_id}/summary.json``.

One object per run (rather than one shared file) keeps appends safe when runs overlap.
Whoever can write to the bucket can write a ledger row, so rows read back are size-limited
and checked field by field; a bad one is skipped with a warning, never the run's end.
"""

from __future__ import annotations

import json
import logging
import math

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
MAX_ROW_BYTES = 64 * 1024  # a real row is a few hundred bytes
MAX_ROWS = 10_000  # the newest rows are kept for the chart and the history command
TEXT_FIELDS = ("run_id", "started_at", "finished_at", "catalog")
COUNT_FIELDS = ("rows", "succeeded", "failed", "rejected", "skipped", "quarantined")
NUMBER_FIELDS = ("success_rate", "cost_usd", "wall_s")


def history_row(header: dict, totals: dict) -> dict:
    """The ledger row of a finished run."""
    return {
        "run_id": header["run_id"], "started_at": header["started_at"],
        "finished_at": header["finished_at"], "catalog": header["catalog"],
        "rows": totals["rows"], "succeeded": totals["succeeded"], "failed": totals["failed"],
        "rejected": totals["rejected"], "skipped": totals["skipped"],
        "quarantined": totals.get("quarantined", 0),
        "success_rate": totals["success_rate"], "cost_usd": totals["cost_usd"],
        "wall_s": totals["wall_s"], "provider_mix": totals["images_by_provider"],
    }


def _number(value: object, integer: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and (not integer or float(value).is_integer())


def checked_row(data: object) -> dict | None:
    """A ledger row as the pipeline writes it (texts, counts, finite numbers), or None."""
    if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
        return None
    if any(data.get(f) is not None and not isinstance(data[f], str) for f in TEXT_FIELDS):
        return None
    if any(data.get(f) is not None and not _number(data[f], True) for f in COUNT_FIELDS):
        return None
    if any(data.get(f) is not None and not _number(data[f]) for f in NUMBER_FIELDS):
        return None
    mix = data.get("provider_mix")
    if mix is not None and not (isinstance(mix, dict) and all(
            isinstance(k, str) and _number(v, True) for k, v in mix.items())):
        return None
    return {k: v for k, v in data.items() if k in (*TEXT_FIELDS, *COUNT_FIELDS,
                                                  *NUMBER_FIELDS, "provider_mix")}


def _read_row(client, bucket: str, key: str) -> dict | None:
    """One ledger row, or None (with a warning) when it is unreadable, too big or malformed."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        row = checked_row(json.loads(capped_read(body, MAX_ROW_BYTES, "the ledger row")))
        problem = None if row is not None else "not a ledger row the pipeline writes"
    except (ClientError, BotoCoreError) as exc:
        row, problem = None, describe_s3_error(exc)
    except (StorageError, ValueError, RecursionError, OSError) as exc:
        row, problem = None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if row is None:
        log.warning("ledger row s3://%s/%s skipped: %s", bucket, key, problem)
    return row


def read_history(settings: S3Settings, location: S3Location) -> list[dict]:
    """Every run's ledger row at the destination, oldest first (the newest MAX_ROWS).

    A row that is unreadable, over MAX_ROW_BYTES or not shaped as the pipeline writes it is
    skipped with a warning.
    """
    client = settings.boto3_client()
    layout = DestinationLayout(location)
    keys = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=layout.runs_prefix()):
        keys += [item["Key"] for item in page.get("Contents", [])
                 if layout.is_ledger_row(item["Key"])]
    rows = [row for key in sorted(keys)[-MAX_ROWS:]
            if (row := _read_row(client, location.bucket, key)) is not None]
    return sorted(rows, key=lambda row: row["run_id"])
