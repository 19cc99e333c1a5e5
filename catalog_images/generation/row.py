"""One row's path through generation and upload: the plain code the Prefect tasks wrap.

``process_row`` never raises for a row's own problems: every outcome, good or bad, comes
back as a RowResult, so one bad row never sinks the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.catalog.fingerprint import fingerprint, sha256_hex
from catalog_images.catalog.validate import load_reference_bytes
from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.spool import Spool
from catalog_images.destination.storage import S3Location, S3Settings, describe_s3_error
from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.budget import Budget
from catalog_images.generation.limits import ProviderGate, SlotDeclined
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import ProviderRuntime, Router
from catalog_images.generation.stop import StopRequest
from catalog_images.images import inspect_image
from catalog_images.models import GeneratedImage, ImageRequest, ReferenceImage, RowStatus
from catalog_images.providers import create_provider
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import PROVIDER_FAULTS, ErrorClass, ProviderError
from catalog_images.report.contact_sheet import SheetItem, small_thumbnail
from catalog_images.report.results import RowResult

UPLOAD_ATTEMPTS = 5
THUMBNAILS_KEPT = 120
SKIPPED_REASONS = {ErrorClass.DAILY_QUOTA: "daily quota", ErrorClass.BUDGET: "budget",
                   ErrorClass.STOPPED: "stopped"}  # rows not tried, left for the next run
MAX_RATE_LIMITED_RETRIES = 50  # 429s are the provider pacing us, not the row failing


def image_key(location: S3Location, sku: str, mime_type: str) -> str:
    """Deterministic object key of a row's image."""
    return DestinationLayout(location).image_key(sku, mime_type)


@dataclass
class RunContext:
    """Everything a row needs that lives for the whole run in this process."""

    run_id: str
    location: S3Location
    router: Router
    s3_client: object
    spool: Spool
    s3_settings: S3Settings
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: Budget = field(default_factory=lambda: Budget(None))
    force: bool = False  # regenerate even when the bucket holds an image of this fingerprint
    force_skus: frozenset[str] = frozenset()
    thumbnails: list[SheetItem] = field(default_factory=list)  # for the contact sheet
    rng: random.Random = field(default_factory=random.Random)
    on_result: Callable[[RowResult], None] | None = None
    # Spool writes (fsync) while a provider slot is held: their own threads, so they never
    # queue behind thumbnails or reference reads in the default pool.
    spool_pool: ThreadPoolExecutor | None = None
    stop: StopRequest = field(default_factory=StopRequest)  # SIGINT/SIGTERM: no new request
    _references: OrderedDict = field(default_factory=OrderedDict)

    @property
    def waiting(self) -> int:
        """Rows queued for a provider slot, over all providers."""
        return sum(r.gate.waiting for r in self.router.runtimes.values())

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered, over all providers."""
        return sum(r.gate.in_flight for r in self.router.runtimes.values())

    @property
    def capacity(self) -> int:
        """Requests that may be in flight at once, over all providers."""
        return sum(r.gate.max_concurrency for r in self.router.runtimes.values())

    async def reference(self, uri: str) -> ReferenceImage:
        """Load (and keep the last few) reference images."""
        if uri in self._references:
            self._references.move_to_end(uri)
            return self._references[uri]
        data = await asyncio.to_thread(load_reference_bytes, uri, self.s3_settings)
        ref = ReferenceImage(inspect_image(data).mime_type, data)
        self._references[uri] = ref
        if len(self._references) > 32:
            self._references.popitem(last=False)
        return ref


_CONTEXTS: dict[str, RunContext] = {}


def get_context(run_id: str) -> RunContext:
    """The live context of a run in this process."""
    try:
        return _CONTEXTS[run_id]
    except KeyError:
        raise RuntimeError(f"run {run_id} has no live context in this process") from None


class open_run_context:  # noqa: N801 - used as ``async with open_run_context(...)``
    """Create the run's provider clients, gates, breakers and S3 client; close them after."""

    def __init__(
        self, run_id: str, location: S3Location, providers: list[ProviderConfig],
        routes: dict[str, list[str]], concurrency: int, s3_settings: S3Settings, spool: Spool,
        policy: RetryPolicy | None = None, breaker_cooldown_s: float = 10.0,
        global_limits: bool = False, max_cost_usd: float | None = None, force: bool = False,
        force_skus: frozenset[str] = frozenset(),
    ) -> None:
        self.max_cost_usd, self.force, self.force_skus = max_cost_usd, force, force_skus
        self.run_id, self.location, self.providers, self.routes = (
            run_id, location, providers, routes)
        self.concurrency, self.s3_settings, self.spool, self.policy = (
            concurrency, s3_settings, spool, policy)
        self.breaker_cooldown_s = breaker_cooldown_s
        self.global_limits = global_limits
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> RunContext:
        runtimes: dict[str, ProviderRuntime] = {}
        for config in self.providers:
            concurrency = min(self.concurrency, config.max_concurrency)
            client = create_provider(config, concurrency)
            self._stack.push_async_callback(client.aclose)
            gate = ProviderGate(
                concurrency, rpm=config.requests_per_window, window_s=config.window_s,
                rpd=config.requests_per_day,
                global_limit=f"catalog-images-{config.name}" if self.global_limits else None,
            )
            runtimes[config.name] = ProviderRuntime(
                config, client, gate, CircuitBreaker(cooldown_s=self.breaker_cooldown_s))
        s3_pool = max(r.gate.max_concurrency for r in runtimes.values())
        s3_client = await self._stack.enter_async_context(
            self.s3_settings.aio_client_context(max_pool_connections=s3_pool)
        )
        ctx = RunContext(
            run_id=self.run_id, location=self.location, router=Router(runtimes, self.routes),
            s3_client=s3_client, spool=self.spool, s3_settings=self.s3_settings,
            policy=self.policy or RetryPolicy(), budget=Budget(self.max_cost_usd),
            force=self.force, force_skus=self.force_skus,
        )
        ctx.spool_pool = ThreadPoolExecutor(min(64, s3_pool), thread_name_prefix="spool")
        self._stack.callback(ctx.spool_pool.shutdown)
        _CONTEXTS[self.run_id] = ctx
        return ctx

    async def __aexit__(self, *exc_info) -> None:
        _CONTEXTS.pop(self.run_id, None)
        await self._stack.aclose()


