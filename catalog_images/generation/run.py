"""Fan a plan's rows out as Prefect chunk tasks in this process and record every outcome.

Used by the one-process flow and by each shard of a scaled-out run alike.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact

from catalog_images.catalog.plan import iter_jobs
from catalog_images.destination.index import part_bytes, part_key, quarantined_fingerprint
from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.spool import Spool, default_spool_root
from catalog_images.generation.batch import collect_recorded, run_batch_mode
from catalog_images.generation.resources import RunContext, open_run_context
from catalog_images.generation.routing import ProviderStats
from catalog_images.generation.stop import StopRequest, stop_on_signals
from catalog_images.models import Job, RowStatus
from catalog_images.report.contact_sheet import SheetItem
from catalog_images.report.progress import RunProgress
from catalog_images.report.results import ResultSink, RowResult
from catalog_images.run_setup import RunSetup

PROGRESS_LOG_EVERY_S = 10.0
LIST_PAGE_KEYS = 1000  # keys a List request returns at most
LISTED_KEYS_MAX = 50_000  # the most image keys listed (one page after another) at the start
# The Prefect task that runs one chunk: (ctx, jobs, first_row=, last_row=) -> rows done. It is
# handed the run's live context, so it runs in this process, on this event loop.
ChunkRunner = Callable[..., Awaitable[int]]


class IndexWriter:
    """Appends what this run uploaded to the destination's index, a parts file at a time."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.pending: list[dict] = []
        self.seq = 0
        self.written = 0

    def add(self, result: RowResult) -> None:
        """Remember a row whose image is at the destination under its fingerprint (marked
        as quarantined when it is under quarantine/: destination/index.py)."""
        if result.s3_key and result.fingerprint and result.status in (
            RowStatus.SUCCEEDED, RowStatus.SKIPPED, RowStatus.QUARANTINED
        ):
            fp = result.fingerprint
            if DestinationLayout(self.ctx.location).is_quarantine_key(result.s3_key):
                fp = quarantined_fingerprint(fp)
            self.pending.append({"sku": result.sku, "fingerprint": fp,
                                 "s3_key": result.s3_key, "run_id": self.ctx.run_id})

    async def flush(self) -> None:
        """Write the pending entries as one parts file; on an S3 error keep them for later.

        The index only saves work: a row missing from it costs a HEAD request next run.
        """
        if not self.pending:
            return
        try:
            await self.ctx.s3_client.put_object(
                Bucket=self.ctx.location.bucket, Body=part_bytes(self.pending),
                Key=part_key(self.ctx.location, self.ctx.run_id, self.seq + 1))
        except (ClientError, BotoCoreError, OSError):
            return
        self.seq += 1
        self.written += len(self.pending)
        self.pending = []


class Recorder:
    """Where every row's outcome goes: report sink, index, progress, periodic log line."""

    def __init__(self, sink: ResultSink, parts: IndexWriter, progress: RunProgress,
                 logger) -> None:
        self.sink, self.parts, self.progress, self.logger = sink, parts, progress, logger
        self.recorded: set[int] = set()
        self._last_log = time.monotonic()

    def __call__(self, result: RowResult) -> None:
        self.sink.add(result)
        self.parts.add(result)
        self.recorded.add(result.row)
        self.progress.record(result.status, result.cost_usd)
        if time.monotonic() - self._last_log >= PROGRESS_LOG_EVERY_S:
            self._last_log = time.monotonic()
            self.logger.info(self.progress.line())


# The UI's progress bar moves every few seconds: each update is a request and an event the
# Prefect API stores (at one a second, a tenth of its CPU over a long run).
PROGRESS_ARTIFACT_EVERY_S = 5.0


