"""``GET /_emulator/files/{name}``: images published for URL-style results (no auth), and
``GET /_emulator/redirect``: the ``url_redirect`` fault's answer (to the metadata address)."""

from __future__ import annotations

from aiohttp import web

from .hostile import LINK_LOCAL_URL
from .http_util import CORE_KEY, dump_json


def add_routes(app: web.Application) -> None:
    """Register the download route of published files and the redirecting route."""
    app.router.add_get("/_emulator/files/{name}", _download)
    app.router.add_get("/_emulator/redirect", _redirect)


async def _redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": LINK_LOCAL_URL})


async def _download(request: web.Request) -> web.Response:
    found = request.app[CORE_KEY].published(request.match_info["name"])
    if found is None:
        body = dump_json({"error": "file not found (unknown or evicted)"})
        return web.Response(status=404, body=body, content_type="application/json")
    return web.Response(body=found.data, content_type=found.content_type)