def _note_failover(route: list[ProviderRuntime], previous: ProviderRuntime | None,
                   chosen: ProviderRuntime) -> None:
    origin = previous or route[0]
    if chosen is not origin:
        origin.stats.failovers_out += 1
        chosen.stats.failovers_in += 1


def _still_wanted(ctx: RunContext, route: list[ProviderRuntime], runtime: ProviderRuntime,
                  probe: bool) -> bool:
    """Asked when the row's turn comes at ``runtime``: is it still the right provider?

    No when the run is stopping, when the provider turned unhealthy while the row queued,
    or when a provider earlier in the route is healthy again (or due a probe): traffic goes
    back to where it belongs.
    """
    if ctx.stop.requested:
        return False
    if not probe and not runtime.breaker.closed:
        return False
    better = route[: route.index(runtime)]
    return not any(b.available() and b.breaker.would_allow() for b in better)


async def _generate_with_retries(
    ctx: RunContext, route: list[ProviderRuntime], request: ImageRequest, result: RowResult,
    keep: Callable[[ProviderRuntime, GeneratedImage], Awaitable[None]],
) -> tuple[ProviderRuntime | None, GeneratedImage | ProviderError]:
    """Send the row to its route's providers until an image, a final error, or no budget.

    ``keep`` makes a delivered image durable (the spool) while its provider slot is still
    held, so images paid for but not yet on disk never outnumber the requests in flight:
    a crash can lose at most that many, however slow the disk or busy the CPU.
    """
    attempts = rate_limited = 0
    waited = 0.0
    previous: ProviderRuntime | None = None
    while True:
        if ctx.stop.requested:
            return previous, ProviderError(ErrorClass.STOPPED, "stopped")
        runtime = ctx.router.choose(route)
        if runtime is None:
            if Router.exhausted(route):
                return previous, ProviderError(
                    ErrorClass.DAILY_QUOTA, "daily quota reached on every provider of the route")
            if waited >= ctx.policy.max_provider_wait_s:
                return previous, ProviderError(
                    ErrorClass.CIRCUIT_OPEN, "every provider of the route stayed unavailable")
            pause = Router.wait_hint(route)
            await ctx.stop.pause(pause)
            waited += pause
            continue
        probe = not runtime.breaker.closed  # allow() handed this row the half-open probe
        _note_failover(route, previous, runtime)
        previous = runtime
        stats = runtime.stats
        price = runtime.config.prices.for_resolution(request.resolution)
        if not ctx.budget.reserve(price):
            return runtime, ProviderError(ErrorClass.BUDGET, "budget")
        billed = False
        try:
            async with runtime.gate.slot(partial(_still_wanted, ctx, route, runtime, probe)):
                started = time.monotonic()
                stats.sent(time.time())
                result.attempts += 1
                image = await runtime.client.generate(request)
                billed = True
                await keep(runtime, image)
        except SlotDeclined:
            if probe:
                runtime.breaker.release_probe()  # unsent: another row may probe
            continue  # the provider turned unhealthy while this row queued: route again
        except ProviderError as exc:
            error = exc
            billed = exc.billed
        else:
            result.latency_s = round(time.monotonic() - started, 4)
            stats.latencies.append(result.latency_s)
            stats.images += 1
            runtime.breaker.record(True)
            runtime.gate.on_success()
            return runtime, image
        finally:
            ctx.budget.settle(price, billed)
        if error.error_class is ErrorClass.DAILY_QUOTA:
            continue  # refused before sending: the router moves on
        if error.error_class is ErrorClass.RATE_LIMITED:
            stats.rate_limited += 1
            rate_limited += 1
        else:
            attempts += 1
            runtime.breaker.record(error.error_class not in PROVIDER_FAULTS)
        if error.error_class in (ErrorClass.RATE_LIMITED, ErrorClass.UNAVAILABLE):
            runtime.gate.on_overload(error.retry_after_s)
        if not error.retryable or attempts >= ctx.policy.max_attempts or (
            rate_limited >= MAX_RATE_LIMITED_RETRIES
        ):
            return runtime, error
        stats.retries += 1
        key = error.error_class.value
        result.retries[key] = result.retries.get(key, 0) + 1
        await ctx.stop.pause(ctx.policy.delay(max(1, attempts), error.retry_after_s, ctx.rng))


