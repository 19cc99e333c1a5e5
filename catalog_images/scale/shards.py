"""Scale-out: split a run's plan into shards, run each as a child flow run of the shard
deployment (any number of Prefect workers pick them up), then merge their results.

The parent plans once (validation, duplicates, the index), so a shard only generates. Shards
exchange files through the destination bucket, under ``runs/{run_id}/shards/{n}/``:
``jobs.parquet`` in, ``manifest.parquet`` (row results), ``stats.json`` (per-provider stats)
and ``thumbnails.parquet`` out. Provider rpm limits are shared through Prefect global
concurrency limits named ``catalog-images-{provider}``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from catalog_images.catalog.plan import PlanSummary
from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location, S3Settings, StorageError, capped_read
from catalog_images.generation.deliver import THUMBNAILS_KEPT
from catalog_images.generation.routing import ProviderStats
from catalog_images.generation.run import Generated
from catalog_images.models import Job, RowStatus
from catalog_images.providers.config import ProviderConfig
from catalog_images.report.contact_sheet import SheetItem
from catalog_images.report.progress import RunProgress
from catalog_images.report.results import ResultSink, RowResult, iter_result_rows
from catalog_images.run_setup import RunSetup
from catalog_images.scale.manifest_rows import ShardRows
from catalog_images.secrets import redact
from catalog_images.settings import RunSettings, SettingsError

THUMBNAIL_SCHEMA = pa.schema([("sku", pa.string()), ("png", pa.binary()), ("key", pa.string())])
BURST_SHARE = 0.1  # of a provider's rpm that may go out at once across all shards
SEND_JITTER_MARGIN = 1.05  # slower decay, for requests sent a little after their slot
# Runs the shards on a Dask scheduler: (specs, address) -> [(state name, message)] per shard.
DaskRunner = Callable[[list["ShardSpec"], str], list[tuple[str, str]]]


class ShardSpec(BaseModel):
    """One shard's work order: the child flow's only parameter."""

    parent_run_id: str = Field(description="run id of the parent run")
    index: int = Field(ge=0, description="0-based shard number")
    count: int = Field(ge=1, description="shards in the run")
    rows: int = Field(ge=0, description="rows in this shard's jobs file")
    jobs_key: str = Field(description="S3 key (in the destination bucket) of the jobs file")
    settings: dict = Field(description="the parent's run settings for this shard")

    @property
    def run_id(self) -> str:
        """This shard's own run id (its index parts and spool entries carry it)."""
        return shard_run_id(self.parent_run_id, self.index)


def shard_run_id(parent_run_id: str, index: int) -> str:
    """The run id of shard ``index`` of a parent run."""
    return f"{parent_run_id}-s{index:03d}"


def shard_key(location: S3Location, parent_run_id: str, index: int, name: str) -> str:
    """Where a shard's exchange file lives in the destination bucket."""
    return DestinationLayout(location).shard_key(parent_run_id, index, name)


