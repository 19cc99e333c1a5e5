"""``GET /_emulator/files/{name}``: images published for URL-style results (no auth)."""

from __future__ import annotations

from aiohttp import web

from .http_util import CORE_KEY, dump_json


def add_routes(app: web.Application) -> None:
    """Register the download route of published files."""
    app.router.add_get("/_emulator/files/{name}", _download)


async def _download(request: web.Request) -> web.Response:
    found = request.app[CORE_KEY].published(request.match_info["name"])
    if found is None:
        body = dump_json({"error": "file not found (unknown or evicted)"})
        return web.Response(status=404, body=body, content_type="application/json")
    return web.Response(body=found.data, content_type=found.content_type)
