"""API-key check shared by the Gemini-format routes (generate, files, batches)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import gemini_response as wire
from .core import Auth, EmulatorCore
from .http_util import gemini_keys


def auth_error(core: EmulatorCore, request: web.Request) -> tuple[int, dict[str, Any]] | None:
    """(status, body) rejecting the request's key(s), or None when accepted."""
    auth = core.authenticate(gemini_keys(request))
    if auth is Auth.MISSING:
        return 403, wire.missing_key_body()
    if auth is Auth.INVALID:
        return 400, wire.api_key_invalid_body()
    return None


def not_found(what: str) -> tuple[int, dict[str, Any]]:
    """404 NOT_FOUND for a file or batch name."""
    return 404, wire.error_body(404, "NOT_FOUND", f"Requested entity was not found: {what}")


def invalid(message: str) -> tuple[int, dict[str, Any]]:
    """400 INVALID_ARGUMENT."""
    return 400, wire.error_body(400, "INVALID_ARGUMENT", message)
