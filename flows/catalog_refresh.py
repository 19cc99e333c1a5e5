"""The catalog refresh flow: read, plan, generate, upload, report."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger
from prefect.runtime import flow_run
from prefect.states import State

from catalog_images.catalog.plan import PlanSummary, RowChoices
from catalog_images.destination.lease import hold_destination
from catalog_images.errors import EXPECTED_ERRORS, install_clean_errors
from catalog_images.generation.approval import approval_end, approve_spend
from catalog_images.generation.finish import close_results, log_done, snapshot_index
from catalog_images.generation.run import Generated, generate_here
from catalog_images.generation.stop import StopRequest
from catalog_images.lean_start import lean_flow, skip_pyarrow_pandas_probe
from catalog_images.report.events import RunEvents
from catalog_images.report.header import report_header
from catalog_images.report.outcome import expected_failure, outcome_of, run_outcome
from catalog_images.report.progress import RunProgress
from catalog_images.report.results import ResultSink, settled_results
from catalog_images.run_sections import DEFAULT_SECTIONS as SECTION
from catalog_images.run_sections import (
    BatchOptions,
    Budget,
    OutputOptions,
    ProvidersAndRouting,
    ScaleOut,
    documented_by_sections,
    flat_parameters,
)
from catalog_images.run_setup import (
    RunSetup,
    check_plan_models,
    prepare_run,
    priced_plan,
    scratch_dir,
)
from catalog_images.scale.shards import run_shards
from catalog_images.secrets import install_log_redaction
from flows.catalog_shard import run_shards_on_dask
from tasks.generate import generate_chunk_task
from tasks.plan import plan_task
from tasks.report import publish_report_task

__all__ = ["catalog_refresh", "outcome_of"]  # outcome_of: where callers have found it


@lean_flow(name="catalog-refresh", description="Generate product images for a catalog into S3.",
           validate_parameters=False)  # RunSettings validates them (flat_parameters)
@documented_by_sections
async def catalog_refresh(
    catalog: str, dest: str,
    providers: ProvidersAndRouting = SECTION["providers"],
    budget: Budget = SECTION["budget"],
    batch: BatchOptions = SECTION["batch"],
    scale_out: ScaleOut = SECTION["scale_out"],
    output: OutputOptions = SECTION["output"],
):
    """Read the catalog, validate every row, generate and upload images, write the report.

    The run ends Failed only when some accepted row has no image; its report says why.
    Each setting (default, bounds, description) is declared once, in RunSettings; the
    sections group them for the run form (catalog_images/run_sections.py).
    """
    install_log_redaction()
    parameters = dict(locals())  # catalog, dest and the sections
    skip_pyarrow_pandas_probe()
    install_clean_errors()
    logger = get_run_logger()
    try:
        return await _refresh(flat_parameters(parameters), logger)
    except EXPECTED_ERRORS as exc:  # the user's to fix: one message, no traceback
        return expected_failure(exc, logger, RunEvents(parameters.get("dest")))


async def _refresh(parameters: dict, logger) -> dict | State:
    """lease → plan → generate → report → outcome, for validated parameters."""
    run = prepare_run(parameters, logger)
    settings = run.settings
    events = RunEvents(settings.dest, run.run_id)
    stop = StopRequest()  # set by a signal, or when another run takes the lease over
    async with hold_destination(run.s3, run.location, run.run_id, logger,
                                on_lost=lambda: stop.set("a lost destination lease")):
        with scratch_dir(run.run_id) as work_dir:
            plan = priced_plan(plan_task(
                settings.catalog, settings.prompt_template, run.provider_config, run.s3,
                str(work_dir), run.location,
                RowChoices(settings.model, settings.force, frozenset(settings.force_skus)),
            ), run, logger)
            await check_plan_models(run, plan, logger)
            run = await approve_spend(run, plan, stop, logger)  # approve_above_usd
            sink = settled_results(plan, work_dir)
            progress = RunProgress(run.run_id, total=plan.to_generate, phase="generating")
            progress.publish()
            generation_started = time.monotonic()
            generated = await _generate(run, plan, work_dir, sink, progress, logger, stop)
            await snapshot_index(generated, run, logger)
            totals = close_results(sink, progress, run, generated, generation_started)
            header = report_header(run, plan, generated.stopped_by, flow_run.id,
                                   generated.warnings)
            outcome = await publish_report_task(
                header, totals, str(work_dir), run.location, run.s3, settings.report_path,
                generated.thumbnails, settings.link_expiry_s)
            log_done(progress, totals, header["report_uri"], logger)
    return approval_end(run_outcome(outcome, generated.stopped_by, logger, events,
                                    run.approval), run)


async def _generate(run: RunSetup, plan: PlanSummary, work_dir: Path, sink: ResultSink,
                    progress: RunProgress, logger, stop: StopRequest) -> Generated:
    """The plan's rows: over shard runs when the run has shards, else as chunk tasks here."""
    if run.settings.shards > 1:
        return await run_shards(run, plan, work_dir, sink, progress, logger, run_shards_on_dask)
    return await generate_here(run, plan.plan_path, sink, progress, logger, generate_chunk_task,
                               stop=stop)
