"""Delivering a paid image: the same object metadata and outcomes in both modes, and a
paid image is never dropped without a trace (spool copy kept until the upload succeeded)."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import EndpointConnectionError
from PIL import Image

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.destination.spool import Spool
from catalog_images.destination.storage import S3Location
from catalog_images.generation.deliver import (
    INLINE_SPOOL_BYTES,
    UPLOAD_ATTEMPTS,
    PaidImage,
    deliver,
    keep,
)
from catalog_images.generation.resources import RunContext
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import Router
from catalog_images.models import GeneratedImage, Job, RowStatus
from catalog_images.providers.config import get_provider
from catalog_images.report.results import Tries

JOB = Job(sku="MUG-1", prompt="a red mug", resolution="1K", aspect_ratio="1:1", row=1,
          fingerprint="f" * 64)
KEY = "p/images/MUG-1.png"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = GeneratedImage(_png(), "image/png", 8, 6)


class Bucket:
    """An async S3 client's put_object, recording what was PUT; ``down`` refuses every PUT."""

    def __init__(self, down: bool = False) -> None:
        self.down, self.puts, self.attempts = down, [], 0

    async def put_object(self, **request) -> dict:
        self.attempts += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
        self.puts.append(request)
        return {}


class FullSpool(Spool):
    def write(self, sku: str, fingerprint: str, data: bytes, meta: dict) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def make_ctx(tmp_path):
    pools = []

    def make(bucket: Bucket, spool_class: type[Spool] = Spool,
             run_id: str = "run-1") -> RunContext:
        pools.append(ThreadPoolExecutor(1))
        return RunContext(
            run_id=run_id, location=S3Location("bucket", "p"), router=Router({}, {}),
            s3_client=bucket, spool=spool_class(tmp_path / "spool", "s3://bucket/p"),
            s3_settings=None, policy=RetryPolicy(base_delay_s=0.001, max_delay_s=0.001),
            rng=random.Random(1), spool_pool=pools[-1])

    yield make
    for pool in pools:
        pool.shutdown()


def _deliver(ctx: RunContext, note: str | None = None, lost_note: str | None = None,
             tries: Tries | None = None):
    async def go():
        paid = await keep(ctx, JOB, JOB.fingerprint, IMAGE, get_provider("google"), 0.134,
                          note=note)
        return paid, await deliver(ctx, paid, KEY, tries, lost_note=lost_note)

    return asyncio.run(go())


def test_a_delivered_image_carries_the_metadata_later_runs_compare(make_ctx):
    bucket = Bucket()
    ctx = make_ctx(bucket)
    _, result = _deliver(ctx, tries=Tries(2, {"unavailable": 1}, 0.5))
    google = get_provider("google")
    [put] = bucket.puts
    assert (put["Bucket"], put["Key"], put["ContentType"]) == ("bucket", KEY, "image/png")
    assert put["Metadata"] == {
        "sku": "MUG-1", "prompt-sha256": sha256_hex("a red mug"), "fingerprint": "f" * 64,
        "provider": google.name, "model": google.model, "run-id": "run-1"}
    assert (result.status, result.s3_key, result.bytes, result.width, result.height) == (
        RowStatus.SUCCEEDED, KEY, len(IMAGE.data), 8, 6)
    assert (result.cost_usd, result.attempts, result.reason) == (0.134, 2, None)
    assert result.prompt_sha256 == put["Metadata"]["prompt-sha256"]
    assert ctx.spool.find(JOB.sku, JOB.fingerprint) is None  # uploaded: the copy goes
    assert [item.sku for item in ctx.thumbnails] == ["MUG-1"] and ctx.thumbnails[0].data


def test_a_failed_upload_leaves_the_paid_image_in_the_spool(make_ctx):
    ctx = make_ctx(Bucket(down=True))
    _, result = _deliver(ctx, lost_note="the next run collects batch b again")
    assert (result.status, result.error_class) == (RowStatus.FAILED, "upload")
    assert result.reason.startswith("upload failed, image kept in the spool")
    assert result.cost_usd == 0.134 and not ctx.thumbnails
    spooled = ctx.spool.find(JOB.sku, JOB.fingerprint)
    assert spooled is not None and spooled.data == IMAGE.data
    later_run = Spool(ctx.spool.dir.parent, "s3://bucket/p")
    assert later_run.find(JOB.sku, JOB.fingerprint).data == IMAGE.data  # a file of its own


