"""Batch Mode in a run: rows submitted as Gemini batch jobs, at the batch price.

Creating a batch is not idempotent, so each job is recorded under ``state/batches/`` at the
destination *before* it is created, under a display name no other job has, and again with
its name once the provider answers (tasks/batch_records.py). A process killed at any
moment therefore leaves either no job, or a record the next run settles: by the recorded
name, or by finding the display name among the provider's batches when the kill came
before the answer. A job that fails or expires sends its rows back to the queue (they end
``skipped`` and the next run does them); rows whose image is in the spool are uploaded from
it, never bought again.
"""

from __future__ import annotations

import asyncio
import time

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination import batch_records
from catalog_images.destination.batch_records import BatchRecord
from catalog_images.destination.storage import describe_s3_error
from catalog_images.generation.row import (
    RunContext,
    _already_uploaded,
    _finish,
    _upload,
    image_key,
    keep_thumbnail,
    process_row,
    spool_image,
    upload_failure_reason,
)
from catalog_images.models import ImageRequest, ReferenceImage, RowStatus
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ProviderError
from catalog_images.providers.gemini import parse_response
from catalog_images.providers.gemini_batch import (
    ENDED_WITHOUT_RESULTS,
    SUCCEEDED,
    GeminiBatchClient,
    batch_state,
)
from catalog_images.report.results import RowResult

CREATE_ATTEMPTS = 4
CREATE_GRACE_S = 15.0  # after this, a create call that reached the provider shows in its list


class NotCreated(Exception):
    """The provider certainly made no job: its rows may be submitted again."""

    def __init__(self, cause: ProviderError) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _request(ctx: RunContext, job: dict) -> ImageRequest:
    refs: tuple[ReferenceImage, ...] = ()
    if job.get("reference_image"):
        refs = (await ctx.reference(job["reference_image"]),)
    return ImageRequest(job["prompt"], job["resolution"], job["aspect_ratio"], refs)


async def _deliver(ctx: RunContext, config: ProviderConfig, job: dict, item: dict | None,
                   name: str, note: str) -> RowResult:
    """Verify, spool and upload one row's batch answer."""
    result = RowResult(sku=job["sku"], row=job["row"], status=RowStatus.FAILED,
                       provider=config.name, model=config.model,
                       resolution=job["resolution"], aspect_ratio=job["aspect_ratio"],
                       fingerprint=job["fingerprint"], attempts=1)
    if item is None or "response" not in item:
        error = (item or {}).get("error") or {}
        result.error_class = "batch_error"
        result.reason = f"batch {name}: {error.get('message') or 'no answer for this row'}"
        return _finish(ctx, result)
    try:
        request = await _request(ctx, job)
    except Exception as exc:  # the reference image changed or vanished since planning
        result.error_class = "reference"
        result.reason = f"batch {name}: unreadable reference image: {exc}"
        return _finish(ctx, result)
    try:
        image = parse_response(item["response"], request)
    except ProviderError as exc:
        result.error_class, result.reason = exc.error_class.value, f"batch {name}: {exc}"
        if exc.billed:
            result.cost_usd = config.batch_price(job["resolution"])
        return _finish(ctx, result)
    result.cost_usd = config.batch_price(job["resolution"])
    problem = await spool_image(ctx, job["sku"], job["fingerprint"], image, config)
    spool_errors = [problem] if problem else []
    key = image_key(ctx.location, job["sku"], image.mime_type)
    metadata = {"sku": job["sku"], "fingerprint": job["fingerprint"], "provider": config.name,
                "model": config.model, "run-id": ctx.run_id, "mode": "batch"}
    try:
        await _upload(ctx, key, image.data, image.mime_type, metadata)
    except (ClientError, BotoCoreError, OSError) as exc:
        result.error_class = "upload"
        result.reason = upload_failure_reason(exc, spool_errors)
        if spool_errors:  # the job's results are still at the provider: keep its record
            result.reason += f"; the next run collects batch {name} again"
            result.error_class = "upload_unspooled"
        return _finish(ctx, result)
    ctx.spool.remove(job["sku"], job["fingerprint"])
    result.status, result.s3_key, result.bytes = RowStatus.SUCCEEDED, key, len(image.data)
    result.width, result.height = image.width, image.height
    result.reason = note or (f"uploaded without a spool copy ({spool_errors[0]})"
                             if spool_errors else None)
    await keep_thumbnail(ctx, job["sku"], image.data, key)
    return _finish(ctx, result)


def _maybe_created(exc: ProviderError) -> bool:
    """False only for a 4xx answer, which certainly made no job."""
    return not (exc.status is not None and 400 <= exc.status < 500)


