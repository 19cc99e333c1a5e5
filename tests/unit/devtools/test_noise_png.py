"""Noise PNGs: valid, of the asked dimensions and size, incompressible, new every time."""

from __future__ import annotations

import io
import os
import time
import zlib

import pytest
from PIL import Image

from catalog_images.devtools.emulator import EmulatorConfig
from catalog_images.devtools.emulator.config import REALISTIC_IMAGE_BYTES, wrong_shape_of
from catalog_images.devtools.emulator.noise_png import (
    adler32_combine,
    build_noise_template,
    stored_blocks,
)
from catalog_images.images import inspect_image


def test_adler32_combine_matches_the_checksum_of_the_whole():
    a, b = os.urandom(70_001), os.urandom(123_457)
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)
    assert adler32_combine(zlib.adler32(b""), zlib.adler32(a), len(a)) == zlib.adler32(a)


def test_stored_blocks_inflate_back_to_the_data():
    data = os.urandom(200_000)
    final = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = stored_blocks(data) + final.compress(b"tail") + final.flush()
    assert zlib.decompress(stream, -15) == data + b"tail"


@pytest.mark.parametrize(("width", "height", "target"), [(1024, 1024, 1_500_000),
                                                         (1376, 768, 400_000), (64, 48, 10**9)])
def test_a_noise_png_decodes_at_its_size_and_does_not_compress(width, height, target):
    template = build_noise_template(width, height, target)
    first, second = template.png(), template.png()
    assert first != second
    info = inspect_image(first)
    assert (info.width, info.height, info.mime_type) == (width, height, "image/png")
    with Image.open(io.BytesIO(first)) as img:
        img.load()  # every pixel decodes: the zlib stream and its Adler-32 are right
        assert img.size == (width, height) and img.mode == "RGB"
    raw_size = height * (1 + 3 * width)
    assert len(first) >= min(target, raw_size) * 0.95
    assert len(first) <= max(target * 1.05, 4096) or target > raw_size
    assert len(zlib.compress(first, 1)) > 0.95 * len(first) or len(first) < 50_000


def test_a_realistic_4k_image_is_about_20_mb_and_cheap_to_vary():
    template = build_noise_template(4096, 4096, REALISTIC_IMAGE_BYTES["4K"])
    started = time.process_time()
    images = [template.png() for _ in range(5)]
    per_image = (time.process_time() - started) / 5
    assert all(19_000_000 <= len(image) <= 21_000_000 for image in images)
    assert len(set(images)) == 5
    assert per_image < 0.1, per_image


def test_wrong_shape_defaults_to_another_ratio_at_the_asked_size_and_can_be_set():
    assert wrong_shape_of(EmulatorConfig(), "2K", "1:1") == ("2K", "16:9")
    assert wrong_shape_of(EmulatorConfig(), "2K", "16:9") == ("2K", "1:1")
    cfg = EmulatorConfig(wrong_aspect_ratio="4:5", wrong_image_size="1K")
    assert wrong_shape_of(cfg, "4K", "1:1") == ("1K", "4:5")
    for bad in ({"wrong_aspect_ratio": "7:3"}, {"wrong_image_size": "8K"},
                {"image_bytes": {"3K": 5}}, {"image_bytes": {"1K": 0}}):
        with pytest.raises(ValueError):
            EmulatorConfig(**bad)


def test_the_file_store_of_result_urls_is_bounded_in_bytes_too():
    from catalog_images.devtools.emulator.files import FileStore, StoredFile

    store = FileStore(capacity=100, max_bytes=25)
    for name in "abcd":
        store.put(name, StoredFile(b"x" * 10, "image/png", 0.0))
    assert len(store) == 2 and store.get("a") is None and store.get("d") is not None
    store.put("big", StoredFile(b"x" * 40, "image/png", 0.0))  # the newest is always kept
    assert len(store) == 1 and store.get("big") is not None
