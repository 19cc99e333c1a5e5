"""The runs ledger: one small JSON object per run under ``runs/{run_id}/summary.json``.

One object per run (rather than one shared file) keeps appends safe when runs overlap.
"""

from __future__ import annotations

import json

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location, S3Settings


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


def read_history(settings: S3Settings, location: S3Location) -> list[dict]:
    """Every run's ledger row at the destination, oldest first."""
    client = settings.boto3_client()
    rows = []
    layout = DestinationLayout(location)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=layout.runs_prefix()):
        for item in page.get("Contents", []):
            if layout.is_ledger_row(item["Key"]):
                body = client.get_object(Bucket=location.bucket, Key=item["Key"])["Body"].read()
                rows.append(json.loads(body))
    return sorted(rows, key=lambda row: row["run_id"])
