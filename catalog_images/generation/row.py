"""One row's path through generation and upload: the plain code the Prefect tasks wrap.

``process_row`` never raises for a row's own problems: every outcome, good or bad, comes
back as a RowResult, so one bad row never sinks the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.catalog.fingerprint import fingerprint, sha256_hex
from catalog_images.destination.layout import IMAGES, QUARANTINE, DestinationLayout
from catalog_images.generation.deliver import PaidImage, keep
from catalog_images.generation.limits import SlotDeclined
from catalog_images.generation.outage import out_for
from catalog_images.generation.resources import RunContext
from catalog_images.generation.routing import ProviderRuntime, Router
from catalog_images.generation.shape import deliver_checked
from catalog_images.models import QUARANTINED_EARLIER, GeneratedImage, ImageRequest, Job
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import PROVIDER_FAULTS, ErrorClass, ProviderError
from catalog_images.providers.model_catalog import Charge
from catalog_images.report.results import RowResult, Tries

SKIPPED_REASONS = {ErrorClass.DAILY_QUOTA: "daily quota", ErrorClass.BUDGET: "budget",
                   ErrorClass.STOPPED: "stopped", ErrorClass.SPEND_CAP: "spend cap"}
# rows left for the next run; a quota's or spend cap's own reason says more (its reset)
OWN_REASONS = frozenset({ErrorClass.DAILY_QUOTA, ErrorClass.SPEND_CAP})
MAX_RATE_LIMITED_RETRIES = 50  # 429s are the provider pacing us, not the row failing
Kept = TypeVar("Kept")


def error_charge(config: ProviderConfig, request: ImageRequest, error: ProviderError) -> Charge:
    """What an answer without a usable image cost: its prompt and thinking tokens when the
    provider bills usage and said so, the image's price when it was billed, else nothing."""
    if error.usage and config.billing == "usage":
        return config.charge(request.resolution, request.model, error.usage, image=False)
    if error.billed:
        return config.charge(request.resolution, request.model, None, image=True)
    return Charge()


def _note_failover(route: list[ProviderRuntime], previous: ProviderRuntime | None,
                   chosen: ProviderRuntime) -> None:
    origin = previous or route[0]
    if chosen is not origin:
        origin.stats.failovers_out += 1
        chosen.stats.failovers_in += 1


def _still_wanted(ctx: RunContext, route: list[ProviderRuntime], runtime: ProviderRuntime,
                  probe: bool, model: str | None = None) -> bool:
    """Asked when the row's turn comes at ``runtime``: is it still the right provider?

    No when the run is stopping, when the provider turned unhealthy while the row queued,
    or when a provider earlier in the route is healthy again (or due a probe): traffic goes
    back to where it belongs.
    """
    if ctx.stop.requested or not runtime.available(model):
        return False
    if not probe and not runtime.breaker.closed:
        return False
    better = route[: route.index(runtime)]
    return not any(b.available(model) and b.breaker.would_allow() for b in better)


@dataclass
class _Trip:
    """One row's way through its route: where it went last, and what it has used up."""

    route: list[ProviderRuntime]
    tries: Tries
    model: str | None = None  # the row's model (None: each provider's default)
    failures: int = 0  # failed attempts, counted against the policy's max_attempts
    rate_limited: int = 0
    waited: float = 0.0  # seconds spent waiting for any provider of the route
    deadline: float = float("inf")  # time.monotonic() by which the row ends, image or not
    previous: ProviderRuntime | None = None
    probe: bool = False  # the current attempt is its breaker's half-open probe
    admitted_at: float | None = None  # time.monotonic() the current attempt got its slot


