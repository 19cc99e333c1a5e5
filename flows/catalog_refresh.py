"""The catalog refresh flow: read, plan, generate, upload, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from catalog_images.catalog.plan import PlanSummary
from catalog_images.destination.lease import hold_destination
from catalog_images.generation.finish import close_results, log_done, snapshot_index
from catalog_images.generation.run import Generated, generate_here
from catalog_images.generation.stop import StopRequest
from catalog_images.report.header import report_header
from catalog_images.report.outcome import outcome_of, run_outcome
from catalog_images.report.progress import RunProgress
from catalog_images.report.results import ResultSink
from catalog_images.run_setup import (
    RunSetup,
    prepare_run,
    priced_plan,
    scratch_dir,
    settled_results,
)
from catalog_images.scale.shards import run_shards
from catalog_images.secrets import install_log_redaction
from catalog_images.settings import SHARD_DEPLOYMENT
from flows.catalog_shard import run_shards_on_dask
from tasks.generate import generate_chunk_task
from tasks.plan import plan_task
from tasks.report import publish_report_task

__all__ = ["catalog_refresh", "outcome_of"]  # outcome_of: where callers have found it


@flow(name="catalog-refresh", description="Generate product images for a catalog into S3.")
async def catalog_refresh(
    catalog: str,
    dest: str,
    provider: str = "emulator",
    fallback_providers: list[str] | None = None,
    priority_providers: list[str] | None = None,
    concurrency: int = 16,
    prompt_template: str | None = None,
    report_path: str | None = None,
    chunk_size: int = 100,
    max_attempts: int = 6,
    providers_file: str | None = None,
    aws_credentials_block: str | None = None,
    breaker_cooldown_s: float = 10.0,
    max_provider_wait_s: float = 300.0,
    max_cost_usd: float | None = None,
    force: bool = False,
    force_skus: list[str] | None = None,
    mode: Literal["standard", "batch"] = "standard",
    batch_rows: int = 1000,
    batch_deadline_s: float = 86_400.0,
    batch_poll_s: float = 30.0,
    global_limits: bool = False,
    shards: int = 1,
    shard_deployment: str = SHARD_DEPLOYMENT,
    dask_address: str | None = None,
):
    """Read the catalog, validate every row, generate and upload images, write the report.

    The run ends Failed only when some accepted row has no image; its report says why.

    Args:
        catalog: CSV or Parquet catalog, a local path or s3:// URI.
        dest: s3://BUCKET/PREFIX where images, reports and the index go.
        provider: provider name (built-in preset or one from the providers file).
        fallback_providers: providers to fail over to, in order.
        priority_providers: route for rows with priority=high (default: the bulk route).
        concurrency: requests in flight at most (1-1024).
        prompt_template: e.g. 'Studio photo of a {color} {title}'; columns in braces.
        report_path: also write the JSON report to this local path.
        chunk_size: rows per Prefect task run (1-5000).
        max_attempts: provider attempts per row (1-20).
        providers_file: TOML file with provider URLs, prices, limits and key locations.
        aws_credentials_block: name of a Prefect AwsCredentials block for S3.
        breaker_cooldown_s: seconds an open circuit breaker waits before a probe.
        max_provider_wait_s: how long a row waits for a provider whose breaker is open.
        max_cost_usd: USD cap; no request starts that could take spend over it.
        force: regenerate every row, even unchanged ones.
        force_skus: regenerate these SKUs even if unchanged.
        mode: standard, or batch (Gemini Batch Mode: half price, results within 24 h).
        batch_rows: rows per batch job.
        batch_deadline_s: how long a run waits for its batch jobs (the next run collects).
        batch_poll_s: first poll interval of a batch job, in seconds.
        global_limits: share rpm limits with other runs through Prefect global
            concurrency limits named catalog-images-PROVIDER.
        shards: split the rows over this many shard runs that workers pick up (1-256).
        shard_deployment: the deployment that runs one shard.
        dask_address: run the shards as tasks on this dask.distributed scheduler
            (e.g. tcp://10.0.0.5:8786) instead of child flow runs.
    """
    install_log_redaction()
    parameters = dict(locals())  # the flow's parameters: exactly the fields of RunSettings
    logger = get_run_logger()
    run = prepare_run(parameters, logger)
    settings = run.settings
    stop = StopRequest()  # set by a signal, or when another run takes the lease over
    async with hold_destination(run.s3, run.location, run.run_id, logger,
                                on_lost=lambda: stop.set("a lost destination lease")):
        with scratch_dir(run.run_id) as work_dir:
            plan = priced_plan(plan_task(
                settings.catalog, settings.prompt_template, run.provider_config, run.s3,
                str(work_dir), run.location, settings.force, frozenset(settings.force_skus),
            ), run, logger)
            sink = settled_results(plan, work_dir)
            progress = RunProgress(run.run_id, total=plan.to_generate, phase="generating")
            progress.publish()
            generation_started = time.monotonic()
            generated = await _generate(run, plan, work_dir, sink, progress, logger, stop)
            await snapshot_index(generated, run, logger)
            totals = close_results(sink, progress, run, generated, generation_started)
            header = report_header(run, plan, generated.stopped_by, flow_run.id)
            outcome = await publish_report_task(
                header, totals, str(work_dir), run.location, run.s3, settings.report_path,
                generated.thumbnails)
            log_done(progress, totals, header["report_uri"], logger)
    return run_outcome(outcome, generated.stopped_by, logger)


async def _generate(run: RunSetup, plan: PlanSummary, work_dir: Path, sink: ResultSink,
                    progress: RunProgress, logger, stop: StopRequest) -> Generated:
    """The plan's rows: over shard runs when the run has shards, else as chunk tasks here."""
    if run.settings.shards > 1:
        return await run_shards(run.run_id, run.settings, plan, run.provider_configs,
                                run.location, run.s3, work_dir, sink, progress, logger,
                                run_shards_on_dask)
    return await generate_here(run.run_id, run.settings, run.provider_configs, run.location,
                               run.s3, plan.plan_path, sink, progress, logger,
                               generate_chunk_task, stop=stop)
