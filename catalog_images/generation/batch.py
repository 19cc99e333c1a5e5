"""Batch Mode in a run: rows submitted as Gemini batch jobs, at the batch price.

Creating a batch is not idempotent, so each job is recorded under ``state/batches/`` at the
destination *before* it is created, under a display name no other job has, and again with
its name once the provider answers (destination/batch_records.py). A process killed at any
moment therefore leaves either no job, or a record the next run settles: by the recorded
name, or by finding the display name among the provider's batches when the kill came
before the answer. A job that fails or expires sends its rows back to the queue (they end
``skipped`` and the next run does them); rows whose image is in the spool are uploaded from
it, never bought again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination import batch_records
from catalog_images.destination.batch_records import BatchRecord
from catalog_images.destination.storage import describe_s3_error
from catalog_images.generation import batch_outs
from catalog_images.generation.batch_jobs import release_budget, skip_rows, write_requests
from catalog_images.generation.deliver import keep
from catalog_images.generation.resources import RunContext
from catalog_images.generation.row import (
    build_request,
    current_result,
    find_current,
    process_row,
)
from catalog_images.generation.shape import deliver_checked
from catalog_images.generation.stop import StopRequest
from catalog_images.models import ImageRequest, Job
from catalog_images.providers.batch_input import BatchInput
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ProviderError
from catalog_images.providers.gemini import parse_response
from catalog_images.providers.gemini_batch import (
    ENDED_WITHOUT_RESULTS,
    SUCCEEDED,
    GeminiBatchClient,
    UploadFailed,
    batch_state,
)
from catalog_images.report.results import RowResult, Tries

CREATE_ATTEMPTS = 4
CREATE_GRACE_S = 15.0  # after this, a create call that reached the provider shows in its list


class NotCreated(Exception):
    """The provider certainly made no job: its rows may be submitted again."""

    def __init__(self, cause: ProviderError) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _deliver(ctx: RunContext, config: ProviderConfig, job: Job, item: dict | None,
                   name: str, note: str) -> RowResult:
    """Verify, spool and upload one row's batch answer; its result, recorded."""
    return ctx.finish(await _answer(ctx, config, job, item, name, note))


async def _answer(ctx: RunContext, config: ProviderConfig, job: Job, item: dict | None,
                  name: str, note: str) -> RowResult:
    one = Tries(attempts=1)  # the row's one request, in the job
    who = {"provider": config.name, "model": config.model_for(job.model), "tries": one}
    if item is None or "response" not in item:
        error = (item or {}).get("error") or {}
        return RowResult.failed(
            job, "batch_error", f"batch {name}: {error.get('message') or 'no answer for this row'}",
            **who)
    try:
        request = await build_request(ctx, job)
    except Exception as exc:  # the reference image changed or vanished since planning
        return RowResult.failed(job, "reference", f"batch {name}: unreadable reference image: "
                                f"{exc}", **who)
    try:
        image = parse_response(item["response"], request)
    except ProviderError as exc:
        cost = batch_error_charge(config, request, exc)
        return RowResult.failed(job, exc.error_class.value, f"batch {name}: {exc}",
                                cost_usd=cost, **who)
    charge = config.charge(job.resolution, job.model, image.usage, image=True, batch=True)
    paid = await keep(ctx, job, job.fingerprint, image, config, charge, note=note or None)
    return await deliver_checked(ctx, paid, one,
                                 lost_note=f"the next run collects batch {name} again")


def batch_error_charge(config: ProviderConfig, request: ImageRequest,
                       error: ProviderError) -> float:
    """What a batch answer without a usable image cost (half the standard rates)."""
    if error.usage and config.billing == "usage":
        return config.charge(request.resolution, request.model, error.usage, image=False,
                             batch=True).cost_usd
    return config.batch_price(request.resolution, request.model) if error.billed else 0.0


def _maybe_created(exc: ProviderError) -> bool:
    """False for a failed upload of the input (no create call was sent) or a 4xx answer,
    which certainly made no job."""
    if isinstance(exc, UploadFailed):
        return False
    return not (exc.status is not None and 400 <= exc.status < 500)


