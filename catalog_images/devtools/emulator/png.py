"""Cheap product-like PNGs: a cached palette-indexed pixel pattern, recoloured per prompt.

The compressed pixel data (IDAT) is built once per (width, height); a request only builds the
9-byte PLTE chunk. PNG signature + IHDR is 33 bytes and PLTE is 21, both multiples of 3, so the
base64 of the cached tail can be concatenated without re-encoding the whole image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import struct
import threading
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIME_BY_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSION_BY_FORMAT = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
_BASE_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}


def image_dimensions(image_size: str, aspect_ratio: str) -> tuple[int, int]:
    """Pixel size for an imageSize/aspectRatio pair: about side² pixels, multiples of 8."""
    side = _BASE_SIDE[image_size]
    a, b = (int(part) for part in aspect_ratio.split(":"))
    width = round(side * math.sqrt(a / b) / 8) * 8
    height = round(side * math.sqrt(b / a) / 8) * 8
    return width, height


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _index_pattern(width: int, height: int) -> np.ndarray:
    """Background 0, a centred rounded 'product' 1 and a 'table' band 2 behind it."""
    img = np.zeros((height, width), dtype=np.uint8)
    img[int(height * 0.70) : int(height * 0.78), :] = 2
    cx, cy = (width - 1) / 2, height * 0.45
    half_w, half_h = width * 0.22, height * 0.30
    radius = min(half_w, half_h) * 0.35
    dy = np.abs(np.arange(height, dtype=np.float32) - cy)
    corner = np.clip(dy - (half_h - radius), 0.0, None)
    span = (half_w - radius) + np.sqrt(np.clip(radius**2 - corner**2, 0.0, None))
    span[dy > half_h] = -1.0
    dx = np.abs(np.arange(width, dtype=np.float32) - cx)
    img[dx[None, :] <= span[:, None]] = 1
    return img


@dataclass(frozen=True)
class PngTemplate:
    """A PNG of one pixel size with everything but the palette pre-encoded."""

    width: int
    height: int
    head: bytes
    tail: bytes
    head_b64: str
    tail_b64: str

    def png(self, palette: bytes) -> bytes:
        """Full PNG bytes with ``palette`` (3 RGB triplets)."""
        return self.head + _chunk(b"PLTE", palette) + self.tail

    def b64(self, palette: bytes) -> str:
        """Base64 of ``png(palette)`` at near-zero cost."""
        plte = base64.b64encode(_chunk(b"PLTE", palette)).decode("ascii")
        return self.head_b64 + plte + self.tail_b64


def build_template(width: int, height: int) -> PngTemplate:
    """Encode the index pattern of one size (CPU-heavy for 4K; call once per size)."""
    pixels = _index_pattern(width, height)
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = pixels
    idat = zlib.compress(raw.tobytes(), 6)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    head = PNG_SIGNATURE + _chunk(b"IHDR", ihdr)
    tail = _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    assert len(head) % 3 == 0
    return PngTemplate(
        width=width,
        height=height,
        head=head,
        tail=tail,
        head_b64=base64.b64encode(head).decode("ascii"),
        tail_b64=base64.b64encode(tail).decode("ascii"),
    )


def encode_as(png: bytes, image_format: str) -> bytes:
    """The PNG's pixels re-encoded as ``jpeg`` or ``webp`` (Pillow; the PNG itself for png)."""
    if image_format == "png":
        return png
    with Image.open(io.BytesIO(png)) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, format=image_format.upper(), quality=85)
    return out.getvalue()


def palette_for(prompt: str) -> bytes:
    """Three RGB colours derived from the prompt: light background, product, darker band."""
    d = hashlib.sha256(prompt.encode("utf-8")).digest()
    background = bytes(190 + d[i] % 60 for i in range(3))
    product = bytes(20 + d[i] % 170 for i in range(3, 6))
    band = bytes(max(0, c - 70 + d[6 + i] % 30) for i, c in enumerate(background))
    return background + product + band


class TemplateCache:
    """Thread-safe cache of templates by pixel size; builds each size at most once."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, int], PngTemplate] = {}
        self._locks: dict[tuple[int, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def peek(self, width: int, height: int) -> PngTemplate | None:
        """The cached template, or None when not built yet."""
        return self._done.get((width, height))

    def get(self, width: int, height: int) -> PngTemplate:
        """The template for this size, building it if needed (blocking)."""
        key = (width, height)
        if (found := self._done.get(key)) is not None:
            return found
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if (found := self._done.get(key)) is None:
                found = self._done[key] = build_template(width, height)
            return found
