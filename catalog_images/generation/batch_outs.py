"""Batch Mode when the provider refuses a job for a cause no retry fixes: a per-day quota,
a spend cap, a configuration error or a retry hint over the cap.

As in standard mode (generation/outage.py) the provider, or its model for a per-day quota,
is put out on the run's router: the job's rows and every later row it would have taken end
at once with the cause, and no further job is created for them (no request per job).
"""

from __future__ import annotations

from catalog_images.generation.outage import ProviderOut, out_for
from catalog_images.generation.resources import RunContext
from catalog_images.models import Job
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.report.results import RowResult

SKIPPED_OUTS = frozenset({ErrorClass.DAILY_QUOTA, ErrorClass.SPEND_CAP})


def take_out(ctx: RunContext, config: ProviderConfig, error: ProviderError,
             model: str | None) -> ProviderOut | None:
    """The out a refused create of a ``model`` job puts the provider in (logged once, a
    spent daily quota told as an event), or None when retrying may help."""
    out = out_for(config.name, error, ctx.policy.max_retry_hint_s, config.model_for(model))
    runtime = ctx.router.runtimes.get(config.name)
    if out is not None and runtime is not None and runtime.take_out(out):
        ctx.logger.warning("provider %s", out.message)
        if out.error_class is ErrorClass.DAILY_QUOTA:
            ctx.events.quota_exhausted(config.name, out.resets_at, out.model)
    return out


def out_now(ctx: RunContext, config: ProviderConfig, model: str | None) -> ProviderOut | None:
    """The out that holds for rows of ``model`` at this provider, if one does."""
    runtime = ctx.router.runtimes.get(config.name)
    return runtime.out_now(model) if runtime is not None else None


def ended(ctx: RunContext, config: ProviderConfig, jobs: list[Job], *,
          reserved: bool) -> bool:
    """True when the provider is out for these rows (one model's): they are ended with the
    cause, the budget ``reserved`` for them given back."""
    out = out_now(ctx, config, jobs[0].model) if jobs else None
    if out is None:
        return False
    if reserved:
        for job in jobs:
            ctx.budget.settle(config.batch_price(job.resolution, job.model), False)
    end_rows(ctx, config, jobs, out)
    return True


def refused(ctx: RunContext, config: ProviderConfig, jobs: list[Job],
            error: ProviderError) -> bool:
    """True when a create of these rows (budget given back) was refused for a cause no retry
    fixes: the provider (model) is put out and the rows are ended with the cause."""
    out = take_out(ctx, config, error, jobs[0].model if jobs else None)
    if out is not None:
        end_rows(ctx, config, jobs, out)
    return out is not None


def end_rows(ctx: RunContext, config: ProviderConfig, jobs: list[Job],
             out: ProviderOut) -> None:
    """Record the rows as ended by ``out``: skipped for a quota or a spend cap (the next run
    does them), failed for a configuration error; counted as left by the provider."""
    runtime = ctx.router.runtimes.get(config.name)
    if runtime is not None:
        runtime.stats.rows_left += len(jobs)
    for job in jobs:
        who = {"provider": config.name, "model": config.model_for(job.model)}
        if out.error_class in SKIPPED_OUTS:
            ctx.finish(RowResult.skipped(job, out.reason, error_class=out.error_class.value,
                                         **who))
        else:
            ctx.finish(RowResult.failed(job, out.error_class.value, out.reason, **who))
