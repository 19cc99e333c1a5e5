"""Read and validate the whole catalog before any request: accepted jobs go to a local
Parquet plan, rejected rows to a rejections file, counts and projected cost to a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.catalog import iter_rows, open_catalog, read_columns
from tasks.providers.config import ProviderConfig
from tasks.storage import S3Settings
from tasks.validate import JOB_FIELDS, Rejection, RowValidator, check_columns

JOB_SCHEMA = pa.schema(
    [(name, pa.int64() if name == "row" else pa.string()) for name in JOB_FIELDS]
)
REJECTION_SCHEMA = pa.schema([("row", pa.int64()), ("sku", pa.string()), ("reason", pa.string())])


@dataclass
class PlanSummary:
    """What the run will do, known before any request."""

    catalog: str
    plan_path: str
    rejections_path: str
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    by_resolution: dict[str, int] = field(default_factory=dict)
    projected_cost_usd: float = 0.0


def plan_catalog(
    catalog_uri: str, prompt_template: str | None, provider: ProviderConfig,
    s3: S3Settings, work_dir: Path,
) -> PlanSummary:
    """Validate every row; raise CatalogError when the catalog as a whole is unusable."""
    catalog = open_catalog(catalog_uri, s3, work_dir)
    check_columns(read_columns(catalog), prompt_template)
    validator = RowValidator(prompt_template, catalog.base, s3)
    summary = PlanSummary(
        catalog_uri, str(work_dir / "plan.parquet"), str(work_dir / "rejections.parquet")
    )
    by_resolution: Counter = Counter()
    with pq.ParquetWriter(summary.plan_path, JOB_SCHEMA) as jobs_out, pq.ParquetWriter(
        summary.rejections_path, REJECTION_SCHEMA
    ) as rejected_out:
        for batch in iter_rows(catalog):
            jobs, rejections = [], []
            for row in batch:
                outcome = validator.check(row)
                if isinstance(outcome, Rejection):
                    rejections.append(
                        {"row": outcome.row, "sku": outcome.sku, "reason": outcome.reason}
                    )
                else:
                    jobs.append(outcome)
                    by_resolution[outcome["resolution"]] += 1
            summary.rows += len(batch)
            summary.accepted += len(jobs)
            summary.rejected += len(rejections)
            if jobs:
                jobs_out.write_table(pa.Table.from_pylist(jobs, schema=JOB_SCHEMA))
            if rejections:
                rejected_out.write_table(pa.Table.from_pylist(rejections, schema=REJECTION_SCHEMA))
    summary.by_resolution = dict(sorted(by_resolution.items()))
    summary.projected_cost_usd = round(
        sum(n * provider.prices.for_resolution(res) for res, n in by_resolution.items()), 6
    )
    return summary


def iter_jobs(plan_path: str, chunk_rows: int) -> Iterator[list[dict]]:
    """Accepted jobs from the plan file, ``chunk_rows`` at a time."""
    for batch in pq.ParquetFile(plan_path).iter_batches(batch_size=chunk_rows):
        yield batch.to_pylist()


def iter_rejections(path: str) -> Iterator[dict]:
    """Rejected rows from the rejections file."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        yield from batch.to_pylist()
