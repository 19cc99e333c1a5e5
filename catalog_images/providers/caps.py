"""Caps on what a provider may answer: body bytes (after decompression) and JSON depth.

A hostile or broken provider must not be able to exhaust the worker: bodies are read as a
stream and given up once over the cap, compressed bodies are inflated in bounded steps (a
gzip bomb stops at the cap, not at its inflated size), and JSON nested deeper than
``MAX_JSON_DEPTH`` is refused before it is parsed (no RecursionError).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import AsyncIterator

import httpx

from catalog_images.providers.errors import ErrorClass, ProviderError

MAX_JSON_DEPTH = 64
# Accept-Encoding the clients send: only what ``read_capped`` can inflate in bounded steps.
ACCEPT_ENCODING = "gzip, deflate"
_STRUCTURE = b'"\\[]{}'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_STRING = re.compile(rb'"[^"]*"')
_INNERMOST = re.compile(rb"\[\]|\{\}")


def refused(message: str, *, status: int | None = None, billed: bool = False) -> ProviderError:
    """An answer refused by a cap: final, and counted against the provider's health."""
    return ProviderError(ErrorClass.REFUSED, message, status=status, billed=billed)


def inflater_for(encoding: str):
    """A zlib decompressor for ``encoding``, None for identity; refuse anything else."""
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise refused(f"answer has an unsupported content-encoding {encoding[:40]!r}")


async def inflate(chunks: AsyncIterator[bytes], inflater, room: int) -> AsyncIterator[bytes]:
    """Inflated pieces of ``chunks``, never more than ``room + 1`` bytes at once."""
    async for chunk in chunks:
        data = chunk
        while data:
            piece = inflater.decompress(data, room + 1)
            data = inflater.unconsumed_tail
            yield piece
            if not piece and data:
                return


async def capped_pieces(response: httpx.Response, max_bytes: int) -> AsyncIterator[bytes]:
    """The body of a streamed ``response`` piece by piece, decompressed; a ProviderError once
    beyond ``max_bytes`` (a declared length over it: before any piece is read).

    ``response`` must come from ``send(..., stream=True)``: its raw bytes are read here.
    """
    if response.is_stream_consumed:  # an in-memory transport answered an already-read body
        if len(response.content) > max_bytes:
            raise refused(f"answer is over the cap of {max_bytes} bytes",
                          status=response.status_code)
        yield response.content
        return
    encoding = response.headers.get("content-encoding", "").strip().lower()
    inflater = inflater_for(encoding)
    declared = response.headers.get("content-length", "")
    if inflater is None and declared.isdigit() and int(declared) > max_bytes:
        raise refused(f"answer of {int(declared)} bytes is over the cap of {max_bytes}",
                      status=response.status_code)
    chunks = response.aiter_raw()
    pieces = chunks if inflater is None else inflate(chunks, inflater, max_bytes)
    taken = 0
    try:
        async for piece in pieces:
            taken += len(piece)
            if taken > max_bytes:
                raise refused(f"answer is over the cap of {max_bytes} bytes"
                              + (" once decompressed" if inflater is not None else ""),
                              status=response.status_code)
            yield piece
    except zlib.error:
        raise ProviderError(ErrorClass.BAD_RESPONSE, f"{encoding} body does not decompress",
                            status=response.status_code) from None


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body of a streamed ``response``, decompressed; a ProviderError beyond ``max_bytes``.

    ``response`` must come from ``send(..., stream=True)``: its raw bytes are read here.
    """
    pieces = [piece async for piece in capped_pieces(response, max_bytes)]
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def json_depth_exceeds(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text nests arrays/objects more than ``limit`` deep.

    Only the structure is looked at (C-speed byte operations): escapes and strings are
    removed, then innermost bracket pairs are peeled ``limit`` times; anything left is
    deeper (or not JSON, which the parser then refuses).
    """
    structure = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    structure = _STRING.sub(b"", structure.replace(b"\\", b""))
    for _ in range(limit):
        if not structure:
            return False
        shorter = _INNERMOST.sub(b"", structure)
        if len(shorter) == len(structure):
            return False  # unbalanced: not JSON, the parser says so
        structure = shorter
    return bool(structure)


def parse_json(data: bytes, what: str, *, status: int | None = 200) -> object:
    """Parse a provider's JSON answer; a ProviderError for invalid or too deep JSON."""
    if json_depth_exceeds(data):
        raise refused(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels", status=status)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ProviderError(ErrorClass.BAD_RESPONSE, f"{what}: invalid JSON",
                            status=status) from None


def json_or_none(response: httpx.Response) -> object:
    """The JSON of an error answer, or None when it is not (usable) JSON."""
    try:
        return parse_json(response.content, "error body", status=response.status_code)
    except ProviderError:
        return None