def test_only_a_spool_copy_that_stays_goes_to_the_disk(make_ctx, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    _deliver(make_ctx(Bucket()))
    assert synced == []  # uploaded at once: the page cache held it long enough
    _deliver(make_ctx(Bucket(down=True)))
    assert len(synced) == 2  # the entry's own file and the folder's rename


class ThreadNoted(Spool):
    threads: list[str] = []

    def write(self, sku: str, fingerprint: str, data: bytes, meta: dict) -> None:
        self.threads.append(threading.current_thread().name)
        super().write(sku, fingerprint, data, meta)


def test_large_images_are_spooled_off_the_event_loop(make_ctx):
    ctx = make_ctx(Bucket(), ThreadNoted)
    big = GeneratedImage(IMAGE.data + bytes(INLINE_SPOOL_BYTES), "image/png", 8, 6)

    async def go():
        await keep(ctx, JOB, JOB.fingerprint, IMAGE, get_provider("google"), 0.1)
        await keep(ctx, JOB, "e" * 64, big, get_provider("google"), 0.1)

    asyncio.run(go())
    assert ThreadNoted.threads[0] == threading.current_thread().name
    assert ThreadNoted.threads[1] != threading.current_thread().name
    assert ctx.spool.find(JOB.sku, "e" * 64).data == big.data


def test_uploaded_images_reuse_one_slot_file_and_leave_nothing_behind(make_ctx):
    ctx = make_ctx(Bucket())
    for number in range(3):
        job = Job(sku=f"MUG-{number}", prompt="a red mug", resolution="1K",
                  aspect_ratio="1:1", row=number, fingerprint="f" * 64)

        async def go(job: Job = job) -> None:
            paid = await keep(ctx, job, job.fingerprint, IMAGE, get_provider("google"), 0.1)
            await deliver(ctx, paid, f"p/images/{job.sku}.png", None)

        asyncio.run(go())
        assert [p.name[:5] for p in ctx.spool.dir.iterdir()] == ["slot-"]
    ctx.spool.close()
    assert list(ctx.spool.dir.iterdir()) == []


def test_an_image_neither_spooled_nor_uploaded_says_where_it_can_still_be_had(make_ctx):
    ctx = make_ctx(Bucket(down=True), FullSpool)
    paid, result = _deliver(ctx, lost_note="the next run collects batch b again")
    assert paid.spool_error == "spool write failed: No space left on device"
    assert result.error_class == "upload_unspooled"
    assert result.reason.startswith("upload failed and the image was paid but lost")
    assert result.reason.endswith("; the next run collects batch b again")
    _, standard = _deliver(make_ctx(Bucket(down=True), FullSpool))
    assert standard.error_class == "upload" and "paid but lost" in standard.reason


def test_without_a_spool_copy_the_image_is_uploaded_from_memory(make_ctx):
    bucket = Bucket()
    _, result = _deliver(make_ctx(bucket, FullSpool))
    assert result.status == RowStatus.SUCCEEDED and len(bucket.puts) == 1
    assert result.reason == ("uploaded without a spool copy "
                             "(spool write failed: No space left on device)")
    _, noted = _deliver(make_ctx(Bucket()), note="collected from batch b of run r")
    assert noted.reason == "collected from batch b of run r"


def test_an_image_from_the_spool_is_uploaded_as_paid_by_its_run(make_ctx):
    bucket = Bucket()
    earlier = make_ctx(Bucket(), run_id="run-0")  # an earlier run paid and spooled it
    asyncio.run(keep(earlier, JOB, JOB.fingerprint, IMAGE, get_provider("google"), 0.134))
    earlier.spool.close()
    ctx = make_ctx(bucket)
    paid = PaidImage.from_spool(JOB, JOB.fingerprint, ctx.spool.find(JOB.sku, JOB.fingerprint))
    result = asyncio.run(deliver(ctx, paid, KEY))
    assert result.status == RowStatus.SUCCEEDED and result.cost_usd == 0
    assert result.reason == "uploaded from spool (paid in run run-0)"
    assert bucket.puts[0]["Metadata"]["provider"] == get_provider("google").name
    assert bucket.puts[0]["Body"] == IMAGE.data


def test_uploads_are_retried_before_the_row_fails(make_ctx):
    bucket = Bucket(down=True)
    _deliver(make_ctx(bucket))
    assert bucket.attempts == UPLOAD_ATTEMPTS


def test_thumbnails_stop_at_their_pixel_budget_so_4k_runs_decode_fewer(make_ctx):
    from dataclasses import replace

    from catalog_images.generation.deliver import THUMBNAIL_PIXELS, THUMBNAILS_KEPT, keep_thumbnail

    ctx = make_ctx(Bucket())
    big = replace(IMAGE, width=4096, height=4096)  # only its size counts against the budget

    async def go():
        for index in range(THUMBNAILS_KEPT):
            await keep_thumbnail(ctx, f"S-{index}", big, f"p/images/S-{index}.png")

    asyncio.run(go())
    assert len(ctx.thumbnails) == THUMBNAIL_PIXELS // (4096 * 4096) == 32
    assert ctx.thumbnail_pixels <= THUMBNAIL_PIXELS
