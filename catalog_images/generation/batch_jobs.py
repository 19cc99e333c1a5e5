"""A batch job's rows: their requests written to the job's input file, within what the Files
API takes, and what happens to rows whose job will not be billed (their budget given back,
or the rows skipped for a later run)."""

from __future__ import annotations

from catalog_images.generation.resources import RunContext
from catalog_images.generation.row import build_request
from catalog_images.models import Job
from catalog_images.providers.batch_input import BatchInput
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass
from catalog_images.providers.gemini_batch import FILE_LIMIT_BYTES
from catalog_images.report.results import RowResult


def release_budget(ctx: RunContext, config: ProviderConfig, jobs: list[Job]) -> None:
    """Give back the budget held for rows whose job will not be billed."""
    for job in jobs:
        ctx.budget.settle(config.batch_price(job.resolution, job.model), False)


def skip_rows(ctx: RunContext, config: ProviderConfig, jobs: list[Job], reason: str) -> None:
    """Record the rows as skipped: left for a later run."""
    for job in jobs:
        ctx.finish(RowResult.skipped(job, reason, provider=config.name,
                                     model=config.model_for(job.model)))


async def write_requests(ctx: RunContext, config: ProviderConfig,
                         jobs: list[Job]) -> tuple[list[Job], BatchInput, list[Job]]:
    """The jobs' requests written one at a time to a BatchInput (one request in memory at a
    time) until the file would pass the Files API's 2 GB; a row whose reference image cannot
    be read, or whose request alone is over that, fails here. The jobs written, in order,
    the file, and the jobs left for another batch job.
    """
    batch = BatchInput()
    written: list[Job] = []
    try:
        for index, job in enumerate(jobs):
            try:
                request = await build_request(ctx, job)
            except Exception as exc:  # the reference image changed since planning
                release_budget(ctx, config, [job])
                ctx.finish(RowResult.failed(job, "reference",
                                            f"unreadable reference image: {exc}"))
                continue
            if batch.add(job.sku, request, FILE_LIMIT_BYTES):
                written.append(job)
            elif batch.count:
                return written, batch, jobs[index:]  # the rest go in the next job
            else:
                release_budget(ctx, config, [job])
                ctx.finish(RowResult.failed(
                    job, ErrorClass.BAD_REQUEST.value, "its request alone is over the 2 GB "
                    "a batch input file may hold: use smaller reference images"))
    except BaseException:
        batch.close()
        raise
    return written, batch, []
