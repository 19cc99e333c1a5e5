"""The catalog refresh flow: read, plan, generate, upload, report."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from uuid import uuid4

from botocore.exceptions import BotoCoreError, ClientError
from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_table_artifact,
)
from prefect.runtime import flow_run
from prefect.states import Failed

from catalog_images.catalog.estimate import batch_cost
from catalog_images.catalog.plan import PlanSummary, iter_settled
from catalog_images.destination.index import write_snapshot
from catalog_images.destination.lease import hold_destination
from catalog_images.destination.ledger import history_row, read_history
from catalog_images.destination.storage import (
    S3Location,
    S3Settings,
    StorageError,
    check_bucket,
    describe_s3_error,
    put_file,
)
from catalog_images.generation.routing import summarize_providers
from catalog_images.generation.run import generate_here
from catalog_images.generation.stop import StopRequest
from catalog_images.providers.config import get_provider
from catalog_images.report.contact_sheet import SheetItem, contact_sheet_html, contact_sheet_png
from catalog_images.report.history_chart import history_chart_png
from catalog_images.report.progress import RunProgress
from catalog_images.report.render import (
    problem_examples,
    problem_rows,
    summary_markdown,
    write_report_json,
)
from catalog_images.report.results import ResultSink, RowResult
from catalog_images.scale.shards import run_shards
from catalog_images.secrets import install_log_redaction
from catalog_images.settings import SHARD_DEPLOYMENT, RunSettings
from flows.catalog_shard import run_shards_on_dask
from tasks.generate import generate_chunk_task
from tasks.plan import plan_task


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus a short random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid4().hex[:6]}"


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
    logger = get_run_logger()
    settings = RunSettings(
        catalog=catalog, dest=dest, provider=provider, concurrency=concurrency,
        fallback_providers=fallback_providers or [], priority_providers=priority_providers or [],
        prompt_template=prompt_template, report_path=report_path, chunk_size=chunk_size,
        max_attempts=max_attempts, providers_file=providers_file,
        aws_credentials_block=aws_credentials_block, breaker_cooldown_s=breaker_cooldown_s,
        max_provider_wait_s=max_provider_wait_s, global_limits=global_limits,
        max_cost_usd=max_cost_usd, force=force, force_skus=force_skus or [], mode=mode,
        batch_rows=batch_rows, batch_deadline_s=batch_deadline_s, batch_poll_s=batch_poll_s,
        shards=shards, shard_deployment=shard_deployment, dask_address=dask_address,
    )
    started_wall = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    run_id = new_run_id()
    location = S3Location.parse(settings.dest)
    provider_configs = [get_provider(n, settings.providers_file) for n in settings.provider_names]
    for config in provider_configs:
        config.resolve_api_key()
    provider_config = provider_configs[0]
    s3 = S3Settings.from_environment(settings.aws_credentials_block)
    check_bucket(s3, location)
    logger.info(
        "run %s: catalog %s -> %s, routes %s, concurrency %d",
        run_id, settings.catalog, settings.dest, settings.routes, settings.concurrency,
    )
    stop = StopRequest()  # set by a signal, or when another run takes the lease over
    async with hold_destination(s3, location, run_id, logger,
                                on_lost=lambda: stop.set("a lost destination lease")):
        work_dir = Path(tempfile.mkdtemp(prefix=f"catalog-images-{run_id}-"))
        try:
            plan: PlanSummary = plan_task(
                settings.catalog, settings.prompt_template, provider_config, s3, str(work_dir),
                location, settings.force, frozenset(settings.force_skus),
            )
            if settings.mode == "batch":
                plan.projected_cost_usd = batch_cost(plan, provider_config)
            logger.info(
                "plan: %d rows: %d to generate (%s), %d unchanged, %d rejected, %d removed from "
                "the catalog; projected cost $%.2f", plan.rows, plan.to_generate,
                plan.by_resolution, plan.unchanged, plan.rejected, plan.removed,
                plan.projected_cost_usd,
            )
            sink = ResultSink(work_dir / "manifest.parquet")
            for settled in iter_settled(plan.settled_path):
                sink.add(RowResult.settled(settled))
            progress = RunProgress(run_id, total=plan.to_generate, phase="generating")
            progress.publish()
            generation_started = time.monotonic()
            if settings.shards > 1:
                generated = await run_shards(run_id, settings, plan, provider_configs, location, s3,
                                             work_dir, sink, progress, logger,
                                             run_shards_on_dask)
            else:
                generated = await generate_here(run_id, settings, provider_configs, location,
                                                s3, plan.plan_path, sink, progress, logger,
                                                generate_chunk_task, stop=stop)
            if generated.index_entries:
                try:
                    await asyncio.to_thread(write_snapshot, s3, location, run_id)
                except (StorageError, ClientError, BotoCoreError, OSError) as exc:
                    # The index only saves work: the next run reads this run's parts, or HEADs
                    # the images, and pays for nothing twice.
                    logger.warning("index snapshot not written: %s", _s3_problem(exc))
            generation_s = time.monotonic() - generation_started
            sink.close()
            progress.phase = "reporting"
            progress.publish()
            totals = sink.totals.summary(time.monotonic() - started_wall, generation_s)
            totals["providers"] = summarize_providers(
                generated.stats, {c.name: c for c in provider_configs})
            header = {
                "run_id": run_id, "flow_run_id": str(flow_run.id) if flow_run.id else None,
                "catalog": settings.catalog, "dest": settings.dest,
                "provider": provider_config.name, "model": provider_config.model,
                "routes": settings.routes,
                "started_at": started_at, "finished_at": datetime.now(UTC).isoformat(),
                "report_uri": location.uri("runs", run_id, "report.json"),
                "manifest_uri": location.uri("runs", run_id, "manifest.parquet"),
                "images_uri": location.uri("images") + "/",
                "plan": {"rows": plan.rows, "accepted": plan.accepted,
                         "to_generate": plan.to_generate, "unchanged": plan.unchanged,
                         "rejected": plan.rejected, "projected_cost_usd": plan.projected_cost_usd,
                         "max_cost_usd": settings.max_cost_usd},
                "removed": {"count": plan.removed, "skus": plan.removed_sample,
                            "note": "images of removed skus are kept"},
                "stopped_by": generated.stopped_by,
            }
            outcome = await _publish_report(header, totals, work_dir, location, s3, settings,
                                            generated.thumbnails)
            progress.phase = "done"
            progress.publish()
            logger.info(
                "done: %d succeeded, %d failed, %d rejected, %d skipped; cost $%.4f; %s images/s; "
                "report %s", totals["succeeded"], totals["failed"], totals["rejected"],
                totals["skipped"], totals["cost_usd"], totals["images_per_s"], header["report_uri"],
            )
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    problems = []
    if generated.stopped_by:
        problems.append(f"stopped by {generated.stopped_by}: rows not started are skipped "
                        f"(reason 'stopped'); run again to finish them")
    if totals["failed"]:
        problems.append(f"{totals['failed']} of {totals['accepted']} accepted rows have no image")
    if outcome["report_upload_error"]:
        logger.error("report not uploaded: %s", outcome["report_upload_error"])
        problems.append(f"the report was not uploaded ({outcome['report_upload_error']})")
    if problems:
        where = outcome["report_uri"] or outcome["report_path"] or "the summary above"
        return Failed(message=f"{'; '.join(problems)}; see {where}", data=outcome)
    return outcome


async def _publish_pictures(header: dict, totals: dict, work_dir: Path, location: S3Location,
                            s3: S3Settings, thumbnails: list[SheetItem]) -> dict[str, str]:
    """Contact sheet (PNG + HTML) and history chart next to the report; their URIs."""
    run_prefix = ("runs", header["run_id"])
    title = (f"Run {header['run_id']}: {totals['succeeded']} images, {totals['failed']} "
             f"failed, ${totals['cost_usd']:.2f}")
    extra = [SheetItem("", b"")] * max(0, totals["succeeded"] - len(thumbnails))
    files = {
        "contact-sheet.png": (await asyncio.to_thread(
            contact_sheet_png, [*thumbnails, *extra], title=title,
            max_items=len(thumbnails)), "image/png"),
        "contact-sheet.html": (contact_sheet_html(
            [(t.sku, f"../../images/{t.sku}.png") for t in thumbnails], title=title).encode(),
            "text/html; charset=utf-8"),
        "history.png": (await asyncio.to_thread(
            history_chart_png, await asyncio.to_thread(read_history, s3, location)),
            "image/png"),
    }
    uris = {}
    for name, (data, content_type) in files.items():
        path = work_dir / name
        path.write_bytes(data)
        await asyncio.to_thread(put_file, s3, location, location.key(*run_prefix, name), path,
                                content_type)
        uris[name] = location.uri(*run_prefix, name)
    return uris


async def _publish_report(header: dict, totals: dict, work_dir: Path, location: S3Location,
                          s3: S3Settings, settings: RunSettings,
                          thumbnails: list[SheetItem]) -> dict:
    """Write the report locally and to S3, pictures beside it, and Prefect artifacts."""
    manifest = work_dir / "manifest.parquet"
    report = work_dir / "report.json"
    write_report_json(report, header, totals, manifest)
    local_report = None
    if settings.report_path:  # first: the local copy must not depend on S3
        local_report = Path(settings.report_path).expanduser().resolve()
        local_report.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, local_report)
    run_prefix = ("runs", header["run_id"])
    ledger_row = work_dir / "summary.json"
    ledger_row.write_text(json.dumps(history_row(header, totals)))
    upload_error = None
    try:  # S3 down now must not lose what the run did and paid: the summary still comes out
        for name, path, content_type in (
            ("report.json", report, "application/json"),
            ("manifest.parquet", manifest, "application/vnd.apache.parquet"),
            ("summary.json", ledger_row, "application/json"),
        ):
            await asyncio.to_thread(put_file, s3, location, location.key(*run_prefix, name),
                                    path, content_type)
        pictures = await _publish_pictures(header, totals, work_dir, location, s3, thumbnails)
        header = {**header, "contact_sheet_uri": pictures["contact-sheet.html"],
                  "history_chart_uri": pictures["history.png"]}
    except (StorageError, ClientError, BotoCoreError, OSError) as exc:
        upload_error = _s3_problem(exc)
    markdown = summary_markdown(header, totals, problem_examples(manifest))
    if upload_error:
        markdown += (f"\n\n**The report was not uploaded to S3** ({upload_error}); "
                     f"local copy: `{local_report or 'none (use --report PATH)'}`.\n")
    await acreate_markdown_artifact(markdown, key="catalog-refresh-summary",
                                    description=f"Run {header['run_id']}")
    run_folder = location.uri(*run_prefix) + "/"
    await acreate_link_artifact(
        link=_browsable(s3, location, location.key(*run_prefix)) or run_folder,
        link_text=f"Run folder {run_folder}", key="catalog-refresh-run-folder",
        description="Report, manifest and ledger row of this run")
    problems = problem_rows(manifest)
    if problems:
        await acreate_table_artifact(problems, key="catalog-refresh-problems",
                                     description="Failed and rejected rows")
    return {
        "run_id": header["run_id"], "flow_run_id": header["flow_run_id"], "totals": totals,
        "report_uri": None if upload_error else header["report_uri"], "summary": markdown,
        "report_path": str(local_report) if local_report else None,
        "report_upload_error": upload_error,
    }


def _s3_problem(exc: BaseException) -> str:
    """A StorageError's own message, or a boto error described without secrets."""
    return str(exc) if isinstance(exc, StorageError) else describe_s3_error(exc)


def _browsable(s3: S3Settings, location: S3Location, key: str) -> str | None:
    """An http(s) URL of an S3 folder when the store has an explicit endpoint."""
    if not s3.endpoint_url:
        return None
    return f"{s3.endpoint_url.rstrip('/')}/{location.bucket}/{key}/"


def outcome_of(state) -> dict | None:
    """The outcome dict of a finished run (Completed or Failed with rows), else None."""
    if state.is_completed():
        data = state.result(raise_on_failure=False)
    else:
        data = getattr(state.data, "result", state.data)
    return data if isinstance(data, dict) and "totals" in data else None
