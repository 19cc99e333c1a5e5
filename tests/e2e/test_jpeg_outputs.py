"""A provider that answers JPEG (or WebP): the images keep their real type at the destination,
a re-run without the index finds them before paying, and the contact sheet links them."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from collections import Counter
from html import unescape
from types import SimpleNamespace
from urllib.parse import unquote, urlparse

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import run_refresh
from PIL import Image

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.generation.row import _already_uploaded
from catalog_images.report.contact_sheet import SheetItem
from catalog_images.scale.shards import thumbnails_bytes

SKUS = ["abc", "abc.v2", "P-1", "x_y.z"]


@pytest.fixture
def jpeg_emulator(monkeypatch):
    """The conftest ``emulator``, answering JPEG images."""
    emu = Emulator(EmulatorConfig(latency_s=0.02, seed=11, image_format="jpeg")).start()
    monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_URL", emu.base_url)
    try:
        yield emu
    finally:
        emu.stop()


def _split(dest: str) -> tuple[str, str]:
    bucket, _, prefix = dest[5:].partition("/")
    return bucket, prefix


@pytest.mark.usefixtures("prefect_api", "s3_env")
def test_jpeg_images_keep_their_type_and_are_not_bought_twice(
    jpeg_emulator, local_s3, dest, tmp_path
):
    catalog = tmp_path / "c.csv"
    pd.DataFrame({"sku": SKUS, "prompt": [f"Studio photo of {s}" for s in SKUS]}).to_csv(
        catalog, index=False)
    state, first = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed() and first["totals"]["succeeded"] == len(SKUS)
    bucket, prefix = _split(dest)
    client = local_s3.client()
    for sku in SKUS:
        head = client.head_object(Bucket=bucket, Key=f"{prefix}/images/{sku}.jpg")
        assert head["ContentType"] == "image/jpeg"
    images = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/")["Contents"]
    assert sorted(o["Key"] for o in images) == sorted(f"{prefix}/images/{s}.jpg" for s in SKUS)
    run_folder = f"{prefix}/runs/{first['run_id']}"
    page = client.get_object(Bucket=bucket, Key=f"{run_folder}/contact-sheet.html")["Body"]
    html = page.read().decode()
    # Each image is linked by a URL presigned for its .jpg key (relative links when the
    # store cannot sign), and the link serves the JPEG bytes.
    sources = [unescape(src) for src in re.findall(r'src="([^"]+)"', html)]
    paths = {unquote(urlparse(src).path): src for src in sources}
    for sku in SKUS:
        (src,) = [src for path, src in paths.items() if path.endswith(f"/images/{sku}.jpg")]
        assert unquote(urlparse(src).path).endswith(f"{prefix}/images/{sku}.jpg"), src
        assert httpx.get(src, timeout=10).content[:2] == b"\xff\xd8", src
    assert not [src for src in sources
                if urlparse(src).path.endswith(".png") and "contact-sheet" not in src], sources

    for item in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/state/")["Contents"]:
        client.delete_object(Bucket=bucket, Key=item["Key"])  # no index: only the images
    requests = jpeg_emulator.stats()["requests"]
    state, second = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed()
    assert jpeg_emulator.stats()["requests"] == requests  # zero new provider requests
    totals = second["totals"]
    assert (totals["skipped"], totals["succeeded"], totals["cost_usd"]) == (len(SKUS), 0, 0.0)
    after = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/")["Contents"]
    assert {(o["Key"], o["ETag"]) for o in after} == {(o["Key"], o["ETag"]) for o in images}


async def _checks(settings: S3Settings, location: S3Location, queries) -> list:
    """``_already_uploaded`` for each (sku, fingerprint), with the S3 operations each sent."""
    answers = []
    async with settings.aio_client_context(4) as client:
        sent: Counter = Counter()
        client.meta.events.register(
            "before-call.s3", lambda model, **_: sent.update([model.name]))
        ctx = SimpleNamespace(location=location, s3_client=client)
        for sku, fp in queries:
            sent.clear()
            answers.append((await _already_uploaded(ctx, sku, fp), dict(sent)))
    return answers


@pytest.mark.usefixtures("s3_env")
def test_the_check_before_paying_finds_any_type_with_two_lists_at_once_for_a_new_row(
    local_s3, dest
):
    location = S3Location.parse(dest)
    layout = DestinationLayout(location)
    client = local_s3.client()
    for key, mime, fp in (
        (layout.image_key("abc", "image/jpeg"), "image/jpeg", "fp-abc"),
        (layout.image_key("abc.v2", "image/png"), "image/png", "fp-v2"),
        (layout.image_key("w", "image/webp"), "image/webp", "fp-w"),
        (layout.image_key("w", "image/png"), "image/png", "fp-old"),
        (layout.quarantine_key("q", "image/png"), "image/png", "fp-q"),
    ):
        client.put_object(Bucket=location.bucket, Key=key, Body=b"x", ContentType=mime,
                          Metadata={"fingerprint": fp})
    answers = asyncio.run(_checks(S3Settings.from_environment(), location, [
        ("abc", "fp-abc"), ("abc", "fp-v2"), ("abc.v2", "fp-v2"), ("w", "fp-w"),
        ("new-sku", "fp-new"), ("ab", "fp-abc"), ("q", "fp-q"),
    ]))
    # images/ and quarantine/ are listed together: two List requests, sent at once
    assert answers == [
        (layout.image_key("abc", "image/jpeg"), {"ListObjectsV2": 2, "HeadObject": 1}),
        (None, {"ListObjectsV2": 2, "HeadObject": 1}),  # abc.v2.png is not an image of abc
        (layout.image_key("abc.v2", "image/png"), {"ListObjectsV2": 2, "HeadObject": 1}),
        (layout.image_key("w", "image/webp"), {"ListObjectsV2": 2, "HeadObject": 2}),
        (None, {"ListObjectsV2": 2}),  # a new row: whatever types exist
        (None, {"ListObjectsV2": 2}),
        (layout.quarantine_key("q", "image/png"), {"ListObjectsV2": 2, "HeadObject": 1}),
    ]


@pytest.mark.parametrize(("fmt", "mime", "pil"), [("jpeg", "image/jpeg", "JPEG"),
                                                  ("webp", "image/webp", "WEBP")])
def test_the_emulator_answers_the_configured_type_in_each_wire_format(fmt, mime, pil):
    model = "gemini-3-pro-image"
    with Emulator(EmulatorConfig(latency_s=0.0, image_format=fmt)).start() as emu, \
            httpx.Client(base_url=emu.base_url, timeout=30) as http:
        gemini = http.post(f"/v1beta/models/{model}:generateContent", json={
            "contents": [{"parts": [{"text": "a red mug"}]}],
            "generationConfig": {"imageConfig": {"imageSize": "1K", "aspectRatio": "16:9"}},
        }).json()
        part = gemini["candidates"][0]["content"]["parts"][-1]["inlineData"]
        assert part["mimeType"] == mime
        answers = [base64.b64decode(part["data"])]
        openai = http.post("/v1/images/generations", json={
            "model": model, "prompt": "a red mug", "size": "1024x1024"}).json()
        assert openai["output_format"] == fmt
        answers.append(base64.b64decode(openai["data"][0]["b64_json"]))
        url = http.post("/v1/images/generations", json={
            "model": model, "prompt": "a red mug", "response_format": "url"}).json()
        fetched = http.get(url["data"][0]["url"])
        assert fetched.headers["content-type"] == mime
        answers.append(fetched.content)
    sizes = []
    for data in answers:
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == pil
            img.load()
            sizes.append(img.size)
    assert sizes[0][0] > sizes[0][1]  # 16:9 at 1K, as asked
    assert sizes[0][0] * sizes[0][1] > 900_000


def test_shard_thumbnails_carry_the_image_key_to_the_parent():
    items = [SheetItem("abc.v2", b"\xff\xd8thumb", "p/images/abc.v2.jpg"),
             SheetItem("w", b"", "p/images/w.webp")]
    rows = pq.read_table(io.BytesIO(thumbnails_bytes(items))).to_pylist()
    assert [(r["sku"], r["png"], r["key"]) for r in rows] == [
        (i.sku, i.data, i.key) for i in items]