async def _create(client: GeminiBatchClient, requests: BatchInput, display_name: str, *,
                  stop: StopRequest | None = None, max_hint_s: float = float("inf")) -> str:
    """Create the job exactly once; after an answer that may hide a created job (timeout,
    reset, 5xx), look it up by display name before sending again.

    A refusal no retry fixes (per-day quota, spend cap, configuration, a hint over
    ``max_hint_s``) is not sent again; a stop ends the waits between attempts.
    """
    pause = stop.pause if stop is not None else asyncio.sleep
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return await client.create(requests, display_name)
        except ProviderError as exc:
            if _maybe_created(exc):
                found = await client.find(display_name)  # a failure here leaves it unknown
                if found is None:  # a create can land late: look once more before resending
                    await pause(CREATE_GRACE_S)
                    found = await client.find(display_name)
                if found is not None:
                    return found
            if (not exc.retryable or attempt == CREATE_ATTEMPTS or (stop and stop.requested)
                    or (exc.retry_after_s or 0) > max_hint_s):
                raise NotCreated(exc) from None
            await pause(exc.retry_after_s or min(30.0, 2.0 ** attempt))
    raise AssertionError("unreachable")


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
            release_budget(ctx, config, record.jobs)
            await batch_records.forget(ctx, record)
            why = f"is unknown to the provider ({exc}): queued for the next run"
        else:
            why = f"could not be read ({exc}): the next run collects it"
        skip_rows(ctx, config, record.jobs, f"batch {record.name} {why}")


async def _settle_job(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                      record: BatchRecord, deadline_s: float, poll_s: float,
                      note: str) -> None:
    assert record.name is not None
    resource = await client.wait(record.name, deadline_s, first_poll_s=poll_s,
                                 stop=ctx.stop)
    state = batch_state(resource)
    if state in SUCCEEDED:
        if not await _collect(ctx, client, config, record, resource, note):
            await batch_records.forget(ctx, record)
        return
    if state in ENDED_WITHOUT_RESULTS:
        release_budget(ctx, config, record.jobs)
        skip_rows(ctx, config, record.jobs,
                  f"batch {record.name} ended {state}: queued for the next run")
        await batch_records.forget(ctx, record)
        return
    # Still running: the reservation stays (it will be billed) and the record stays.
    why = "the run was stopped" if ctx.stop.requested else "still running"
    skip_rows(ctx, config, record.jobs, f"batch {record.name} {why}: the next run collects it")


async def _collect(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                   record: BatchRecord, resource: dict, note: str) -> bool:
    """Deliver each row's answer as the results come (a row without one fails); True when
    an image was lost between spool and bucket."""
    assert record.name is not None
    waiting = {job.sku: job for job in record.jobs}
    lost = False

    async def settle(job: Job, item: dict | None) -> None:
        nonlocal lost
        result = await _deliver(ctx, config, job, item, record.name, note)
        ctx.budget.settle(config.batch_price(job.resolution, job.model),
                          result.cost_usd > 0, result.cost_usd)
        lost = lost or result.error_class == "upload_unspooled"

    async for key, item in client.iter_results(resource):
        job = waiting.pop(key, None)
        if job is not None:
            await settle(job, item)
    for job in waiting.values():
        await settle(job, None)
    return lost


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
            settled |= {job.sku for job in record.jobs}
            if record.name is None:
                try:
                    record.name = await _find_unanswered(client, record)
                except ProviderError as exc:
                    skip_rows(ctx, config, record.jobs,
                              f"batch {record.display_name} may exist, could not list batches "
                              f"({exc}): the next run looks again")
                    continue
                if record.name is None:
                    await batch_records.forget(ctx, record)  # never created: queue the rows
                    settled -= {job.sku for job in record.jobs}
                    continue
                await batch_records.save_quietly(ctx, record)
            for job in record.jobs:
                # already committed
                ctx.budget.reserve(config.batch_price(job.resolution, job.model))
            await _settle(ctx, client, config, record, deadline_s, poll_s,
                          note=f"collected from batch {record.name} of run {record.run_id}")
    finally:
        for client in clients.values():
            await client.aclose()
    return settled