async def _choose(ctx: RunContext, trip: _Trip) -> ProviderRuntime | ProviderError:
    """The provider the row goes to next, waiting while none is available; or why none."""
    while True:
        if ctx.stop.requested:
            return ProviderError(ErrorClass.STOPPED, "stopped")
        if time.monotonic() >= trip.deadline:
            return ProviderError(ErrorClass.ROW_DEADLINE, "no image within the row deadline "
                                 f"(row_deadline_s = {ctx.policy.row_deadline_s:.0f})")
        runtime = ctx.router.choose(trip.route, trip.model)
        if runtime is not None:
            trip.probe = not runtime.breaker.closed  # allow() handed this row the probe
            _note_failover(trip.route, trip.previous, runtime)
            trip.previous = runtime
            return runtime
        out = Router.out_error(trip.route, trip.model)
        if out is not None:
            trip.previous, error = out
            trip.previous.stats.rows_left += 1
            return error
        if trip.waited >= ctx.policy.max_provider_wait_s:
            return ProviderError(
                ErrorClass.CIRCUIT_OPEN, "every provider of the route stayed unavailable")
        pause = min(Router.wait_hint(trip.route, trip.model),
                    max(0.0, trip.deadline - time.monotonic()))
        await ctx.stop.pause(pause)
        trip.waited += pause


async def _attempt(
    ctx: RunContext, trip: _Trip, runtime: ProviderRuntime, request: ImageRequest,
    price: float, keep: Callable[[ProviderRuntime, GeneratedImage], Awaitable[Kept]],
) -> Kept | ProviderError | None:
    """One request within a provider slot: what ``keep`` made of the image, the provider's
    error, or None when the slot was declined (the row is routed again)."""
    billed, cost = False, None
    try:
        async with runtime.gate.slot(
            partial(_still_wanted, ctx, trip.route, runtime, trip.probe, trip.model),
            trip.deadline,
        ) as admitted_at:
            trip.admitted_at = admitted_at
            started = time.monotonic()
            runtime.stats.sent(time.time())
            trip.tries.attempts += 1
            image = await runtime.client.generate(request)
            billed, cost = True, runtime.config.charge(
                request.resolution, request.model, image.usage, image=True).cost_usd
            kept = await keep(runtime, image)
    except SlotDeclined:
        if trip.probe:
            runtime.breaker.release_probe()  # unsent: another row may probe
        return None
    except ProviderError as exc:
        cost = error_charge(runtime.config, request, exc).cost_usd
        billed = exc.billed or cost > 0
        return exc
    finally:
        ctx.budget.settle(price, billed, cost)
    trip.tries.latency_s = round(time.monotonic() - started, 4)
    runtime.stats.latencies.append(trip.tries.latency_s)
    runtime.stats.images += 1
    runtime.breaker.record(True)
    runtime.gate.on_success(trip.admitted_at)
    return kept


def _tell_daily_quota(ctx: RunContext, runtime: ProviderRuntime, model: str | None) -> None:
    """A daily quota that is spent (ours or the provider's per-day 429, which names its
    model) is told once as a Prefect event, with its reset when the provider named one."""
    out = runtime.out_now(model)
    if out is not None and out.error_class is ErrorClass.DAILY_QUOTA:
        ctx.events.quota_exhausted(runtime.name, out.resets_at, out.model)
    elif not runtime.gate.daily_quota_left:
        ctx.events.quota_exhausted(runtime.name)


async def _try_again(ctx: RunContext, trip: _Trip, runtime: ProviderRuntime,
                     error: ProviderError) -> bool:
    """Count a failed attempt against the provider and the row; after the policy's pause,
    True when the row should be sent again (to the router: the provider may be out now)."""
    if error.status == 429:
        runtime.stats.rate_limited += 1
    out = out_for(runtime.name, error, ctx.policy.max_retry_hint_s,
                  runtime.config.model_for(trip.model))
    if out is not None:
        if runtime.take_out(out):
            ctx.logger.warning("provider %s", out.message)
        return True  # the router sends the row to a fallback, or ends it with the reason
    if error.error_class is ErrorClass.DAILY_QUOTA:
        return True  # refused before sending: the router moves on
    if error.error_class is ErrorClass.RATE_LIMITED:
        trip.rate_limited += 1
        runtime.gate.on_overload(error.retry_after_s)
    else:
        trip.failures += 1
        ours = error.error_class is ErrorClass.UNAVAILABLE and runtime.gate.on_unavailable(
            error.retry_after_s, trip.admitted_at)
        # A crowd we caused says nothing of the provider's health; a probe's answer always
        # counts (the breaker waits for it).
        if trip.probe or not ours:
            runtime.breaker.record(error.error_class not in PROVIDER_FAULTS)
    if not error.retryable or trip.failures >= ctx.policy.max_attempts or (
        trip.rate_limited >= MAX_RATE_LIMITED_RETRIES
    ):
        return False
    runtime.stats.retries += 1
    key = error.error_class.value
    trip.tries.retries[key] = trip.tries.retries.get(key, 0) + 1
    delay = ctx.policy.delay(max(1, trip.failures), error.retry_after_s, ctx.rng)
    await ctx.stop.pause(min(delay, max(0.0, trip.deadline - time.monotonic())))
    return True


