"""Batch Mode in a run: rows submitted as Gemini batch jobs, at the batch price.

A created job is recorded under ``state/batches/`` at the destination before it is waited
for, so a crash, a deadline or an expiry never loses rows nor pays for them twice: the next
run collects a recorded job's results before it generates anything. A job that fails or
expires sends its rows back to the queue (they end ``skipped`` and the next run does them).
"""

from __future__ import annotations

import asyncio
import json

from botocore.exceptions import BotoCoreError, ClientError

from tasks.generate import (
    RunContext,
    _already_uploaded,
    _finish,
    _upload,
    image_key,
    keep_thumbnail,
)
from tasks.models import ImageRequest, ReferenceImage, RowStatus
from tasks.providers.config import ProviderConfig
from tasks.providers.errors import ProviderError
from tasks.providers.gemini import parse_response
from tasks.providers.gemini_batch import GeminiBatchClient, batch_state
from tasks.results import RowResult
from tasks.storage import describe_s3_error

SUCCEEDED = {"JOB_STATE_SUCCEEDED", "BATCH_STATE_SUCCEEDED"}


def batch_price(config: ProviderConfig, resolution: str) -> float:
    """Price of one image in Batch Mode (half the standard price when none is configured)."""
    if config.batch_prices is not None:
        return config.batch_prices.for_resolution(resolution)
    return config.prices.for_resolution(resolution) / 2


def _record_key(ctx: RunContext, name: str) -> str:
    return ctx.location.key("state", "batches", name.replace("/", "_") + ".json")


async def _record(ctx: RunContext, name: str, jobs: list[dict]) -> None:
    body = json.dumps({"name": name, "run_id": ctx.run_id, "jobs": jobs}).encode()
    await ctx.s3_client.put_object(Bucket=ctx.location.bucket, Key=_record_key(ctx, name),
                                   Body=body, ContentType="application/json")


async def _forget(ctx: RunContext, name: str) -> None:
    await ctx.s3_client.delete_object(Bucket=ctx.location.bucket, Key=_record_key(ctx, name))


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
        image = parse_response(item["response"], await _request(ctx, job))
    except ProviderError as exc:
        result.error_class, result.reason = exc.error_class.value, f"batch {name}: {exc}"
        if exc.billed:
            result.cost_usd = batch_price(config, job["resolution"])
        return _finish(ctx, result)
    result.cost_usd = batch_price(config, job["resolution"])
    meta = {"mime_type": image.mime_type, "width": image.width, "height": image.height,
            "run_id": ctx.run_id, "provider": config.name, "model": config.model}
    await asyncio.to_thread(ctx.spool.write, job["sku"], job["fingerprint"], image.data, meta)
    key = image_key(ctx.location, job["sku"], image.mime_type)
    metadata = {"sku": job["sku"], "fingerprint": job["fingerprint"], "provider": config.name,
                "model": config.model, "run-id": ctx.run_id, "mode": "batch"}
    try:
        await _upload(ctx, key, image.data, image.mime_type, metadata)
    except (ClientError, BotoCoreError, OSError) as exc:
        result.error_class = "upload"
        result.reason = f"upload failed, image kept in the spool: {describe_s3_error(exc)}"
        return _finish(ctx, result)
    ctx.spool.remove(job["sku"], job["fingerprint"])
    result.status, result.s3_key, result.bytes = RowStatus.SUCCEEDED, key, len(image.data)
    result.width, result.height, result.reason = image.width, image.height, note or None
    await keep_thumbnail(ctx, job["sku"], image.data)
    return _finish(ctx, result)


async def _settle(ctx: RunContext, client: GeminiBatchClient, config: ProviderConfig,
                  name: str, jobs: list[dict], deadline_s: float, poll_s: float,
                  note: str = "") -> None:
    """Wait for a recorded job and give each of its rows an outcome."""
    resource = await client.wait(name, deadline_s, first_poll_s=poll_s)
    state = batch_state(resource)
    if state in SUCCEEDED:
        answers = await client.results(resource)
        for job in jobs:
            await _deliver(ctx, config, job, answers.get(job["sku"]), name, note)
        await _forget(ctx, name)
        return
    still_running = state not in {"JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
                                  "JOB_STATE_EXPIRED", "BATCH_STATE_FAILED",
                                  "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
    reason = (f"batch {name} still running: the next run collects it" if still_running
              else f"batch {name} ended {state}: queued for the next run")
    for job in jobs:
        _finish(ctx, RowResult(sku=job["sku"], row=job["row"], status=RowStatus.SKIPPED,
                               reason=reason, provider=config.name, model=config.model,
                               resolution=job["resolution"], aspect_ratio=job["aspect_ratio"],
                               fingerprint=job["fingerprint"]))
    if not still_running:
        await _forget(ctx, name)


async def collect_recorded(ctx: RunContext, config: ProviderConfig, deadline_s: float,
                           poll_s: float) -> set[str]:
    """Collect jobs recorded by earlier runs; returns the skus they settled."""
    prefix = ctx.location.key("state", "batches") + "/"
    listing = await ctx.s3_client.list_objects_v2(Bucket=ctx.location.bucket, Prefix=prefix)
    keys = [item["Key"] for item in listing.get("Contents", [])]
    if not keys:
        return set()
    client = GeminiBatchClient(config, config.resolve_api_key())
    settled: set[str] = set()
    try:
        for key in keys:
            obj = await ctx.s3_client.get_object(Bucket=ctx.location.bucket, Key=key)
            record = json.loads(await obj["Body"].read())
            await _settle(ctx, client, config, record["name"], record["jobs"], deadline_s,
                          poll_s, note=f"collected from batch {record['name']} of run "
                                       f"{record['run_id']}")
            settled |= {job["sku"] for job in record["jobs"]}
    finally:
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
            requests = [(job["sku"], await _request(ctx, job)) for job in jobs]
            try:
                name = await client.create(requests, f"{ctx.run_id}-{len(waits) + 1}")
            except ProviderError as exc:
                for job in jobs:
                    _finish(ctx, RowResult(
                        sku=job["sku"], row=job["row"], status=RowStatus.SKIPPED,
                        reason=f"batch could not be created ({exc}): queued for the next run",
                        fingerprint=job["fingerprint"], provider=config.name))
                return
            await _record(ctx, name, jobs)
            waits.append(asyncio.ensure_future(
                _settle(ctx, client, config, name, jobs, deadline_s, poll_s)))

        for chunk in chunks:
            for job in chunk:
                if job["sku"] in settled:
                    continue  # its outcome is reported from the collected batch
                existing = await _already_uploaded(ctx, job["sku"], job["fingerprint"])
                if existing:
                    _finish(ctx, RowResult(sku=job["sku"], row=job["row"],
                                           status=RowStatus.SKIPPED, reason="unchanged",
                                           s3_key=existing, fingerprint=job["fingerprint"]))
                    continue
                pending.append(job)
                if len(pending) >= batch_rows:
                    await submit(pending)
                    pending = []
        if pending:
            await submit(pending)
        await asyncio.gather(*waits)
    finally:
        await client.aclose()