async def _upload(ctx: RunContext, key: str, image_data: bytes, mime: str, meta: dict) -> None:
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            await ctx.s3_client.put_object(
                Bucket=ctx.location.bucket, Key=key, Body=image_data, ContentType=mime,
                Metadata=meta,
            )
            return
        except (ClientError, BotoCoreError, OSError):
            if attempt == UPLOAD_ATTEMPTS:
                raise
            await asyncio.sleep(ctx.policy.delay(attempt, None, ctx.rng))


async def _already_uploaded(ctx: RunContext, sku: str, fp: str) -> str | None:
    """The key of an image of this fingerprint already in the bucket, if there is one.

    This is the pipeline's own idempotency check (rather than a Prefect cache policy): it
    holds across flow retries, re-runs, crashes and overlapping runs, because the truth is
    the object's ``fingerprint`` metadata, written with the image. The image may be of any
    type (``.png``, ``.jpg``, ``.webp``): one List finds the keys of this sku (a new row costs
    that one request), then a HEAD reads the metadata of each.
    """
    try:
        for key in await DestinationLayout(ctx.location).existing_images(ctx.s3_client, sku):
            head = await ctx.s3_client.head_object(Bucket=ctx.location.bucket, Key=key)
            if head.get("Metadata", {}).get("fingerprint") == fp:
                return key
    except (ClientError, BotoCoreError, OSError):
        return None
    return None


