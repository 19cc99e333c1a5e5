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


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, kind) of each chunk of a PNG."""
    import struct

    found, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        found.append((pos, kind))
        pos += 12 + length
    return found


@pytest.mark.parametrize("chunk", [b"IHDR", b"IDAT", b"IEND"])
def test_a_flipped_byte_in_any_png_chunk_fails_its_crc(chunk):
    data = bytearray(_encode("PNG", (64, 64)))
    offset = next(pos for pos, kind in _png_chunks(bytes(data)) if kind == chunk)
    data[offset + 8 + (0 if chunk != b"IEND" else -4)] ^= 0x01  # IEND: its CRC itself
    with pytest.raises(ImageCheckError):
        inspect_image(bytes(data))


def test_a_png_whose_chunk_length_runs_past_the_end_or_without_ihdr_first_is_refused():
    data = _encode("PNG", (64, 64))
    chunks = _png_chunks(data)
    idat = next(pos for pos, kind in chunks if kind == b"IDAT")
    huge = data[:idat] + (2**31).to_bytes(4, "big") + data[idat + 4:]
    with pytest.raises(ImageCheckError):
        inspect_image(huge)
    ihdr_end = chunks[1][0]
    swapped = data[:8] + data[ihdr_end:chunks[-1][0]] + data[8:ihdr_end] + data[chunks[-1][0]:]
    with pytest.raises(ImageCheckError):
        inspect_image(swapped)
