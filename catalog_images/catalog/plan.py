"""Read and validate the whole catalog before any request: rows to generate go to a local
Parquet plan; rejected rows, and rows whose image is current (same fingerprint at the
destination), to a settled file; counts and projected cost to a summary."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalog_images.catalog.read import iter_rows, open_catalog, read_columns
from catalog_images.catalog.references import ReferencePolicy
from catalog_images.catalog.validate import (
    DEFAULT_SKU_KEY_ROOM,
    JOB_FIELDS,
    Rejection,
    RowValidator,
    check_columns,
    used_columns,
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


@dataclass(frozen=True)
class RowChoices:
    """What the run chose for its rows: the model of rows without a ``model`` cell (None: the
    provider's own), and which rows to regenerate although their image is current."""

    model: str | None = None
    force: bool = False
    force_skus: frozenset[str] = frozenset()


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
    # priority -> model ("" for the provider's own) -> resolution -> rows to generate
    by_priority_model: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    projected_cost_usd: float = 0.0

    @property
    def models(self) -> set[str | None]:
        """The models rows to generate ask for (None: each provider's own)."""
        return {m or None for by_model in self.by_priority_model.values() for m in by_model}

    def _count(self, job: dict) -> None:
        """Count one row to generate by resolution, priority and model."""
        priority, resolution = job["priority"], job["resolution"]
        self.to_generate += 1
        for table, key in ((self.by_resolution, resolution), (self.by_priority, priority)):
            table[key] = table.get(key, 0) + 1
        cell = self.by_priority_resolution.setdefault(priority, {})
        cell[resolution] = cell.get(resolution, 0) + 1
        cell = self.by_priority_model.setdefault(priority, {}).setdefault(job["model"] or "", {})
        cell[resolution] = cell.get(resolution, 0) + 1

    def list_cost(self, provider: ProviderConfig, batch: bool = False) -> float:
        """What the rows to generate cost at ``provider``'s list prices."""
        return round(sum(
            n * provider.image_price(res, model or None, batch)
            for by_model in self.by_priority_model.values()
            for model, by_res in by_model.items() for res, n in by_res.items()), 6)


def plan_catalog(  # noqa: PLR0913 - the inputs of the plan, each read once
    catalog_uri: str, prompt_template: str | None, provider: ProviderConfig,
    s3: S3Settings, work_dir: Path, index: OutputIndex | None = None,
    choices: RowChoices = RowChoices(), sku_key_room: int = DEFAULT_SKU_KEY_ROOM,
) -> PlanSummary:
    """Validate every row and compare it with the destination's index.

    Raises CatalogError when the catalog as a whole is unusable. ``choices.force`` (or a sku
    in ``choices.force_skus``) regenerates rows whose image is current. ``sku_key_room``:
    see sku_problem.
    """
    catalog = open_catalog(catalog_uri, s3, work_dir)
    check_columns(read_columns(catalog), prompt_template)
    dest_bucket = index.location.bucket if index is not None and index.location else None
    validator = RowValidator(prompt_template, catalog.base, s3, provider=provider,
                             model=choices.model,
                             references=ReferencePolicy.for_catalog(catalog.base, dest_bucket),
                             sku_key_room=sku_key_room)
    summary = PlanSummary(
        catalog_uri, str(work_dir / "plan.parquet"), str(work_dir / "settled.parquet")
    )
    with pq.ParquetWriter(summary.plan_path, JOB_SCHEMA) as jobs_out, pq.ParquetWriter(
        summary.settled_path, SETTLED_SCHEMA
    ) as settled_out:
        for batch in iter_rows(catalog, columns=used_columns(prompt_template)):
            jobs, settled = [], []
            for row in batch:
                outcome = validator.check(row)
                if isinstance(outcome, Rejection):
                    settled.append({"row": outcome.row, "sku": outcome.sku, "status": "rejected",
                                    "reason": outcome.reason, "fingerprint": None})
                elif (index is not None and not choices.force
                      and outcome["sku"] not in choices.force_skus
                      and (reason := _current(index, outcome))):
                    settled.append({"row": outcome["row"], "sku": outcome["sku"],
                                    "status": "skipped", "reason": reason,
                                    "fingerprint": outcome["fingerprint"]})
                    summary.unchanged += 1
                else:
                    jobs.append(outcome)
                    summary._count(outcome)
            summary.rows += len(batch)
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
    summary.by_resolution = dict(sorted(summary.by_resolution.items()))
    summary.by_priority = dict(sorted(summary.by_priority.items()))
    summary.projected_cost_usd = summary.list_cost(provider)
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
