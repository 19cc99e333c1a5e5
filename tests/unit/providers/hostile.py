"""Hostile answers for provider unit tests: streamed bodies, gzip bombs, PNG bombs."""

from __future__ import annotations

import asyncio
import struct
import zlib

import httpx


class Chunks(httpx.AsyncByteStream):
    """A body sent piece by piece (not pre-read); ``sent`` counts the pieces taken."""

    def __init__(self, chunks, delay_s: float = 0.0) -> None:
        self._chunks = chunks
        self._delay_s = delay_s
        self.sent = 0

    async def __aiter__(self):
        for chunk in self._chunks:
            if self._delay_s:
                await asyncio.sleep(self._delay_s)
            self.sent += 1
            yield chunk


def endless(piece: bytes = b"A" * 65536, count: int = 100_000):
    """``count`` pieces of ``piece`` (6.5 GB by default), made as they are taken."""
    return (piece for _ in range(count))


def gzip_bomb(inflated_bytes: int = 256 * 1024 * 1024, piece: int = 4096) -> list[bytes]:
    """A gzip stream of ``inflated_bytes`` zeros, cut in ``piece``-byte chunks."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1024 * 1024)
    data = b"".join(compressor.compress(block) for _ in range(inflated_bytes // len(block)))
    data += compressor.flush()
    return [data[i:i + piece] for i in range(0, len(data), piece)]


def streamed(chunks, headers: dict | None = None, status: int = 200,
             delay_s: float = 0.0) -> tuple[httpx.Response, Chunks]:
    """A streamed response and its stream (to count the pieces read)."""
    stream = Chunks(chunks, delay_s)
    return httpx.Response(status, headers=headers or {}, stream=stream), stream


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A valid-looking PNG of ``width`` x ``height`` 1-bit pixels: a few KB that would
    inflate to width*height/8 bytes if decoded (the IDAT holds only a few rows)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = (b"\0" + b"\0" * ((width + 7) // 8)) * 16
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))
