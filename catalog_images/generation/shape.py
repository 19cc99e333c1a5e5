"""A paid image that is intact but not the asked shape: the run's ``wrong_shape`` policy.

The image was billed, so it is never thrown away silently:
- ``quarantine`` (the default): uploaded to ``quarantine/{sku}.{ext}`` with its reason in the
  object metadata; the row ends ``quarantined``. The index and the before-paying check know
  the quarantined image's fingerprint, so later runs do not pay for it again unless forced.
- ``accept``: uploaded as the row's image, the row succeeds with the reason as its note.
- ``fail``: discarded (the spool copy too); the row fails, its reason saying what was paid.
"""

from __future__ import annotations

from dataclasses import replace

from catalog_images.destination.layout import DestinationLayout
from catalog_images.generation.deliver import PaidImage, deliver
from catalog_images.generation.resources import RunContext
from catalog_images.images import shape_problem
from catalog_images.providers.errors import ErrorClass
from catalog_images.report.results import RowResult, Tries


def wrong_shape_of(paid: PaidImage) -> str | None:
    """Why the paid image is not the job's aspect ratio or resolution, or None."""
    job, image = paid.job, paid.image
    return shape_problem(image.width, image.height, job.aspect_ratio, job.resolution)


async def deliver_checked(ctx: RunContext, paid: PaidImage, tries: Tries | None = None,
                          lost_note: str | None = None) -> RowResult:
    """Deliver a paid image where the run's ``wrong_shape`` policy puts it; its result."""
    layout = DestinationLayout(ctx.location)
    sku, mime = paid.job.sku, paid.image.mime_type
    problem = wrong_shape_of(paid)
    if problem is None:
        return await deliver(ctx, paid, layout.image_key(sku, mime), tries, lost_note)
    if ctx.wrong_shape == "accept":
        note = "; ".join(filter(None, (f"accepted: {problem}", paid.note)))
        return await deliver(ctx, replace(paid, note=note), layout.image_key(sku, mime), tries,
                             lost_note, wrong_shape=problem)
    if ctx.wrong_shape == "quarantine":
        return await deliver(ctx, paid, layout.quarantine_key(sku, mime), tries, lost_note,
                             wrong_shape=problem)
    ctx.spool.remove(sku, paid.fingerprint)
    paid_for = (f"paid ${paid.cost_usd:.4f}" if paid.cost_usd
                else "paid for by an earlier run")
    return RowResult.failed(
        paid.job, ErrorClass.WRONG_SHAPE.value,
        f"{problem}; {paid_for}, image discarded (wrong_shape=fail)",
        provider=paid.provider, model=paid.model, cost_usd=paid.cost_usd,
        fingerprint=paid.fingerprint, width=paid.image.width, height=paid.image.height,
        tries=tries)
