"""Small aiohttp helpers shared by the route modules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .core import EmulatorCore

CORE_KEY = web.AppKey("emulator_core", EmulatorCore)


def dump_json(body: Any) -> bytes:
    """Compact UTF-8 JSON bytes."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def send_json(
    request: web.Request,
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
) -> tuple[web.Response, bool]:
    """Write a JSON response now; returns it and whether it reached the socket.

    ``body`` may be pre-encoded bytes (e.g. deliberately malformed JSON).
    """
    payload = body if isinstance(body, bytes) else dump_json(body)
    response = web.Response(
        status=status,
        body=payload,
        content_type="application/json",
        charset="UTF-8",
        headers=headers,
    )
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return response, False
    return response, True