async def process_row(job: dict, ctx: RunContext) -> RowResult:
    """Generate, spool and upload one accepted row; always returns its result."""
    route = ctx.router.route_for(job.get("priority"))
    first = route[0].config
    result = RowResult(
        sku=job["sku"], row=job["row"], status=RowStatus.FAILED, provider=first.name,
        model=first.model, resolution=job["resolution"], aspect_ratio=job["aspect_ratio"],
        prompt_sha256=sha256_hex(job["prompt"]), fingerprint=job.get("fingerprint"),
    )
    try:
        refs: tuple[ReferenceImage, ...] = ()
        if job.get("reference_image"):
            refs = (await ctx.reference(job["reference_image"]),)
    except Exception as exc:  # the file changed since planning
        result.reason = f"unreadable reference image: {exc}"
        result.error_class = "reference"
        return _finish(ctx, result)
    request = ImageRequest(job["prompt"], job["resolution"], job["aspect_ratio"], refs)
    fp = result.fingerprint or fingerprint(
        request.prompt, request.resolution, request.aspect_ratio, first.family,
        sha256_hex(refs[0].data) if refs else None,
    )
    result.fingerprint = fp
    forced = ctx.force or job["sku"] in ctx.force_skus
    spooled = ctx.spool.find(job["sku"], fp)
    if spooled is None and not forced:
        existing = await _already_uploaded(ctx, job["sku"], fp)
        if existing:
            result.status, result.reason, result.s3_key = RowStatus.SKIPPED, "unchanged", existing
            result.provider = result.model = None
            return _finish(ctx, result)
    spool_errors: list[str] = []  # a full disk: the image goes straight to S3
    if spooled is not None:
        data, mime = spooled.data, spooled.meta["mime_type"]
        result.width, result.height = spooled.meta["width"], spooled.meta["height"]
        result.provider, result.model = spooled.meta["provider"], spooled.meta["model"]
        result.reason = f"uploaded from spool (paid in run {spooled.meta.get('run_id')})"
    else:
        async def keep(runtime: ProviderRuntime, image: GeneratedImage) -> None:
            problem = await spool_image(ctx, job["sku"], fp, image, runtime.config)
            if problem:
                spool_errors.append(problem)

        runtime, outcome = await _generate_with_retries(ctx, route, request, result, keep)
        if runtime is not None:
            result.provider, result.model = runtime.name, runtime.config.model
        if isinstance(outcome, ProviderError):
            result.error_class = outcome.error_class.value
            result.reason = str(outcome)
            if outcome.error_class in SKIPPED_REASONS:
                result.status = RowStatus.SKIPPED
                result.reason = SKIPPED_REASONS[outcome.error_class]
            if outcome.billed and runtime is not None:
                result.cost_usd = runtime.config.prices.for_resolution(job["resolution"])
                runtime.stats.cost_usd += result.cost_usd
            return _finish(ctx, result)
        data, mime = outcome.data, outcome.mime_type
        result.width, result.height = outcome.width, outcome.height
        result.cost_usd = runtime.config.prices.for_resolution(job["resolution"])
        runtime.stats.cost_usd += result.cost_usd
    key = image_key(ctx.location, job["sku"], mime)
    metadata = {
        "sku": job["sku"], "prompt-sha256": result.prompt_sha256, "fingerprint": fp,
        "provider": result.provider, "model": result.model, "run-id": ctx.run_id,
    }
    try:
        await _upload(ctx, key, data, mime, metadata)
    except (ClientError, BotoCoreError, OSError) as exc:
        result.error_class = "upload"
        result.reason = upload_failure_reason(exc, spool_errors)
        return _finish(ctx, result)
    ctx.spool.remove(job["sku"], fp)
    if spool_errors:
        result.reason = f"uploaded without a spool copy ({spool_errors[0]})"
    result.status = RowStatus.SUCCEEDED
    result.s3_key = key
    result.bytes = len(data)
    await keep_thumbnail(ctx, job["sku"], data, key)
    return _finish(ctx, result)


async def spool_image(ctx: RunContext, sku: str, fp: str, image: GeneratedImage,
                      config: ProviderConfig) -> str | None:
    """Write a paid image durably to the spool (its own threads); None, or what went wrong.

    A failure (a full disk) is returned, not raised: the paid image is then uploaded from
    memory rather than lost.
    """
    meta = {"mime_type": image.mime_type, "width": image.width, "height": image.height,
            "run_id": ctx.run_id, "provider": config.name, "model": config.model}
    try:
        await asyncio.get_running_loop().run_in_executor(
            ctx.spool_pool, partial(ctx.spool.write, sku, fp, image.data, meta))
    except OSError as exc:
        return f"spool write failed: {exc.strerror or type(exc).__name__}"
    return None


def upload_failure_reason(exc: BaseException, spool_errors: list[str]) -> str:
    """The reason of a row whose upload failed: is the paid image still in the spool?"""
    if spool_errors:
        return (f"upload failed and the image was paid but lost ({spool_errors[0]}): "
                f"{describe_s3_error(exc)}")
    return f"upload failed, image kept in the spool: {describe_s3_error(exc)}"


async def keep_thumbnail(ctx: RunContext, sku: str, data: bytes, key: str) -> None:
    """Keep a small thumbnail (and the image's key) of the first images of the run for its
    contact sheet."""
    if len(ctx.thumbnails) < THUMBNAILS_KEPT:
        ctx.thumbnails.append(SheetItem(sku, b"", key))  # hold the place before the await
        thumb = await asyncio.to_thread(small_thumbnail, data)
        index = next(i for i, item in enumerate(ctx.thumbnails) if item.sku == sku)
        ctx.thumbnails[index] = SheetItem(sku, thumb or b"", key)


def _finish(ctx: RunContext, result: RowResult) -> RowResult:
    if ctx.on_result is not None:
        ctx.on_result(result)
    return result


async def process_rows(jobs: list[dict], ctx: RunContext) -> list[RowResult]:
    """Process a chunk of rows concurrently (the gate bounds real concurrency)."""
    return list(await asyncio.gather(*(process_row(job, ctx) for job in jobs)))
