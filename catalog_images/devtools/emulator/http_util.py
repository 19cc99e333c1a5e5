"""Small aiohttp helpers shared by the route modules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .core import EmulatorCore

CORE_KEY = web.AppKey("emulator_core", EmulatorCore)
BILLED_FAULTS = frozenset(("ok", "wrong_shape"))  # an intact image is delivered and billed


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


def bearer_token(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer TOKEN`` header, or ""."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def gemini_keys(request: web.Request) -> list[str]:
    """Keys in every form Gemini endpoints accept: x-goog-api-key, Bearer, ``?key=``."""
    header = request.headers.get("x-goog-api-key", "")
    return [header, bearer_token(request), request.query.get("key", "")]


def origin(request: web.Request) -> str:
    """``http://HOST:PORT`` as the client addressed this server."""
    return str(request.url.origin())


def file_url(base: str, name: str) -> str:
    """Download URL of a file published by the core (served without auth)."""
    return f"{base}/_emulator/files/{name}"


def abort(request: web.Request) -> web.Response:
    """Drop the connection without an answer (the "reset" fault)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()  # nothing reaches the client: the write fails silently


async def answer(
    request: web.Request,
    core: EmulatorCore,
    status: int,
    body: Any,
    outcome: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Count and send a response whose delivery does not matter for billing."""
    core.count_outcome(outcome)
    core.count_status(status)
    return (await send_json(request, status, body, headers))[0]


async def answer_image(
    request: web.Request,
    core: EmulatorCore,
    body: Any,
    fault: str,
    bill: tuple[str, str, str],
    usage: dict[str, Any] | None = None,
) -> web.StreamResponse:
    """Send a 200 image answer, or its malformed/faulty variant, billing only a delivery.

    ``bill`` is (prompt, model, image size); ``usage`` the answer's ``usageMetadata`` for the
    token ledger. The charge is recorded before writing so the ledger is current when the
    client holds the response, and refunded if the connection is gone or the write fails.
    """
    if fault == "malformed":
        text = dump_json(body)
        return await answer(request, core, 200, text[: len(text) // 2], fault)
    if fault not in BILLED_FAULTS:
        return await answer(request, core, 200, body, fault)
    core.count_outcome(fault)
    core.count_status(200)
    transport = request.transport
    if transport is None or transport.is_closing():
        return web.Response()
    usd = core.bill(*bill)
    core.bill_tokens(bill[1], usage)
    response, delivered = await send_json(request, 200, body)
    if not delivered:
        core.refund(*bill, usd)
        core.bill_tokens(bill[1], usage, count=-1)
    return response
