"""Batch results read item by item: a bad item is skipped, a large file is never held whole.

The JSONL results file of a Gemini batch can be gigabytes (a 2K image is several MB of
base64): it is streamed to a temporary file (decompressed, under ``RESULTS_FILE_MAX_BYTES``)
and read back one line at a time, each line under the answer byte cap.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from typing import IO

import httpx

from catalog_images.providers.caps import inflate, inflater_for, parse_json, read_capped, refused
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import error_from_response
from catalog_images.providers.http import ShardedClient, send_streamed

log = logging.getLogger(__name__)
RESULTS_FILE_MAX_BYTES = 16 * 1024**3
_BLOCK = 1024 * 1024
_MALFORMED = object()


async def download_to_file(client: ShardedClient, url: str, params: dict) -> IO[bytes]:
    """GET ``url`` into an anonymous temporary file (rewound); a ProviderError on failure.

    ``client`` is the provider's ShardedClient; the body is read as a stream.
    """
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    try:
        await _stream_into(client, url, params, spooled)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled


async def _stream_into(client: ShardedClient, url: str, params: dict, out: IO[bytes]) -> None:
    async with send_streamed(client, "GET", url, params=params) as response:
        if response.status_code != 200:
            body = await read_capped(response, _BLOCK)
            raise error_from_response(httpx.Response(
                response.status_code, headers={"retry-after": response.headers.get(
                    "retry-after", "")}, content=body))
        if response.is_stream_consumed:  # an in-memory transport's already-read body
            out.write(response.content)
            return
        inflater = inflater_for(response.headers.get("content-encoding", "").strip().lower())
        chunks = response.aiter_raw()
        pieces = chunks if inflater is None else inflate(chunks, inflater, _BLOCK)
        written = 0
        try:
            async for piece in pieces:
                written += len(piece)
                if written > RESULTS_FILE_MAX_BYTES:
                    raise refused(f"batch results file over {RESULTS_FILE_MAX_BYTES} bytes")
                out.write(piece)
        except httpx.HTTPError as exc:
            raise ProviderError(ErrorClass.CONNECTION, type(exc).__name__) from None


def result_lines(spooled: IO[bytes], max_line_bytes: int) -> Iterator[bytes | object]:
    """Each non-empty line; a line over ``max_line_bytes`` is skipped, yielding a marker."""
    while True:
        line = spooled.readline(max_line_bytes + 1)
        if not line:
            return
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            while (rest := spooled.readline(_BLOCK)) and not rest.endswith(b"\n"):
                pass
            log.warning("batch result line over %d bytes skipped", max_line_bytes)
            yield _MALFORMED
            continue
        if line.strip():
            yield line


def parse_line(line: bytes | object) -> object:
    """The JSON of one results line, or a marker when it is not JSON."""
    if not isinstance(line, bytes):
        return _MALFORMED
    try:
        return parse_json(line, "batch result line")
    except ProviderError as exc:
        log.warning("batch result line skipped: %s", exc)
        return _MALFORMED


def result_item(item: object, *, inline: bool) -> tuple[str, dict] | None:
    """(key, {"response": dict} or {"error": dict}); None for an item that names no row.

    Inline items carry the key in ``metadata.key``, file lines in ``key``. An item whose
    answer is not an object becomes an error for its row.
    """
    if not isinstance(item, dict):
        return None
    holder = item.get("metadata") if inline else item
    key = holder.get("key") if isinstance(holder, dict) else None
    if isinstance(key, bool) or not isinstance(key, str | int) or key == "":
        log.warning("batch result item without a key skipped")
        return None
    response, error = item.get("response"), item.get("error")
    if isinstance(response, dict):
        return str(key), {"response": response}
    if isinstance(error, dict):
        return str(key), {"error": error}
    return str(key), {"error": {"message": "malformed batch answer for this row"}}