async def _create(client: GeminiBatchClient, requests: list, display_name: str) -> str:
    """Create the job exactly once; after an answer that may hide a created job (timeout,
    reset, 5xx), look it up by display name before sending again."""
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return await client.create(requests, display_name)
        except ProviderError as exc:
            if _maybe_created(exc):
                found = await client.find(display_name)  # a failure here leaves it unknown
                if found is None:  # a create can land late: look once more before resending
                    await asyncio.sleep(CREATE_GRACE_S)
                    found = await client.find(display_name)
                if found is not None:
                    return found
            if not exc.retryable or attempt == CREATE_ATTEMPTS:
                raise NotCreated(exc) from None
            await asyncio.sleep(exc.retry_after_s or min(30.0, 2.0 ** attempt))
    raise AssertionError("unreachable")


def _release(ctx: RunContext, config: ProviderConfig, jobs: list[dict]) -> None:
    """Give back the budget held for rows whose job will not be billed."""
    for job in jobs:
        ctx.budget.settle(config.batch_price(job["resolution"]), False)


def _skip(ctx: RunContext, config: ProviderConfig, jobs: list[dict], reason: str) -> None:
    for job in jobs:
        _finish(ctx, RowResult(sku=job["sku"], row=job["row"], status=RowStatus.SKIPPED,
                               reason=reason, provider=config.name, model=config.model,
                               resolution=job["resolution"], aspect_ratio=job["aspect_ratio"],
                               fingerprint=job["fingerprint"]))


async def _settle(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                  record: BatchRecord, deadline_s: float, poll_s: float,
                  note: str = "") -> None:
    """Wait for a created job and give each of its rows an outcome; never raises.

    A job the provider no longer knows (404) sends its rows back to the queue; any other
    error reading it leaves its record for the next run.
    """
    try:
        await _settle_job(ctx, client, config, record, deadline_s, poll_s, note)
    except ProviderError as exc:
        if exc.status == 404:
            _release(ctx, config, record.jobs)
            await batch_records.forget(ctx, record)
            why = f"is unknown to the provider ({exc}): queued for the next run"
        else:
            why = f"could not be read ({exc}): the next run collects it"
        _skip(ctx, config, record.jobs, f"batch {record.name} {why}")


async def _settle_job(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                      record: BatchRecord, deadline_s: float, poll_s: float,
                      note: str) -> None:
    assert record.name is not None
    resource = await client.wait(record.name, deadline_s, first_poll_s=poll_s,
                                 stop=ctx.stop)
    state = batch_state(resource)
    if state in SUCCEEDED:
        answers = await client.results(resource)
        lost = False
        for job in record.jobs:
            result = await _deliver(ctx, config, job, answers.get(job["sku"]), record.name,
                                    note)
            ctx.budget.settle(config.batch_price(job["resolution"]), result.cost_usd > 0)
            lost = lost or result.error_class == "upload_unspooled"
        if not lost:
            await batch_records.forget(ctx, record)
        return
    if state in ENDED_WITHOUT_RESULTS:
        _release(ctx, config, record.jobs)
        _skip(ctx, config, record.jobs,
              f"batch {record.name} ended {state}: queued for the next run")
        await batch_records.forget(ctx, record)
        return
    # Still running: the reservation stays (it will be billed) and the record stays.
    why = "the run was stopped" if ctx.stop.requested else "still running"
    _skip(ctx, config, record.jobs, f"batch {record.name} {why}: the next run collects it")


async def _find_unanswered(client: GeminiBatchClient, record: BatchRecord) -> str | None:
    """The job of a record whose create call never answered, or None when it was never
    made; a record younger than the grace period is looked up again once it is older."""
    found = await client.find(record.display_name)
    young_for = CREATE_GRACE_S - (time.time() - record.saved_at)
    if found is None and young_for > 0:
        await asyncio.sleep(young_for)
        found = await client.find(record.display_name)
    return found


