"""Image verification: formats, truncation, aspect ratio."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from catalog_images.images import (
    ImageCheckError,
    inspect_image,
    matches_aspect_ratio,
    shape_problem,
)


def _encode(fmt: str, size=(160, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                           ("WEBP", "image/webp")])
def test_whole_images_are_recognised_and_truncated_ones_refused(fmt, mime):
    data = _encode(fmt)
    info = inspect_image(data)
    assert (info.mime_type, info.width, info.height) == (mime, 160, 90)
    with pytest.raises(ImageCheckError):
        inspect_image(data[: len(data) // 2])


def test_non_images_and_corrupt_png_chunks_are_refused():
    with pytest.raises(ImageCheckError, match="not a PNG"):
        inspect_image(b"<html>oops</html>")
    data = bytearray(_encode("PNG"))
    data[40] ^= 0xFF  # flip a byte inside IDAT: CRC no longer matches
    with pytest.raises(ImageCheckError):
        inspect_image(bytes(data))


def test_aspect_ratio_tolerance():
    assert matches_aspect_ratio(1376, 768, "16:9")
    assert matches_aspect_ratio(2048, 2048, "1:1")
    assert not matches_aspect_ratio(2048, 1536, "1:1")


@pytest.mark.parametrize(("size", "ratio", "resolution", "problem"), [
    ((1024, 1024), "1:1", "1K", None),
    ((1376, 768), "16:9", "1K", None),  # Gemini's 1K 16:9
    ((1584, 672), "21:9", "1K", None),
    ((2048, 2048), "1:1", "2K", None),
    ((5504, 3072), "16:9", "4K", None),
    ((1376, 768), "1:1", "1K", "wrong shape: image is 1376x768, not aspect ratio 1:1"),
    ((1024, 1024), "1:1", "2K", "wrong shape: image is 1024x1024, not resolution 2K"),
    ((512, 512), "1:1", "1K", "wrong shape: image is 512x512, not resolution 1K"),
    ((4096, 2304), "1:1", "1K",
     "wrong shape: image is 4096x2304, not aspect ratio 1:1 or resolution 1K"),
])
def test_shape_problem_names_the_ratio_or_resolution_that_is_wrong(size, ratio, resolution,
                                                                   problem):
    assert shape_problem(*size, ratio, resolution) == problem
