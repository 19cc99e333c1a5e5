"""Hostile mode: answers a broken or malicious provider could send, as fault kinds.

Body faults replace a whole answer (any route): ``oversized`` (an endless JSON-looking body,
``hostile_bytes`` long, chunked), ``gzip_bomb`` (a small gzip body inflating to
``hostile_bytes``), ``deep_json`` (arrays nested 100,000 deep), ``endless_retry_after`` (a 429
whose Retry-After and RetryInfo say 68 years). Image faults replace the image of a success:
``bad_base64``, ``png_bomb`` (a PNG header of 40,000 x 40,000 pixels over a few KB). URL
faults replace a result URL (async-task results, ``response_format=url``): ``url_link_local``
(the cloud metadata address), ``url_loopback`` (another loopback address than the
emulator's), ``url_redirect`` (the result host answers a redirect to the metadata address).
``bad_batch_item`` drops a batch result's key (inline) or cuts its line (JSONL file).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import struct
import zlib

from aiohttp import web

from .config import HOSTILE_FAULT_KINDS
from .core import EmulatorCore
from .http_util import send_json

BODY_FAULTS = frozenset({"oversized", "gzip_bomb", "deep_json", "endless_retry_after"})
IMAGE_FAULTS = frozenset({"bad_base64", "png_bomb"})
URL_FAULTS = frozenset({"url_link_local", "url_loopback", "url_redirect"})
HOSTILE_FAULTS = HOSTILE_FAULT_KINDS
LINK_LOCAL_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
ENDLESS_S = 2_147_483_647
DEPTH = 100_000
_PIECE = 1024 * 1024


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.cache
def png_bomb(side: int = 40_000) -> bytes:
    """A well-formed PNG claiming ``side`` x ``side`` 1-bit pixels (200 MB if decoded)."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = (b"\0" * (1 + (side + 7) // 8)) * 64
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b""))


@functools.cache
def gzip_bomb(inflated: int) -> bytes:
    """gzip bytes of ``inflated`` zero bytes (about a thousandth of that)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * _PIECE
    parts = [compressor.compress(block) for _ in range(max(1, inflated // _PIECE))]
    return b"".join(parts) + compressor.flush()


def applicable(fault: str, *, urls: bool = False, batch: bool = False,
               base64_images: bool = True) -> str:
    """``fault``, or "ok" when the answer at hand has nothing it could spoil."""
    if (fault in URL_FAULTS and not urls) or (fault == "bad_batch_item" and not batch) or (
            fault == "bad_base64" and not base64_images):
        return "ok"
    return fault


def image_b64(fault: str) -> str | None:
    """The base64 "image" of an image fault, None for other faults."""
    if fault == "bad_base64":
        return "@@ this is not base64 @@"
    if fault == "png_bomb":
        return base64.b64encode(png_bomb()).decode("ascii")
    return None


def image_bytes(fault: str) -> bytes | None:
    """The bytes a result URL serves for ``png_bomb``, None for other faults."""
    return png_bomb() if fault == "png_bomb" else None


def result_url(fault: str, request: web.Request, normal: str) -> str:
    """The result URL an answer names: ``normal`` unless ``fault`` is a URL fault."""
    if fault == "url_link_local":
        return LINK_LOCAL_URL
    if fault == "url_loopback":
        port = request.url.port or 80
        return f"http://127.0.0.2:{port}/_emulator/files/elsewhere.png"
    if fault == "url_redirect":
        base = normal.split("/_emulator/", 1)[0]
        return f"{base}/_emulator/redirect"
    return normal


async def send_body_fault(request: web.Request, core: EmulatorCore,
                          fault: str) -> web.StreamResponse:
    """Answer with the body fault ``fault`` (counted as its outcome)."""
    core.count_outcome(fault)
    if fault == "endless_retry_after":
        core.count_status(429)
        body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                          "message": f"Quota exceeded. Please retry in {ENDLESS_S}s.",
                          "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                       "retryDelay": f"{ENDLESS_S}s"}]}}
        return (await send_json(request, 429, body, {"Retry-After": str(ENDLESS_S)}))[0]
    core.count_status(200)
    if fault == "deep_json":
        return (await send_json(request, 200, b"[" * DEPTH + b"]" * DEPTH))[0]
    size = core.config.hostile_bytes
    if fault == "gzip_bomb":
        data = await asyncio.to_thread(gzip_bomb, size)
        return await _stream(request, [data[i:i + 65536] for i in range(0, len(data), 65536)],
                             {"Content-Encoding": "gzip"})
    head = b'{"candidates":[{"content":{"parts":[{"text":"'
    return await _stream(request, [head, *(b"A" * _PIECE for _ in range(size // _PIECE))], {})


async def _stream(request: web.Request, pieces, headers: dict[str, str]) -> web.StreamResponse:
    """Write ``pieces`` chunked (no Content-Length) until done or the client goes away."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       **headers})
    try:
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
        await response.write_eof()
    except ConnectionError:
        pass
    return response
