"""The wrong_shape policy: a paid image not of the asked shape is kept (quarantine, accept)
or discarded with a reason saying it was paid (fail); never silently lost."""

from __future__ import annotations

import asyncio
import io
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from catalog_images.destination.spool import Spool
from catalog_images.destination.storage import S3Location
from catalog_images.generation.deliver import keep
from catalog_images.generation.resources import RunContext
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import Router
from catalog_images.generation.shape import deliver_checked
from catalog_images.models import GeneratedImage, Job, RowStatus
from catalog_images.providers.config import get_provider

JOB = Job(sku="MUG-1", prompt="a red mug", resolution="1K", aspect_ratio="1:1", row=1,
          fingerprint="f" * 64)


def _image(width: int, height: int) -> GeneratedImage:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return GeneratedImage(buffer.getvalue(), "image/png", width, height)


SQUARE_1K, WIDE_1K, SQUARE_SMALL = _image(1024, 1024), _image(1376, 768), _image(512, 512)


class Bucket:
    """An async S3 client's put_object, recording what was PUT."""

    def __init__(self) -> None:
        self.puts: list[dict] = []

    async def put_object(self, **request) -> dict:
        self.puts.append(request)
        return {}


@pytest.fixture
def make_ctx(tmp_path):
    pools = []

    def make(policy: str) -> RunContext:
        pools.append(ThreadPoolExecutor(1))
        return RunContext(
            run_id="run-1", location=S3Location("bucket", "p"), router=Router({}, {}),
            s3_client=Bucket(), spool=Spool(tmp_path / "spool", "s3://bucket/p"),
            s3_settings=None, policy=RetryPolicy(base_delay_s=0.001, max_delay_s=0.001),
            rng=random.Random(1), spool_pool=pools[-1], wrong_shape=policy)

    yield make
    for pool in pools:
        pool.shutdown()


def _deliver(ctx: RunContext, image: GeneratedImage):
    async def go():
        paid = await keep(ctx, JOB, JOB.fingerprint, image, get_provider("google"), 0.134)
        return await deliver_checked(ctx, paid)

    return asyncio.run(go())


@pytest.mark.parametrize("policy", ["quarantine", "accept", "fail"])
def test_an_image_of_the_asked_shape_is_the_rows_image_whatever_the_policy(make_ctx, policy):
    ctx = make_ctx(policy)
    result = _deliver(ctx, SQUARE_1K)
    assert (result.status, result.s3_key, result.reason) == (
        RowStatus.SUCCEEDED, "p/images/MUG-1.png", None)
    assert "wrong-shape" not in ctx.s3_client.puts[0]["Metadata"]


def test_quarantine_keeps_the_paid_image_under_its_prefix_with_the_reason(make_ctx):
    ctx = make_ctx("quarantine")
    result = _deliver(ctx, WIDE_1K)
    [put] = ctx.s3_client.puts
    assert put["Key"] == result.s3_key == "p/quarantine/MUG-1.png"
    assert put["Body"] == WIDE_1K.data
    assert (result.status, result.error_class, result.cost_usd) == (
        RowStatus.QUARANTINED, "wrong_shape", 0.134)
    assert result.reason == "wrong shape: image is 1376x768, not aspect ratio 1:1"
    assert put["Metadata"]["wrong-shape"] == result.reason
    assert put["Metadata"]["fingerprint"] == JOB.fingerprint  # the next run finds it
    assert ctx.spool.find(JOB.sku, JOB.fingerprint) is None and not ctx.thumbnails


def test_an_image_of_the_asked_ratio_but_another_resolution_is_the_wrong_shape(make_ctx):
    result = _deliver(make_ctx("quarantine"), SQUARE_SMALL)
    assert result.status == RowStatus.QUARANTINED
    assert result.reason == "wrong shape: image is 512x512, not resolution 1K"


def test_accept_keeps_it_as_the_rows_image_with_a_note(make_ctx):
    ctx = make_ctx("accept")
    result = _deliver(ctx, WIDE_1K)
    [put] = ctx.s3_client.puts
    assert put["Key"] == result.s3_key == "p/images/MUG-1.png"
    assert result.status == RowStatus.SUCCEEDED and result.cost_usd == 0.134
    assert result.reason == "accepted: wrong shape: image is 1376x768, not aspect ratio 1:1"
    assert put["Metadata"]["wrong-shape"].startswith("wrong shape: image is 1376x768")


def test_fail_discards_the_image_and_says_it_was_paid(make_ctx):
    ctx = make_ctx("fail")
    result = _deliver(ctx, WIDE_1K)
    assert ctx.s3_client.puts == []
    assert (result.status, result.error_class, result.cost_usd) == (
        RowStatus.FAILED, "wrong_shape", 0.134)
    assert result.reason == ("wrong shape: image is 1376x768, not aspect ratio 1:1; "
                             "paid $0.1340, image discarded (wrong_shape=fail)")
    assert ctx.spool.find(JOB.sku, JOB.fingerprint) is None