async def collect_recorded(ctx: RunContext, configs: list[ProviderConfig], deadline_s: float,
                           poll_s: float) -> set[str]:
    """Settle the jobs recorded by earlier runs; returns the skus they account for.

    A record without a name is a job whose create call never answered: it is found among
    the provider's batches by its display name, or, when the provider has no such job, its
    rows go back to this run's queue. Each job is read from the provider that made it.
    """
    records = await batch_records.load_all(ctx)
    if not records:
        return set()
    by_name = {config.name: config for config in configs}
    clients: dict[str, GeminiBatchClient] = {}
    settled: set[str] = set()
    try:
        for record in records:
            config = by_name.get(record.provider or "", configs[0])
            if config.name not in clients:
                clients[config.name] = GeminiBatchClient(config, config.resolve_api_key())
            client = clients[config.name]
            settled |= {job["sku"] for job in record.jobs}
            if record.name is None:
                try:
                    record.name = await _find_unanswered(client, record)
                except ProviderError as exc:
                    _skip(ctx, config, record.jobs,
                          f"batch {record.display_name} may exist, could not list batches "
                          f"({exc}): the next run looks again")
                    continue
                if record.name is None:
                    await batch_records.forget(ctx, record)  # never created: queue the rows
                    settled -= {job["sku"] for job in record.jobs}
                    continue
                await batch_records.save_quietly(ctx, record)
            for job in record.jobs:
                ctx.budget.reserve(config.batch_price(job["resolution"]))  # already committed
            await _settle(ctx, client, config, record, deadline_s, poll_s,
                          note=f"collected from batch {record.name} of run {record.run_id}")
    finally:
        for client in clients.values():
            await client.aclose()
    return settled


async def run_batch_mode(ctx: RunContext, config: ProviderConfig, chunks, batch_rows: int,
                         deadline_s: float, poll_s: float, settled: set[str]) -> None:
    """Submit the plan's rows as batch jobs of ``batch_rows`` and settle every one."""
    client = GeminiBatchClient(config, config.resolve_api_key())
    waits = []
    pending: list[dict] = []
    try:
        async def submit(jobs: list[dict]) -> None:
            requests, readable = [], []
            for job in jobs:
                try:
                    requests.append((job["sku"], await _request(ctx, job)))
                    readable.append(job)
                except Exception as exc:  # the reference image changed since planning
                    _release(ctx, config, [job])
                    _finish(ctx, RowResult(
                        sku=job["sku"], row=job["row"], status=RowStatus.FAILED,
                        error_class="reference", reason=f"unreadable reference image: {exc}",
                        fingerprint=job["fingerprint"], resolution=job["resolution"],
                        aspect_ratio=job["aspect_ratio"]))
            jobs = readable
            if not jobs:
                return
            record = batch_records.new_record(ctx, jobs, config.name)
            try:  # the intent, before any money can be spent
                await batch_records.save(ctx, record)
            except (ClientError, BotoCoreError, OSError) as exc:
                _release(ctx, config, jobs)
                _skip(ctx, config, jobs, "the batch could not be recorded at the destination "
                      f"({describe_s3_error(exc)}): queued for the next run")
                return
            try:
                record.name = await _create(client, requests, record.display_name)
            except NotCreated as exc:
                await batch_records.forget(ctx, record)
                _release(ctx, config, jobs)
                _skip(ctx, config, jobs,
                      f"batch could not be created ({exc.cause}): queued for the next run")
                return
            except ProviderError as exc:  # created or not, unknown: the next run finds out
                _skip(ctx, config, jobs, f"batch {record.display_name} may have been created"
                      f" ({exc}): the next run collects it or queues its rows again")
                return
            await batch_records.save_quietly(ctx, record)  # else found by its display name
            waits.append(asyncio.ensure_future(
                _settle(ctx, client, config, record, deadline_s, poll_s)))

        for chunk in chunks:
            for job in chunk:
                if job["sku"] in settled:
                    continue  # its outcome is reported from the collected batch
                if ctx.stop.requested:
                    _skip(ctx, config, [job], "stopped")
                    continue
                if ctx.spool.find(job["sku"], job["fingerprint"]) is not None:
                    await process_row(job, ctx)  # paid for already: upload from the spool
                    continue
                forced = ctx.force or job["sku"] in ctx.force_skus
                existing = None if forced else await _already_uploaded(
                    ctx, job["sku"], job["fingerprint"])
                if existing:
                    _finish(ctx, RowResult(sku=job["sku"], row=job["row"],
                                           status=RowStatus.SKIPPED, reason="unchanged",
                                           s3_key=existing, fingerprint=job["fingerprint"]))
                    continue
                if not ctx.budget.reserve(config.batch_price(job["resolution"])):
                    _skip(ctx, config, [job], "budget")
                    continue
                pending.append(job)
                if len(pending) >= batch_rows:
                    await submit(pending)
                    pending = []
        if pending and ctx.stop.requested:
            _release(ctx, config, pending)
            _skip(ctx, config, pending, "stopped")
        elif pending:
            await submit(pending)
        await asyncio.gather(*waits)
    finally:
        await client.aclose()