async def generate_rows(ctx: RunContext, jobs_path: str, chunk_size: int, recorder: Recorder,
                        parts: IndexWriter, settled: set[str], run_chunk: ChunkRunner) -> None:
    """Fan accepted rows out as chunk tasks, keeping enough rows queued to fill the gate."""
    progress = recorder.progress
    recorded = recorder.recorded
    on_result = recorder
    artifact_id = await acreate_progress_artifact(
        0.0, key=None, description=f"Rows finished in run {ctx.run_id}"
    )
    last_artifact = 0.0
    base_chunks = math.ceil(ctx.capacity / chunk_size) + 1
    max_chunks = base_chunks * 4
    jobs = iter_jobs(jobs_path, chunk_size)
    pending: dict[asyncio.Task, list[Job]] = {}
    exhausted = False
    while True:
        if ctx.stop.requested and not exhausted:
            exhausted = True
            _record_stopped_rows(jobs, settled, on_result, recorded)
        while not exhausted and len(pending) < max_chunks and (
            len(pending) < base_chunks or ctx.waiting < chunk_size
        ):
            chunk = next(jobs, None)
            if chunk is None:
                exhausted = True
                break
            chunk = [job for job in chunk if job.sku not in settled]  # collected batches
            if not chunk:
                continue
            task = asyncio.ensure_future(run_chunk(
                ctx, chunk, first_row=chunk[0].row, last_row=chunk[-1].row
            ))
            pending[task] = chunk
        if not pending:
            break
        done, _ = await asyncio.wait(pending, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            chunk = pending.pop(task)
            _record_lost_rows(task, chunk, recorded, on_result)
        if done:
            await parts.flush()
        if time.monotonic() - last_artifact >= PROGRESS_ARTIFACT_EVERY_S:
            last_artifact = time.monotonic()
            await aupdate_progress_artifact(artifact_id, progress=round(progress.fraction * 100, 1))
    await aupdate_progress_artifact(artifact_id, progress=100.0)


async def list_image_keys(ctx: RunContext, rows: int) -> frozenset[str] | None:
    """The destination's image keys, listed once for the whole run when that takes at most
    half the List requests the rows would (two each: generation/row.py) and at most
    LISTED_KEYS_MAX keys; else None. The lease keeps other runs from writing meanwhile."""
    max_keys = min(LISTED_KEYS_MAX, LIST_PAGE_KEYS * max(rows, 1))
    try:
        return await DestinationLayout(ctx.location).image_keys(ctx.s3_client, max_keys)
    except (ClientError, BotoCoreError, OSError):
        return None


def _record_stopped_rows(jobs, settled: set[str], on_result, recorded: set[int]) -> None:
    """Rows never handed to a chunk because the run was stopped: ``skipped``, ``stopped``."""
    for chunk in jobs:
        for job in chunk:
            if job.sku not in settled:
                on_result(RowResult.skipped(job, "stopped"))
                recorded.discard(job.row)  # the set tracks rows of chunks in flight


def _record_lost_rows(task: asyncio.Task, chunk: list[Job], recorded: set[int],
                      on_result) -> None:
    """Give every row of a finished chunk an outcome, even if the chunk task crashed."""
    error = task.exception()
    for job in chunk:
        if job.row in recorded:
            recorded.discard(job.row)
            continue
        on_result(RowResult.lost(
            job, f"internal error: {type(error).__name__ if error else 'row not processed'}"))
        recorded.discard(job.row)


@dataclass
class Generated:
    """What generating a plan's rows left besides the row results."""

    stats: dict[str, ProviderStats] = field(default_factory=dict)
    thumbnails: list[SheetItem] = field(default_factory=list)
    index_entries: int = 0  # rows written to the destination's index parts
    stopped_by: str | None = None  # the signal that stopped the run early, if one did
    warnings: list[str] = field(default_factory=list)  # for the report, e.g. a shard's bad rows
    steady_s: float | None = None  # first request to last upload (None: none, or shards)


def steady_seconds(stats: dict[str, ProviderStats], last_upload: float | None) -> float | None:
    """Seconds from the first request sent to the last image uploaded, if both happened."""
    sends = [s.first_send for s in stats.values() if s.first_send is not None]
    return last_upload - min(sends) if sends and last_upload else None


YOUNG_OBJECTS_PER_WALK = 10_000  # gc's first threshold while generating (Python's: 700)


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """The objects made before generation (modules, Prefect, clients: most of a run's) are
    left out of the garbage collector's walks until it ends (``gc.freeze``): a full walk of
    them cost tens of milliseconds, many times in a long run. Meanwhile the young objects
    are walked every YOUNG_OBJECTS_PER_WALK allocations, not 700: a request's objects
    mostly die young by reference count, and the walks were a second of CPU per 10,000
    rows."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS_PER_WALK, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def generate_here(
    run: RunSetup, jobs_path: str, sink: ResultSink, progress: RunProgress, logger,
    run_chunk: ChunkRunner, *, collect_batches: bool = True, stop: StopRequest | None = None,
) -> Generated:
    """Generate and upload the jobs file's rows in this process, recording each outcome.

    ``collect_batches``: first settle batch jobs recorded by earlier runs (a shard leaves
    that to its parent run). ``stop``: the run's stop request, if the caller keeps one.
    """
    settings, configs = run.settings, run.provider_configs
    async with open_run_context(
        run.run_id, run.location, configs, settings, run.s3,
        Spool(default_spool_root(), settings.dest),
    ) as ctx:
        ctx.stop = stop or ctx.stop
        ctx.stop.add_listener(ctx.router.interrupt_all)  # rows waiting at a gate leave at once
        ctx.logger = logger
        parts = IndexWriter(ctx)
        recorder = Recorder(sink, parts, progress, logger)
        ctx.on_result = recorder
        settled: set[str] = set()
        with startup_objects_frozen(), stop_on_signals(ctx.stop, logger,
                                                        lambda: ctx.in_flight):
            if collect_batches:
                settled = await collect_recorded(ctx, configs, settings.batch_deadline_s,
                                                 settings.batch_poll_s)
                recorder.recorded.clear()  # collected rows belong to no chunk
            if settings.mode == "batch":
                logger.info("batch mode: %d rows in jobs of up to %d", progress.total,
                            settings.batch_rows)
                await run_batch_mode(ctx, configs[0], iter_jobs(jobs_path, 10_000),
                                     settings.batch_rows, settings.batch_deadline_s,
                                     settings.batch_poll_s, settled)
            else:
                ctx.image_keys = await list_image_keys(ctx, progress.total)
                await generate_rows(ctx, jobs_path, settings.chunk_size, recorder, parts,
                                    settled, run_chunk)
        await parts.flush()
        stats = ctx.router.stats()
        return Generated(stats, list(ctx.thumbnails), parts.written, ctx.stop.signal_name,
                         steady_s=steady_seconds(stats, ctx.last_upload))