async def _submit(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                  jobs: list[Job], deadline_s: float,
                  poll_s: float) -> tuple[asyncio.Future | None, list[Job]]:
    """Record and create one batch job of ``jobs`` (as many as one input file holds); the
    task settling it, or None when the rows already have their outcome (skipped for a later
    run, or failed), and the jobs left for another batch job."""
    if batch_outs.ended(ctx, config, jobs, reserved=True):  # out while they waited
        return None, []
    jobs, batch, rest = await write_requests(ctx, config, jobs)
    with batch:
        if not jobs:
            return None, rest
        record = batch_records.new_record(ctx, jobs, config.name)
        try:  # the intent, before any money can be spent
            await batch_records.save(ctx, record)
        except (ClientError, BotoCoreError, OSError) as exc:
            release_budget(ctx, config, jobs)
            skip_rows(ctx, config, jobs, "the batch could not be recorded at the destination "
                      f"({describe_s3_error(exc)}): queued for the next run")
            return None, rest
        if not await _created(ctx, client, config, record, batch):
            return None, rest
    await batch_records.save_quietly(ctx, record)  # else found by its display name
    return asyncio.ensure_future(_settle(ctx, client, config, record, deadline_s, poll_s)), rest


async def _created(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                   record: BatchRecord, batch: BatchInput) -> bool:
    """Create the recorded job (its name set on ``record``); False when its rows were given
    their outcome instead (not created: queued again; perhaps created: left to the next run).
    """
    try:
        record.name = await _create(client, batch, record.display_name, stop=ctx.stop,
                                    max_hint_s=ctx.policy.max_retry_hint_s)
    except NotCreated as exc:
        await batch_records.forget(ctx, record)
        release_budget(ctx, config, record.jobs)
        if not batch_outs.refused(ctx, config, record.jobs, exc.cause):
            skip_rows(ctx, config, record.jobs,
                      f"batch could not be created ({exc.cause}): queued for the next run")
        return False
    except ProviderError as exc:  # created or not, unknown: the next run finds out
        skip_rows(ctx, config, record.jobs, f"batch {record.display_name} may have been created"
                  f" ({exc}): the next run collects it or queues its rows again")
        return False
    return True


async def _submit_all(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                      jobs: list[Job], deadline_s: float, poll_s: float) -> list[asyncio.Future]:
    """Submit ``jobs`` as one batch job, or several when their requests pass one input
    file's limit; the tasks settling them."""
    waits = []
    while jobs:
        wait, jobs = await _submit(ctx, client, config, jobs, deadline_s, poll_s)
        if wait is not None:
            waits.append(wait)
    return waits


async def _needs_batch(ctx: RunContext, config: ProviderConfig, job: Job) -> bool:
    """True when the row goes into a batch job (its price is then reserved); else it has
    its outcome already: stopped, uploaded from the spool, unchanged, or over budget."""
    if ctx.stop.requested:
        skip_rows(ctx, config, [job], "stopped")
        return False
    if ctx.spool.find(job.sku, job.fingerprint) is not None:
        await process_row(job, ctx)  # paid for already: upload from the spool
        return False
    if batch_outs.ended(ctx, config, [job], reserved=False):  # no lookups, no request
        return False
    existing = await find_current(ctx, job, job.fingerprint)
    if existing:
        ctx.finish(current_result(ctx, job, existing, job.fingerprint))
        return False
    if not ctx.budget.reserve(config.batch_price(job.resolution, job.model)):
        skip_rows(ctx, config, [job], "budget")
        return False
    return True


async def run_batch_mode(ctx: RunContext, config: ProviderConfig,
                         chunks: Iterable[list[Job]], batch_rows: int, deadline_s: float,
                         poll_s: float, settled: set[str]) -> None:
    """Submit the plan's rows as batch jobs of ``batch_rows`` and settle every one."""
    client = GeminiBatchClient(config, config.resolve_api_key())
    waits: list[asyncio.Future] = []
    pending: dict[str | None, list[Job]] = {}  # by model: a job is for one model

    async def submit(jobs: list[Job]) -> None:
        waits.extend(await _submit_all(ctx, client, config, jobs, deadline_s, poll_s))

    try:
        for chunk in chunks:
            for job in chunk:
                if job.sku in settled:
                    continue  # its outcome is reported from the collected batch
                if not await _needs_batch(ctx, config, job):
                    continue
                same_model = pending.setdefault(job.model, [])
                same_model.append(job)
                if len(same_model) >= batch_rows:
                    await submit(pending.pop(job.model))
        for jobs in pending.values():
            if ctx.stop.requested:
                release_budget(ctx, config, jobs)
                skip_rows(ctx, config, jobs, "stopped")
            else:
                await submit(jobs)
        await asyncio.gather(*waits)
    finally:
        await client.aclose()
