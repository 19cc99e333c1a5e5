"""The Prefect tasks of a catalog refresh: thin wrappers over the plain modules."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.generate import get_context, process_rows
from tasks.index import load_index
from tasks.plan import PlanSummary, plan_catalog
from tasks.providers.config import ProviderConfig
from tasks.storage import S3Location, S3Settings


@task(name="plan-catalog", cache_policy=NO_CACHE, persist_result=False)
def plan_task(
    catalog: str, prompt_template: str | None, provider: ProviderConfig, s3: S3Settings,
    work_dir: str, dest: S3Location | None = None, force: bool = False,
    force_skus: frozenset[str] = frozenset(),
) -> PlanSummary:
    """Read the destination's index, then validate the catalog into a local plan.

    No provider is called. The index is loaded here, not passed in, so Prefect never has
    to inspect a million-entry parameter.
    """
    index = load_index(s3, dest) if dest is not None else None
    return plan_catalog(catalog, prompt_template, provider, s3, Path(work_dir), index, force,
                        force_skus)


@task(
    name="generate-chunk", cache_policy=NO_CACHE, persist_result=False,
    task_run_name="generate-rows-{first_row}-{last_row}",
)
async def generate_chunk_task(
    run_id: str, jobs: list[dict], first_row: int, last_row: int
) -> int:
    """Generate and upload a chunk of rows concurrently; per-row retries happen inside.

    Row results are recorded as each row finishes (through the run context), so a chunk
    never loses a row's outcome; the return value is the number of rows processed.
    """
    results = await process_rows(jobs, get_context(run_id))
    return len(results)
