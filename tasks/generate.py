"""Prefect task: generate and upload one chunk of rows (a task run in the UI per chunk)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from catalog_images.generation.resources import RunContext
from catalog_images.generation.row import process_rows
from catalog_images.models import Job


@task(
    name="generate-chunk", cache_policy=NO_CACHE, persist_result=False,
    task_run_name="generate-rows-{first_row}-{last_row}",
)
async def generate_chunk_task(
    ctx: RunContext, jobs: list[Job], first_row: int, last_row: int
) -> int:
    """Generate and upload a chunk of rows concurrently; per-row retries happen inside.

    ``ctx`` is the run's live context (clients, gates, spool), handed over as it is: the
    task neither caches nor persists, so Prefect never serialises its parameters. Row
    results are recorded as each row finishes (through the context), so a chunk never loses
    a row's outcome; the return value is the number of rows processed.
    """
    results = await process_rows(jobs, ctx)
    return len(results)
