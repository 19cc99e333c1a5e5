"""Control routes under ``/_emulator/`` for an emulator running as a separate process."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .http_util import CORE_KEY, dump_json


def add_routes(app: web.Application) -> None:
    """Register health, ledger, duplicates, stats, config, script and reset routes."""
    app.router.add_get("/_emulator/health", _health)
    app.router.add_get("/_emulator/ledger", _ledger)
    app.router.add_get("/_emulator/duplicates", _duplicates)
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_get("/_emulator/config", _get_config)
    app.router.add_post("/_emulator/config", _post_config)
    app.router.add_get("/_emulator/script", _get_scripts)
    app.router.add_post("/_emulator/script", _post_script)
    app.router.add_post("/_emulator/reset", _reset)
    app.router.add_get("/_emulator/foreign", _foreign)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dump_json(body), content_type="application/json")


async def _read_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def _health(request: web.Request) -> web.Response:
    return _json({"ok": True})


async def _ledger(request: web.Request) -> web.Response:
    return _json(request.app[CORE_KEY].ledger())


async def _duplicates(request: web.Request) -> web.Response:
    return _json(request.app[CORE_KEY].duplicates())


async def _stats(request: web.Request) -> web.Response:
    return _json(request.app[CORE_KEY].stats())


async def _foreign(request: web.Request) -> web.Response:
    """The second host's origin and every request it got, headers included."""
    core = request.app[CORE_KEY]
    return _json({"origin": core.cdn_origin, "requests": core.foreign_requests()})


async def _get_config(request: web.Request) -> web.Response:
    return _json(request.app[CORE_KEY].config.public_dict())


async def _post_config(request: web.Request) -> web.Response:
    """Body: JSON object of EmulatorConfig fields to change."""
    core = request.app[CORE_KEY]
    try:
        config = core.configure(**await _read_object(request))
    except (TypeError, ValueError) as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(config.public_dict())


async def _get_scripts(request: web.Request) -> web.Response:
    return _json(request.app[CORE_KEY].pending_scripts())


async def _post_script(request: web.Request) -> web.Response:
    """Body: ``{"prompt_contains": str, "faults": [kind | "ok", ...]}``."""
    body = await _read_object(request)
    needle, faults = body.get("prompt_contains"), body.get("faults")
    if not isinstance(needle, str) or not isinstance(faults, list):
        return _json({"error": "expected prompt_contains (string) and faults (list)"}, 400)
    try:
        request.app[CORE_KEY].script(needle, faults)
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json({"ok": True, "pending": request.app[CORE_KEY].pending_scripts()})


async def _reset(request: web.Request) -> web.Response:
    """Clear ledger, stats and quota window; ``{"scripts": true}`` also drops scripts."""
    core = request.app[CORE_KEY]
    core.reset_counters()
    if (await _read_object(request)).get("scripts"):
        core.clear_scripts()
    return _json({"ok": True})
