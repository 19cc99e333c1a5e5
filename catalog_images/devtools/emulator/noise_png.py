"""PNGs of realistic size and entropy, cheap enough to answer every request with a new one.

A real 2K PNG is several MB and a 4K one tens of MB, and they do not compress. An image of
``target`` bytes is an RGB PNG of the asked dimensions whose first rows are random noise in
stored (uncompressed) deflate blocks and whose other rows are one flat colour, compressed:

    signature, IHDR | IDAT: zlib header + this request's first noise row (stored) |
    IDAT: the cached noise rows (stored) | IDAT: the cached flat rows + this image's Adler-32

Per request only the first row is new (random, so every image differs) and only the small
chunks around it are checksummed again: the cached middle keeps its CRC, and the zlib
stream's Adler-32 is combined from the parts' (``adler32_combine``). A 20 MB 4K image costs
a few milliseconds, most of it base64 for the JSON wire formats.
"""

from __future__ import annotations

import base64
import os
import struct
import threading
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ADLER_BASE = 65521
_STORED_MAX = 65535
_ZLIB_HEADER = b"\x78\x01"


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    if crc is None:
        crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc & 0xFFFFFFFF)


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of A + B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine)."""
    rem = len2 % _ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 = (sum1 + (adler2 & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    sum2 = (sum2 + (adler1 >> 16) + (adler2 >> 16) + _ADLER_BASE - rem) % _ADLER_BASE
    return sum1 | (sum2 << 16)


def stored_blocks(data: bytes) -> bytes:
    """``data`` as non-final stored deflate blocks (byte-aligned, so they concatenate)."""
    out = bytearray()
    for start in range(0, len(data), _STORED_MAX):
        piece = data[start : start + _STORED_MAX]
        out += b"\x00" + struct.pack("<HH", len(piece), len(piece) ^ 0xFFFF) + piece
    return bytes(out)


@dataclass(frozen=True)
class NoiseTemplate:
    """The cached parts of noise PNGs of one size and byte target."""

    width: int
    height: int
    head: bytes  # signature + IHDR
    middle: bytes  # the IDAT chunk of cached noise rows
    middle_adler: int
    middle_len: int  # uncompressed bytes in the middle
    flat_deflate: bytes  # the flat rows, raw deflate, final block
    flat_adler: int
    flat_len: int

    @property
    def row_bytes(self) -> int:
        """Bytes of one raw scanline: the filter byte and three per pixel."""
        return 1 + 3 * self.width

    def png(self) -> bytes:
        """A new image: a random first row, the cached rest."""
        first = b"\x00" + os.urandom(self.row_bytes - 1)
        adler = adler32_combine(zlib.adler32(first), self.middle_adler, self.middle_len)
        adler = adler32_combine(adler, self.flat_adler, self.flat_len)
        return b"".join((
            self.head,
            _chunk(b"IDAT", _ZLIB_HEADER + stored_blocks(first)),
            self.middle,
            _chunk(b"IDAT", self.flat_deflate + struct.pack(">I", adler)),
            _chunk(b"IEND", b""),
        ))


def build_noise_template(width: int, height: int, target: int) -> NoiseTemplate:
    """Cache the parts of ``width`` x ``height`` noise PNGs of about ``target`` bytes (at
    least one noise row; at most every row, so a target above the raw size is not reached)."""
    row = 1 + 3 * width
    noise_rows = max(1, min(height, target // row))
    middle_raw = bytearray(os.urandom(row * (noise_rows - 1)))
    middle_raw[::row] = bytes(len(middle_raw[::row]))  # filter byte 0 on every row
    flat_raw = (b"\x00" + b"\xd8\xd2\xc8" * width) * (height - noise_rows)
    squeeze = zlib.compressobj(6, zlib.DEFLATED, -15)
    flat_deflate = squeeze.compress(flat_raw) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return NoiseTemplate(
        width=width, height=height, head=PNG_SIGNATURE + _chunk(b"IHDR", ihdr),
        middle=_chunk(b"IDAT", stored_blocks(bytes(middle_raw))),
        middle_adler=zlib.adler32(middle_raw), middle_len=len(middle_raw),
        flat_deflate=flat_deflate, flat_adler=zlib.adler32(flat_raw), flat_len=len(flat_raw),
    )


class NoiseImage:
    """One noise PNG answer; the same interface as the core's rendered images."""

    mime_type = "image/png"
    extension = ".png"

    def __init__(self, template: NoiseTemplate) -> None:
        self.width, self.height = template.width, template.height
        self._data = template.png()

    def data(self) -> bytes:
        """The PNG bytes."""
        return self._data

    def b64(self) -> str:
        """Base64 of the PNG."""
        return base64.b64encode(self._data).decode("ascii")


class NoiseCache:
    """Thread-safe cache of noise templates by (width, height, target bytes)."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, int, int], NoiseTemplate] = {}
        self._lock = threading.Lock()

    def peek(self, width: int, height: int, target: int) -> NoiseTemplate | None:
        """The cached template, or None when not built yet."""
        return self._done.get((width, height, target))

    def get(self, width: int, height: int, target: int) -> NoiseTemplate:
        """The template, built once (blocking: call it off the event loop)."""
        key = (width, height, target)
        with self._lock:
            if key not in self._done:
                self._done[key] = build_noise_template(width, height, target)
            return self._done[key]
