"""Delivering a paid image, the same way in standard and batch mode: a durable copy in the
spool first (while the provider slot is still held, in standard mode), then the upload with
its object metadata, then the spool copy's removal, a thumbnail, and the row's result.

A paid image is never dropped silently: when the spool write fails (a full disk) it is
uploaded from memory, and a failed upload leaves it in the spool for the next run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.object_meta import encode_value
from catalog_images.destination.spool import SpooledImage
from catalog_images.destination.storage import describe_s3_error
from catalog_images.generation.resources import RunContext
from catalog_images.models import GeneratedImage, Job
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.model_catalog import Charge
from catalog_images.report.contact_sheet import SheetItem, small_thumbnail
from catalog_images.report.results import RowResult, Tries

UPLOAD_ATTEMPTS = 5
THUMBNAILS_KEPT = 120
# Decoding a 4K PNG for its thumbnail costs about 0.2 s of CPU and 50 MB (a 20 MB image
# needs more than its base64 decode and upload together): the contact sheet decodes at most
# as many pixels as 120 2K images, so 1K and 2K runs keep 120 thumbnails and 4K runs 32.
THUMBNAIL_PIXELS = THUMBNAILS_KEPT * 4_500_000  # a 2K image: 4.2 to 4.3 megapixels
INLINE_SPOOL_BYTES = 2 * 1024 * 1024  # spool writes up to this size block the loop briefly


@dataclass(frozen=True, slots=True)
class PaidImage:
    """An image paid for and not yet at the destination, and where it came from."""

    job: Job
    fingerprint: str
    image: GeneratedImage
    provider: str
    model: str
    cost_usd: float = 0.0  # what this run paid for it (0 when a spool copy of an earlier run)
    list_cost_usd: float = 0.0  # its list price (the per-image price, whatever the bill)
    spool_error: str | None = None  # why it has no spool copy: memory holds the only one
    note: str | None = None  # the reason a succeeded row reports, if any

    @classmethod
    def from_spool(cls, job: Job, fingerprint: str, spooled: SpooledImage) -> PaidImage:
        """An image an earlier attempt paid for and left in the spool."""
        meta = spooled.meta
        image = GeneratedImage(spooled.data, meta["mime_type"], meta["width"], meta["height"])
        return cls(job, fingerprint, image, meta["provider"], meta["model"],
                   note=f"uploaded from spool (paid in run {meta.get('run_id')})")


async def spool_image(ctx: RunContext, sku: str, fp: str, image: GeneratedImage,
                      config: ProviderConfig, model: str | None = None) -> str | None:
    """Write a paid image to the spool; None, or what went wrong.

    An image up to INLINE_SPOOL_BYTES is written from the event loop (a page-cache copy of
    about a millisecond at most, cheaper than a thread's hand-over); a larger one in the
    spool's own threads. A failure (a full disk) is returned, not raised: the paid image is
    then uploaded from memory rather than lost.
    """
    meta = {"mime_type": image.mime_type, "width": image.width, "height": image.height,
            "run_id": ctx.run_id, "provider": config.name, "model": model or config.model}
    write = partial(ctx.spool.write, sku, fp, image.data, meta)
    try:
        if len(image.data) <= INLINE_SPOOL_BYTES:
            write()
        else:
            await asyncio.get_running_loop().run_in_executor(ctx.spool_pool, write)
    except OSError as exc:
        return f"spool write failed: {exc.strerror or type(exc).__name__}"
    return None


async def keep(ctx: RunContext, job: Job, fp: str, image: GeneratedImage,
               config: ProviderConfig, cost: float | Charge, note: str | None = None) -> PaidImage:
    """Spool an image just paid for (``cost``: its bill, or a flat price); call it while the
    provider slot is held, so images paid for but not yet on disk never outnumber the
    requests in flight. ``note``: the reason its row reports once the image is delivered."""
    charge = cost if isinstance(cost, Charge) else Charge(cost, cost)
    problem = await spool_image(ctx, job.sku, fp, image, config, config.model_for(job.model))
    return PaidImage(job, fp, image, config.name, config.model_for(job.model), charge.cost_usd,
                     charge.list_usd, spool_error=problem, note=note)


async def upload(ctx: RunContext, key: str, image_data: bytes, mime: str, meta: dict) -> None:
    """PUT an image with its metadata, retrying S3 errors; raises the last one."""
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            await ctx.s3_client.put_object(
                Bucket=ctx.location.bucket, Key=key, Body=image_data, ContentType=mime,
                Metadata=meta,
            )
            ctx.last_upload = time.time()
            return
        except (ClientError, BotoCoreError, OSError):
            if attempt == UPLOAD_ATTEMPTS:
                raise
            await asyncio.sleep(ctx.policy.delay(attempt, None, ctx.rng))


def object_metadata(ctx: RunContext, paid: PaidImage,
                    wrong_shape: str | None = None) -> dict[str, str]:
    """The metadata written with an image; ``fingerprint`` is what later runs compare. The
    sku is ASCII-encoded when it is not ASCII (destination/object_meta.py)."""
    meta = {"sku": encode_value(paid.job.sku), "prompt-sha256": sha256_hex(paid.job.prompt),
            "fingerprint": paid.fingerprint, "provider": paid.provider, "model": paid.model,
            "run-id": ctx.run_id}
    if wrong_shape:
        meta["wrong-shape"] = wrong_shape
    return meta


def upload_failure_reason(exc: BaseException, spool_error: str | None) -> str:
    """The reason of a row whose upload failed: is the paid image still in the spool?"""
    if spool_error:
        return (f"upload failed and the image was paid but lost ({spool_error}): "
                f"{describe_s3_error(exc)}")
    return f"upload failed, image kept in the spool: {describe_s3_error(exc)}"


async def keep_thumbnail(ctx: RunContext, sku: str, image: GeneratedImage, key: str) -> None:
    """Keep a small thumbnail (and the image's key) of the first images of the run for its
    contact sheet, within THUMBNAIL_PIXELS decoded; one decoded at a time (50 MB for 4K)."""
    pixels = image.width * image.height
    if len(ctx.thumbnails) < THUMBNAILS_KEPT and (
            ctx.thumbnail_pixels + pixels <= THUMBNAIL_PIXELS):
        ctx.thumbnail_pixels += pixels
        ctx.thumbnails.append(SheetItem(sku, b"", key))  # hold the place before the await
        async with ctx.thumbnail_slot:
            thumb = await asyncio.to_thread(small_thumbnail, image.data)
        index = next(i for i, item in enumerate(ctx.thumbnails) if item.sku == sku)
        ctx.thumbnails[index] = SheetItem(sku, thumb or b"", key)


async def deliver(ctx: RunContext, paid: PaidImage, key: str, tries: Tries | None = None,
                  lost_note: str | None = None, wrong_shape: str | None = None) -> RowResult:
    """Upload a paid image to ``key``, drop its spool copy, keep a thumbnail; its result.

    ``lost_note`` says where the image can still be had when it is neither spooled nor
    uploaded (a batch job's results stay at the provider): the row then fails as
    ``upload_unspooled`` with that note, so the caller keeps what leads back to it.
    ``wrong_shape``: why the image is not the asked shape; with a quarantine ``key`` the
    row ends quarantined, else it succeeds with that note (generation/shape.py decides).
    """
    image = paid.image
    try:
        await upload(ctx, key, image.data, image.mime_type,
                     object_metadata(ctx, paid, wrong_shape))
    except (ClientError, BotoCoreError, OSError) as exc:
        if not paid.spool_error:  # the spool copy stays for the next run: to the disk now
            await asyncio.to_thread(ctx.spool.make_durable, paid.job.sku, paid.fingerprint)
        reason, error_class = upload_failure_reason(exc, paid.spool_error), "upload"
        if paid.spool_error and lost_note:
            reason, error_class = f"{reason}; {lost_note}", "upload_unspooled"
        return RowResult.failed(
            paid.job, error_class, reason, provider=paid.provider, model=paid.model,
            cost_usd=paid.cost_usd, fingerprint=paid.fingerprint, width=image.width,
            height=image.height, tries=tries, list_cost_usd=paid.list_cost_usd)
    ctx.spool.remove(paid.job.sku, paid.fingerprint)
    reason = paid.note or (
        f"uploaded without a spool copy ({paid.spool_error})" if paid.spool_error else None)
    kept = {"s3_key": key, "size": len(image.data), "width": image.width,
            "height": image.height, "provider": paid.provider, "model": paid.model,
            "cost_usd": paid.cost_usd, "fingerprint": paid.fingerprint, "tries": tries,
            "list_cost_usd": paid.list_cost_usd}
    if wrong_shape and DestinationLayout(ctx.location).is_quarantine_key(key):
        return RowResult.quarantined(
            paid.job, reason="; ".join(filter(None, (wrong_shape, reason))), **kept)
    await keep_thumbnail(ctx, paid.job.sku, image, key)
    return RowResult.succeeded(paid.job, reason=reason, **kept)