async def _generate_with_retries(
    ctx: RunContext, route: list[ProviderRuntime], request: ImageRequest, tries: Tries,
    keep: Callable[[ProviderRuntime, GeneratedImage], Awaitable[Kept]],
) -> tuple[ProviderRuntime | None, Kept | ProviderError]:
    """Send the row to its route's providers until an image, a final error, or no budget.

    ``keep`` makes a delivered image durable (the spool) while its provider slot is still
    held, so images paid for but not yet on disk never outnumber the requests in flight:
    a crash can lose at most that many, however slow the disk or busy the CPU.
    """
    trip = _Trip(route, tries, request.model,
                 deadline=time.monotonic() + ctx.policy.row_deadline_s)
    while True:
        runtime = await _choose(ctx, trip)
        if isinstance(runtime, ProviderError):
            return trip.previous, runtime
        price = runtime.config.reserve_price(request.resolution, request.model,
                                             len(request.prompt), len(request.reference_images))
        if not ctx.budget.reserve(price):
            return runtime, ProviderError(ErrorClass.BUDGET, "budget")
        outcome = await _attempt(ctx, trip, runtime, request, price, keep)
        _tell_daily_quota(ctx, runtime, trip.model)
        if outcome is None:
            continue  # the provider turned unhealthy while this row queued: route again
        if not isinstance(outcome, ProviderError) or not await _try_again(
            ctx, trip, runtime, outcome
        ):
            return runtime, outcome


async def build_request(ctx: RunContext, job: Job) -> ImageRequest:
    """The provider request of a job, with its reference image read now (it may have
    changed or vanished since planning: the caller handles the exception)."""
    refs = (await ctx.reference(job.reference_image),) if job.reference_image else ()
    return ImageRequest(job.prompt, job.resolution, job.aspect_ratio, refs, job.model)


async def find_current(ctx: RunContext, job: Job, fp: str) -> str | None:
    """The key of the job's image of fingerprint ``fp`` at the destination (under images/ or
    quarantine/), unless the run regenerates this sku anyway (force)."""
    if ctx.forced(job.sku):
        return None
    return await _already_uploaded(ctx, job.sku, fp, ctx.image_keys)


async def _already_uploaded(ctx: RunContext, sku: str, fp: str,
                            listed: frozenset[str] | None = None) -> str | None:
    """The key of an image of this fingerprint already in the bucket, if there is one.

    This is the pipeline's own idempotency check (rather than a Prefect cache policy): it
    holds across flow retries, re-runs, crashes and overlapping runs, because the truth is
    the object's ``fingerprint`` metadata, written with the image. The image may be of any
    type (``.png``, ``.jpg``, ``.webp``), and quarantined (a paid image of the wrong shape):
    two List requests at once find the keys of this sku (a new row costs those), or, when
    the run listed both folders as it began (``listed``: RunContext.image_keys), that list
    does; then a HEAD reads the metadata of each.
    """
    layout = DestinationLayout(ctx.location)
    try:
        if listed is not None:
            keys = [key for folder in (IMAGES, QUARANTINE)
                    for key in layout.image_candidate_keys(sku, folder) if key in listed]
        else:
            images, quarantined = await asyncio.gather(
                layout.existing_images(ctx.s3_client, sku),
                layout.existing_images(ctx.s3_client, sku, QUARANTINE))
            keys = [*images, *quarantined]
        for key in keys:
            head = await ctx.s3_client.head_object(Bucket=ctx.location.bucket, Key=key)
            if head.get("Metadata", {}).get("fingerprint") == fp:
                return key
    except (ClientError, BotoCoreError, OSError):
        return None
    return None


