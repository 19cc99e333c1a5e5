"""One row's path through generation and upload: the plain code the Prefect tasks wrap.

``process_row`` never raises for a row's own problems: every outcome, good or bad, comes
back as a RowResult, so one bad row never sinks the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from tasks.fingerprint import fingerprint, sha256_hex
from tasks.images import EXTENSION_BY_MIME, inspect_image
from tasks.limits import ProviderGate
from tasks.models import GeneratedImage, ImageRequest, ReferenceImage, RowStatus
from tasks.providers import create_provider
from tasks.providers.base import ImageProvider
from tasks.providers.config import ProviderConfig
from tasks.providers.errors import ErrorClass, ProviderError
from tasks.results import RowResult
from tasks.retry import RetryPolicy
from tasks.spool import Spool
from tasks.storage import S3Location, S3Settings, describe_s3_error
from tasks.validate import load_reference_bytes

UPLOAD_ATTEMPTS = 5
# Images delivered intact are billed even when they are unusable (wrong shape).
BILLED_FAILURES = frozenset({ErrorClass.WRONG_SHAPE})


def image_key(location: S3Location, sku: str, mime_type: str) -> str:
    """Deterministic object key of a row's image."""
    return location.key("images", f"{sku}.{EXTENSION_BY_MIME.get(mime_type, 'bin')}")


@dataclass
class RunContext:
    """Everything a row needs that lives for the whole run in this process."""

    run_id: str
    location: S3Location
    provider_config: ProviderConfig
    provider: ImageProvider
    gate: ProviderGate
    s3_client: object
    spool: Spool
    s3_settings: S3Settings
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)
    on_result: Callable[[RowResult], None] | None = None
    _references: OrderedDict = field(default_factory=OrderedDict)

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
    """Create the run's provider client, S3 client and gate; close them at the end."""

    def __init__(
        self, run_id: str, location: S3Location, provider_config: ProviderConfig,
        concurrency: int, s3_settings: S3Settings, spool: Spool,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._args = (run_id, location, provider_config, concurrency, s3_settings, spool, policy)
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> RunContext:
        run_id, location, config, concurrency, s3_settings, spool, policy = self._args
        concurrency = min(concurrency, config.max_concurrency)
        provider = create_provider(config, concurrency)
        self._stack.push_async_callback(provider.aclose)
        s3_client = await self._stack.enter_async_context(
            s3_settings.aio_client_context(max_pool_connections=concurrency)
        )
        ctx = RunContext(
            run_id=run_id, location=location, provider_config=config, provider=provider,
            gate=ProviderGate(concurrency, rpm=config.rpm), s3_client=s3_client, spool=spool,
            s3_settings=s3_settings, policy=policy or RetryPolicy(),
        )
        _CONTEXTS[run_id] = ctx
        return ctx

    async def __aexit__(self, *exc_info) -> None:
        _CONTEXTS.pop(self._args[0], None)
        await self._stack.aclose()


async def _generate_with_retries(
    ctx: RunContext, request: ImageRequest, result: RowResult
) -> GeneratedImage | ProviderError:
    """Call the provider until an image, a final error, or the attempts run out."""
    last_error: ProviderError | None = None
    for attempt in range(1, ctx.policy.max_attempts + 1):
        result.attempts = attempt
        async with ctx.gate.slot():
            started = time.monotonic()
            try:
                image = await ctx.provider.generate(request)
                result.latency_s = round(time.monotonic() - started, 4)
                return image
            except ProviderError as exc:
                last_error = exc
        if not last_error.retryable:
            return last_error
        result.retries[last_error.error_class.value] = (
            result.retries.get(last_error.error_class.value, 0) + 1
        )
        if attempt == ctx.policy.max_attempts:
            break
        if last_error.error_class is ErrorClass.RATE_LIMITED and last_error.retry_after_s:
            ctx.gate.pause(last_error.retry_after_s)
        await asyncio.sleep(ctx.policy.delay(attempt, last_error.retry_after_s, ctx.rng))
    assert last_error is not None
    return last_error


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


async def process_row(job: dict, ctx: RunContext) -> RowResult:
    """Generate, spool and upload one accepted row; always returns its result."""
    config = ctx.provider_config
    result = RowResult(
        sku=job["sku"], row=job["row"], status=RowStatus.FAILED, provider=config.name,
        model=config.model, resolution=job["resolution"], aspect_ratio=job["aspect_ratio"],
        prompt_sha256=sha256_hex(job["prompt"]),
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
    fp = fingerprint(
        request.prompt, request.resolution, request.aspect_ratio, config.model,
        sha256_hex(refs[0].data) if refs else None,
    )
    spooled = ctx.spool.find(job["sku"], fp)
    if spooled is not None:
        data, mime = spooled.data, spooled.meta["mime_type"]
        result.width, result.height = spooled.meta["width"], spooled.meta["height"]
        result.reason = f"uploaded from spool (paid in run {spooled.meta.get('run_id')})"
    else:
        outcome = await _generate_with_retries(ctx, request, result)
        if isinstance(outcome, ProviderError):
            result.error_class = outcome.error_class.value
            result.reason = str(outcome)
            if outcome.error_class in BILLED_FAILURES:
                result.cost_usd = config.prices.for_resolution(job["resolution"])
            return _finish(ctx, result)
        data, mime = outcome.data, outcome.mime_type
        result.width, result.height = outcome.width, outcome.height
        result.cost_usd = config.prices.for_resolution(job["resolution"])
        meta = {"mime_type": mime, "width": outcome.width, "height": outcome.height,
                "run_id": ctx.run_id, "provider": config.name, "model": config.model}
        await asyncio.to_thread(ctx.spool.write, job["sku"], fp, data, meta)
    key = image_key(ctx.location, job["sku"], mime)
    metadata = {
        "sku": job["sku"], "prompt-sha256": result.prompt_sha256, "fingerprint": fp,
        "provider": config.name, "model": config.model, "run-id": ctx.run_id,
    }
    try:
        await _upload(ctx, key, data, mime, metadata)
    except (ClientError, BotoCoreError, OSError) as exc:
        result.error_class = "upload"
        result.reason = f"upload failed, image kept in the spool: {describe_s3_error(exc)}"
        return _finish(ctx, result)
    ctx.spool.remove(job["sku"], fp)
    result.status = RowStatus.SUCCEEDED
    result.s3_key = key
    result.bytes = len(data)
    return _finish(ctx, result)


def _finish(ctx: RunContext, result: RowResult) -> RowResult:
    if ctx.on_result is not None:
        ctx.on_result(result)
    return result


async def process_rows(jobs: list[dict], ctx: RunContext) -> list[RowResult]:
    """Process a chunk of rows concurrently (the gate bounds real concurrency)."""
    return list(await asyncio.gather(*(process_row(job, ctx) for job in jobs)))
