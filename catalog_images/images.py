"""Recognise and verify image bytes: format sniffing, integrity and aspect-ratio checks."""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSION_BY_MIME = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
ASPECT_TOLERANCE = 0.02
# The side of a square image of each resolution; an image's resolution is the side of the
# square of its pixel count (Gemini's 1K 16:9 is 1376x768: about 1024 squared pixels).
RESOLUTION_SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}
# An answer may have at most PIXEL_ALLOWANCE x (2 x side)^2 pixels: an image one resolution
# above the asked one is still an image (a wrong size, paid for: the wrong_shape policy keeps
# it), anything larger is a decompression bomb, refused from its header before any pixel is
# decoded.
PIXEL_ALLOWANCE = 2.0


class ImageCheckError(ValueError):
    """Bytes that are not a complete PNG, JPEG or WebP image of the expected shape."""


class ImageTooLarge(ImageCheckError):
    """An image with more pixels than its resolution allows (a decompression bomb)."""


def max_pixels(resolution: str) -> int:
    """Most pixels an image asked at ``resolution`` may have (unknown ones: as 4K)."""
    side = 2 * RESOLUTION_SIDES.get(resolution, RESOLUTION_SIDES["4K"])
    return int(side * side * PIXEL_ALLOWANCE)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the bytes are: MIME type and pixel size."""

    mime_type: str
    width: int
    height: int


def sniff_mime(data: bytes) -> str | None:
    """Return the MIME type from the magic bytes, or None when not PNG/JPEG/WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_complete(mime: str, data: bytes) -> None:
    """Cheap end-of-stream checks that catch truncated downloads without decoding pixels."""
    if mime == "image/png":
        if not data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"):
            raise ImageCheckError("PNG is truncated (no IEND chunk)")
    elif mime == "image/jpeg":
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise ImageCheckError("JPEG is truncated (no end-of-image marker)")
    elif mime == "image/webp":
        (riff_size,) = struct.unpack("<I", data[4:8])
        if riff_size + 8 > len(data):
            raise ImageCheckError("WebP is truncated (RIFF size larger than the data)")


def check_png_chunks(data: bytes) -> None:
    """Walk a PNG's chunks: IHDR first, each length within the data, each CRC right, IEND
    last. CRCs are computed over views of ``data`` (no copy of a 20 MB IDAT, as Pillow's
    ``verify`` makes)."""
    view, pos, first = memoryview(data), 8, True
    while True:
        if pos + 12 > len(data):
            raise ImageCheckError("PNG is truncated (a chunk runs past the end)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise ImageCheckError("PNG is truncated (a chunk runs past the end)")
        if first and kind != b"IHDR":
            raise ImageCheckError("PNG does not start with its IHDR chunk")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4:end - 4]) != crc:
            raise ImageCheckError(f"PNG chunk {kind.decode('latin-1')!r} fails its CRC")
        if kind == b"IEND":
            return
        pos, first = end, False


def inspect_image(data: bytes, pixel_cap: int | None = None) -> ImageInfo:
    """Verify that ``data`` is a complete PNG, JPEG or WebP image and return its info.

    Pixels are not decoded: Pillow reads the header (the size), then PNG chunk CRCs are
    checked over views of the bytes (``check_png_chunks``) and JPEG/WebP are verified by
    Pillow, so a 4K image costs milliseconds. Beyond ``pixel_cap`` pixels the image is
    refused from its header (ImageTooLarge), before its chunks are read.
    """
    mime = sniff_mime(data)
    if mime is None:
        raise ImageCheckError("bytes are not a PNG, JPEG or WebP image")
    _check_complete(mime, data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if pixel_cap is not None and width * height > pixel_cap:
                raise ImageTooLarge(f"image is {width}x{height}: over the cap of "
                                    f"{pixel_cap} pixels")
            if mime == "image/png":
                check_png_chunks(data)
            else:
                img.verify()
    except ImageCheckError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image refused: {exc}") from None
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise ImageCheckError(f"image does not decode: {type(exc).__name__}: {exc}") from None
    return ImageInfo(mime_type=mime, width=width, height=height)


def ratio_value(aspect_ratio: str) -> float:
    """'16:9' -> 1.777..."""
    w, h = aspect_ratio.split(":")
    return int(w) / int(h)


def matches_aspect_ratio(width: int, height: int, aspect_ratio: str) -> bool:
    """True when width/height is within 2% of the asked ratio."""
    expected = ratio_value(aspect_ratio)
    return abs(width / height - expected) / expected <= ASPECT_TOLERANCE


def matches_resolution(width: int, height: int, resolution: str) -> bool:
    """True when the image's pixel count is within half a resolution step (a factor of
    sqrt 2 in side) of the asked one: 1K is about 724 to 1448 px square, 2K twice that."""
    side = RESOLUTION_SIDES.get(resolution)
    if side is None:
        return True  # an unknown name (a relay's own) cannot be judged
    return side / math.sqrt(2) <= math.sqrt(width * height) <= side * math.sqrt(2)


def shape_problem(width: int, height: int, aspect_ratio: str, resolution: str) -> str | None:
    """Why an intact image is not the asked shape (aspect ratio) or resolution, or None."""
    wrong = []
    if not matches_aspect_ratio(width, height, aspect_ratio):
        wrong.append(f"aspect ratio {aspect_ratio}")
    if not matches_resolution(width, height, resolution):
        wrong.append(f"resolution {resolution}")
    if not wrong:
        return None
    return f"wrong shape: image is {width}x{height}, not {' or '.join(wrong)}"