def current_result(ctx: RunContext, job: Job, key: str, fp: str | None) -> RowResult:
    """The result of a row whose image of its fingerprint is at ``key`` already: unchanged,
    or quarantined by an earlier run (not paid for again)."""
    quarantined = DestinationLayout(ctx.location).is_quarantine_key(key)
    return RowResult.unchanged(job, key, fp, QUARANTINED_EARLIER if quarantined else "unchanged")


async def process_row(job: Job, ctx: RunContext) -> RowResult:
    """Generate, spool and upload one accepted row; always returns (and records) its result."""
    return ctx.finish(await _row_result(job, ctx))


async def _row_result(job: Job, ctx: RunContext) -> RowResult:
    route = ctx.router.route_for(job.priority)
    first = route[0].config
    try:
        request = await build_request(ctx, job)
    except Exception as exc:  # the file changed since planning
        return RowResult.failed(job, "reference", f"unreadable reference image: {exc}",
                                provider=first.name, model=first.model_for(job.model))
    refs = request.reference_images
    fp = job.fingerprint or fingerprint(
        request.prompt, request.resolution, request.aspect_ratio,
        first.fingerprint_model(job.model), sha256_hex(refs[0].data) if refs else None,
    )
    tries = Tries()
    spooled = ctx.spool.find(job.sku, fp)
    if spooled is not None:
        paid = PaidImage.from_spool(job, fp, spooled)
    else:
        refused = _refused_now(ctx, route, job.model)
        if refused is not None:  # no lookups for a row that cannot be sent anyway
            return _unanswered(request, job, fp, refused[0], first, refused[1], tries)
        existing = await find_current(ctx, job, fp)
        if existing:
            return current_result(ctx, job, existing, fp)

        def spool_it(runtime: ProviderRuntime, image: GeneratedImage) -> Awaitable[PaidImage]:
            config = runtime.config
            charge = config.charge(job.resolution, job.model, image.usage, image=True)
            return keep(ctx, job, fp, image, config, charge)

        runtime, outcome = await _generate_with_retries(ctx, route, request, tries, spool_it)
        if isinstance(outcome, ProviderError):
            return _unanswered(request, job, fp, runtime, first, outcome, tries)
        runtime.stats.cost_usd += outcome.cost_usd
        paid = outcome
    return await deliver_checked(ctx, paid, tries)


def _refused_now(ctx: RunContext, route: list[ProviderRuntime], model: str | None
                 ) -> tuple[ProviderRuntime | None, ProviderError] | None:
    """Why a row of ``model`` cannot be sent at all: the run is stopping, or every provider
    of its route is out for it (the provider it names counts the row as left by it)."""
    if ctx.stop.requested:
        return None, ProviderError(ErrorClass.STOPPED, "stopped")
    out = Router.out_error(route, model)
    if out is not None:
        out[0].stats.rows_left += 1
    return out


def _unanswered(request: ImageRequest, job: Job, fp: str, runtime: ProviderRuntime | None,
                first: ProviderConfig, error: ProviderError, tries: Tries) -> RowResult:
    """The result of a row that got no image: skipped when it was never tried (stopped,
    budget, daily quota; the next run does it), else failed (with what its answer cost)."""
    config = runtime.config if runtime is not None else first
    cost = 0.0
    if runtime is not None:
        cost = error_charge(config, request, error).cost_usd
        runtime.stats.cost_usd += cost
    who = {"provider": config.name, "model": config.model_for(job.model), "cost_usd": cost,
           "fingerprint": fp, "tries": tries}
    if error.error_class in SKIPPED_REASONS:
        reason = (error.message if error.error_class in OWN_REASONS
                  else SKIPPED_REASONS[error.error_class])
        return RowResult.skipped(job, reason, error_class=error.error_class.value, **who)
    return RowResult.failed(job, error.error_class.value, str(error), **who)


async def process_rows(jobs: list[Job], ctx: RunContext) -> list[RowResult]:
    """Process a chunk of rows concurrently (the gate bounds real concurrency)."""
    return list(await asyncio.gather(*(process_row(job, ctx) for job in jobs)))