def split_jobs(jobs_path: str, count: int, out_dir: Path) -> list[tuple[Path, int]]:
    """Cut the plan's jobs into ``count`` contiguous files of near-equal rows."""
    source = pq.ParquetFile(jobs_path)
    total = source.metadata.num_rows
    per_shard = max(1, math.ceil(total / count))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"jobs-{n:03d}.parquet" for n in range(count)]
    writers = [pq.ParquetWriter(path, source.schema_arrow) for path in paths]
    rows = [0] * count
    start = 0
    try:
        for batch in source.iter_batches(batch_size=10_000):
            offset = 0
            while offset < batch.num_rows:
                shard = min(start // per_shard, count - 1)
                take = min(batch.num_rows - offset, per_shard * (shard + 1) - start)
                if shard == count - 1:
                    take = batch.num_rows - offset
                writers[shard].write_batch(batch.slice(offset, take))
                rows[shard] += take
                offset += take
                start += take
    finally:
        for writer in writers:
            writer.close()
    return list(zip(paths, rows, strict=True))


def shared_rate_limit(rpm: int, window_s: float) -> tuple[int, float]:
    """Slots and decay per second of a Prefect rate limit that keeps every window of
    ``window_s`` seconds at or under ``rpm`` requests.

    A window admits at most burst + ⌊decay × window⌋ acquisitions, so that must be ≤ rpm.
    """
    burst = max(1, int(rpm * BURST_SHARE))
    decay = max(rpm - burst, 0.5) / (window_s * SEND_JITTER_MARGIN)
    return burst, round(decay, 6)


async def ensure_shared_rate_limits(configs: list[ProviderConfig], logger) -> None:
    """Create the global rate limit of each rpm-limited provider unless one exists.

    An existing limit is the operator's: it is left as it is.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    async with get_client() as client:
        for config in configs:
            if not config.requests_per_window:
                continue
            name = f"catalog-images-{config.name}"
            try:
                await client.read_global_concurrency_limit_by_name(name)
                continue
            except ObjectNotFound:
                pass
            burst, decay = shared_rate_limit(config.requests_per_window, config.window_s)
            try:
                await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=name, limit=burst, slot_decay_per_second=decay))
            except ObjectAlreadyExists:
                continue
            logger.info("shared rate limit %s: %d slots, %.3f/s (%d requests per %g s)",
                        name, burst, decay, config.requests_per_window, config.window_s)


def check_shared_api(setting: str) -> None:
    """Scale-out needs a Prefect server every worker reaches; refuse ephemeral mode."""
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise SettingsError(
            f"{setting}: shards on other processes share rate limits and report through a "
            "Prefect server; set PREFECT_API_URL (here and on the workers) or run with shards=1")


async def check_shard_deployment(name: str) -> None:
    """Stop the run, before any request, when the shard deployment cannot be found."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        async with get_client() as client:
            await client.read_deployment_by_name(name)
    except (ObjectNotFound, ValueError):
        raise SettingsError(
            f"shards: deployment {name!r} not found on the Prefect API; deploy it with "
            "`prefect deploy --all --prefect-file deployments/prefect.yaml`, start workers on "
            "its pool, or run with shards=1") from None


def shard_specs(run_id: str, settings: RunSettings, location: S3Location, s3: S3Settings,
                files: list[tuple[Path, int]]) -> list[ShardSpec]:
    """Upload each shard's jobs file and write its work order; the budget is split by rows."""
    client = s3.boto3_client()
    total = sum(rows for _, rows in files) or 1
    specs = []
    for index, (path, rows) in enumerate(files):
        if not rows:
            continue
        key = shard_key(location, run_id, index, "jobs.parquet")
        client.upload_file(str(path), location.bucket, key)
        cap = (None if settings.max_cost_usd is None
               else settings.max_cost_usd * rows / total)
        shard_settings = settings.model_copy(update={
            "shards": 1, "dask_address": None, "global_limits": True, "max_cost_usd": cap,
            "report_path": None})
        specs.append(ShardSpec(parent_run_id=run_id, index=index, count=len(files), rows=rows,
                               jobs_key=key, settings=shard_settings.model_dump()))
    return specs


def stats_bytes(stats: dict[str, ProviderStats]) -> bytes:
    """A shard's per-provider stats as JSON."""
    return json.dumps({name: asdict(s) for name, s in stats.items()}).encode()


def thumbnails_bytes(items: list[SheetItem]) -> bytes:
    """A shard's contact-sheet thumbnails as Parquet."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"sku": t.sku, "png": t.data, "key": t.key}
                                         for t in items],
                                        schema=THUMBNAIL_SCHEMA), buffer)
    return buffer.getvalue()


log = logging.getLogger(__name__)
MAX_SHARD_FILE_BYTES = 256 * 1024 * 1024  # stats.json and thumbnails.parquet read back
SHARD_FILE_ERRORS = (ClientError, BotoCoreError, StorageError, OSError, ValueError, TypeError,
                     KeyError, AttributeError, RecursionError, pa.ArrowException)


def _run_log() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger (its lines reach the run's logs in the UI), else this module's."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return log


def _shard_file(client, location: S3Location, spec: ShardSpec, name: str) -> bytes:
    key = shard_key(location, spec.parent_run_id, spec.index, name)
    body = client.get_object(Bucket=location.bucket, Key=key)["Body"]
    return capped_read(body, MAX_SHARD_FILE_BYTES, name)


def _merge_extras(client, location: S3Location, spec: ShardSpec, merged: Generated) -> None:
    """A shard's provider stats and thumbnails, read back from the bucket: size-limited, and
    skipped with a warning when unreadable (they are counts and pictures, not rows)."""
    try:
        for name, values in json.loads(_shard_file(client, location, spec,
                                                   "stats.json")).items():
            stats = ProviderStats(**values)  # before setdefault: a bad one adds nothing
            merged.stats.setdefault(name, ProviderStats()).merge(stats)
    except SHARD_FILE_ERRORS as exc:
        log.warning("shard %d: stats.json skipped (%s)", spec.index, type(exc).__name__)
    try:
        body = _shard_file(client, location, spec, "thumbnails.parquet")
        for item in pq.read_table(io.BytesIO(body)).to_pylist():
            if len(merged.thumbnails) < THUMBNAILS_KEPT:
                merged.thumbnails.append(SheetItem(item["sku"], item["png"], item.get("key") or ""))
    except SHARD_FILE_ERRORS as exc:
        log.warning("shard %d: thumbnails.parquet skipped (%s)", spec.index, type(exc).__name__)


def merge_shard(location: S3Location, s3: S3Settings, spec: ShardSpec, jobs_path: Path,
                work_dir: Path, sink: ResultSink, merged: Generated, ended: str = "") -> int:
    """Add one shard's results to the parent's; a row it did not report ends failed,
    with how the shard ended (``ended``) in its reason. Manifest rows that match no row
    given to the shard are left out, logged and counted in the report's warnings
    (scale/manifest_rows.py).

    Returns the rows taken from the shard's manifest.
    """
    client = s3.boto3_client()
    rows = ShardRows.of_jobs(jobs_path)
    manifest = work_dir / f"manifest-{spec.index:03d}.parquet"
    try:
        client.download_file(location.bucket,
                             shard_key(location, spec.parent_run_id, spec.index,
                                       "manifest.parquet"), str(manifest))
    except Exception:  # noqa: BLE001 - a shard that never wrote one: its rows fail below
        manifest = None
    if manifest is not None:
        try:
            for row in iter_result_rows(manifest):
                if (result := rows.take(row)) is not None:
                    sink.add(result)
        except SHARD_FILE_ERRORS as exc:  # the rows it did not give fail below, as lost
            _run_log().warning("shard %d: manifest unreadable after %d rows (%s)", spec.index,
                               len(rows.seen), type(exc).__name__)
        if (warning := rows.warning(spec.index)) is not None:
            _run_log().warning("%s", warning)
            merged.warnings.append(warning)
        _merge_extras(client, location, spec, merged)
    for batch in pq.ParquetFile(jobs_path).iter_batches(batch_size=10_000):
        for job in map(Job.from_dict, batch.to_pylist()):
            if job.row in rows.seen:
                continue
            sink.add(RowResult.lost(job, f"shard {spec.index} ended{ended} before this row "
                                    "did; the next run retries it"))
    return len(rows.seen)


async def run_shards(
    run: RunSetup, plan: PlanSummary, work_dir: Path, sink: ResultSink,
    progress: RunProgress, logger, run_on_dask: DaskRunner,
) -> Generated:
    """Fan the plan out as child flow runs of the shard deployment (or, with a Dask address,
    through ``run_on_dask``) and merge what they did."""
    from prefect.deployments import run_deployment

    run_id, settings, configs = run.run_id, run.settings, run.provider_configs
    location, s3 = run.location, run.s3

    if settings.dask_address:
        check_shared_api("dask_address")
    else:
        await check_shard_deployment(settings.shard_deployment)
    await ensure_shared_rate_limits(configs, logger)
    files = await asyncio.to_thread(split_jobs, plan.plan_path, settings.shards,
                                    work_dir / "shards")
    specs = await asyncio.to_thread(shard_specs, run_id, settings, location, s3, files)
    target = (f"Dask scheduler {settings.dask_address}" if settings.dask_address
              else f"deployment {settings.shard_deployment}")
    logger.info("scale-out: %d shards of ~%d rows to %s", len(specs),
                max((s.rows for s in specs), default=0), target)
    merged = Generated()
    merging = asyncio.Lock()  # one shard's results at a time into the sink

    async def merge(spec: ShardSpec, name: str, message: str) -> None:
        logger.info("shard %d/%d: %s", spec.index + 1, len(specs), name)
        ended = f" ({name}: {redact(message)[:300]})"
        async with merging:
            progress.done += await asyncio.to_thread(
                merge_shard, location, s3, spec, files[spec.index][0], work_dir, sink, merged,
                ended)
        progress.publish()

    if settings.dask_address:
        states = await asyncio.to_thread(run_on_dask, specs, settings.dask_address)
        for spec, (name, message) in zip(specs, states, strict=True):
            await merge(spec, name, message)
        merged.index_entries = sink.totals.counts[RowStatus.SUCCEEDED]
        return merged

    async def one(spec: ShardSpec) -> None:
        child = await run_deployment(
            settings.shard_deployment, parameters={"shard": spec.model_dump()}, timeout=None,
            poll_interval=2, flow_run_name=f"{run_id}-shard-{spec.index:03d}",
            idempotency_key=f"{run_id}-shard-{spec.index}")  # a parent retry reuses it
        state = child.state
        await merge(spec, state.name if state else "unknown", state.message or "" if state else "")

    await asyncio.gather(*(one(spec) for spec in specs))
    merged.index_entries = sink.totals.counts[RowStatus.SUCCEEDED]  # parts the shards wrote
    return merged
