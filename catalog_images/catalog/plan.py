"""Read and validate the whole catalog before any request: rows to generate go to a local
Parquet plan; rejected rows, and rows whose image is current (same fingerprint at the
destination), to a settled file; counts and projected cost to a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalog_images.catalog.read import iter_rows, open_catalog, read_columns
from catalog_images.catalog.validate import (
    DEFAULT_SKU_KEY_ROOM,
    JOB_FIELDS,
    Rejection,
    RowValidator,
    check_columns,
)
from catalog_images.destination.index import OutputIndex, quarantined_fingerprint
from catalog_images.destination.storage import S3Settings
from catalog_images.models import QUARANTINED_EARLIER, Job
from catalog_images.providers.config import ProviderConfig

JOB_SCHEMA = pa.schema(
    [(name, pa.int64() if name == "row" else pa.string()) for name in JOB_FIELDS]
)
SETTLED_SCHEMA = pa.schema([("row", pa.int64()), ("sku", pa.string()), ("status", pa.string()),
                            ("reason", pa.string()), ("fingerprint", pa.string())])
REMOVED_SAMPLE = 1000


@dataclass
class PlanSummary:
    """What the run will do, known before any request."""

    catalog: str
    plan_path: str
    settled_path: str
    rows: int = 0
    accepted: int = 0  # valid rows: to generate + unchanged
    to_generate: int = 0
    unchanged: int = 0
    rejected: int = 0
    removed: int = 0  # skus with an image at the destination but not in the catalog
    removed_sample: list[str] = field(default_factory=list)
    by_resolution: dict[str, int] = field(default_factory=dict)  # rows to generate
    by_priority: dict[str, int] = field(default_factory=dict)
    by_priority_resolution: dict[str, dict[str, int]] = field(default_factory=dict)
    projected_cost_usd: float = 0.0


def plan_catalog(  # noqa: PLR0913 - the inputs of the plan, each read once
    catalog_uri: str, prompt_template: str | None, provider: ProviderConfig,
    s3: S3Settings, work_dir: Path, index: OutputIndex | None = None,
    force: bool = False, force_skus: frozenset[str] = frozenset(),
    sku_key_room: int = DEFAULT_SKU_KEY_ROOM,
) -> PlanSummary:
    """Validate every row and compare it with the destination's index.

    Raises CatalogError when the catalog as a whole is unusable. ``force`` (or a sku in
    ``force_skus``) regenerates rows whose image is current. ``sku_key_room``: see sku_problem.
    """
    catalog = open_catalog(catalog_uri, s3, work_dir)
    check_columns(read_columns(catalog), prompt_template)
    validator = RowValidator(prompt_template, catalog.base, s3, family=provider.family,
                             sku_key_room=sku_key_room)
    summary = PlanSummary(
        catalog_uri, str(work_dir / "plan.parquet"), str(work_dir / "settled.parquet")
    )
    by_resolution: Counter = Counter()
    by_priority: Counter = Counter()
    with pq.ParquetWriter(summary.plan_path, JOB_SCHEMA) as jobs_out, pq.ParquetWriter(
        summary.settled_path, SETTLED_SCHEMA
    ) as settled_out:
        for batch in iter_rows(catalog):
            jobs, settled = [], []
            for row in batch:
                outcome = validator.check(row)
                if isinstance(outcome, Rejection):
                    settled.append({"row": outcome.row, "sku": outcome.sku, "status": "rejected",
                                    "reason": outcome.reason, "fingerprint": None})
                elif (index is not None and not force and outcome["sku"] not in force_skus
                      and (reason := _current(index, outcome))):
                    settled.append({"row": outcome["row"], "sku": outcome["sku"],
                                    "status": "skipped", "reason": reason,
                                    "fingerprint": outcome["fingerprint"]})
                    summary.unchanged += 1
                else:
                    jobs.append(outcome)
                    by_resolution[outcome["resolution"]] += 1
                    by_priority[outcome["priority"]] += 1
                    cell = summary.by_priority_resolution.setdefault(outcome["priority"], {})
                    cell[outcome["resolution"]] = cell.get(outcome["resolution"], 0) + 1
            summary.rows += len(batch)
            summary.to_generate += len(jobs)
            summary.rejected += sum(1 for s in settled if s["status"] == "rejected")
            if jobs:
                jobs_out.write_table(pa.Table.from_pylist(jobs, schema=JOB_SCHEMA))
            if settled:
                settled_out.write_table(pa.Table.from_pylist(settled, schema=SETTLED_SCHEMA))
    summary.accepted = summary.to_generate + summary.unchanged
    if index is not None:
        removed = [sku for sku in index.entries if sku not in validator.seen]
        summary.removed = len(removed)
        summary.removed_sample = sorted(removed)[:REMOVED_SAMPLE]
    summary.by_resolution = dict(sorted(by_resolution.items()))
    summary.by_priority = dict(sorted(by_priority.items()))
    summary.projected_cost_usd = round(
        sum(n * provider.prices.for_resolution(res) for res, n in by_resolution.items()), 6
    )
    return summary


def _current(index: OutputIndex, job: dict) -> str | None:
    """Why the job needs no request: its image is current, or was quarantined (a paid image
    of the wrong shape) by an earlier run; None when it needs one."""
    current = index.fingerprint(job["sku"])
    if current == job["fingerprint"]:
        return "unchanged"
    if current == quarantined_fingerprint(job["fingerprint"]):
        return QUARANTINED_EARLIER
    return None


def iter_jobs(plan_path: str, chunk_rows: int) -> Iterator[list[Job]]:
    """Accepted jobs from the plan file, ``chunk_rows`` at a time."""
    for batch in pq.ParquetFile(plan_path).iter_batches(batch_size=chunk_rows):
        yield [Job.from_dict(row) for row in batch.to_pylist()]


def iter_settled(path: str) -> Iterator[dict]:
    """Rows settled at planning time (rejected, or skipped as unchanged)."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        yield from batch.to_pylist()
