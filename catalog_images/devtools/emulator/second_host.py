"""The second host: a CDN-like server on its own port that serves result files and records
every request's headers, so a test can prove no provider key ever reached it.

When it listens, result URLs (async-task results, ``response_format=url``) point at it, as
real relays serve results from a CDN host that is not the API host.
"""

from __future__ import annotations

from aiohttp import web

from . import file_routes
from .core import EmulatorCore
from .http_util import CORE_KEY, dump_json


@web.middleware
async def _record(request: web.Request, handler) -> web.StreamResponse:
    request.app[CORE_KEY].record_foreign(request.method, request.path, dict(request.headers))
    return await handler(request)


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, body=dump_json({"error": "nothing here"}),
                        content_type="application/json")


def build_second_host(core: EmulatorCore) -> web.Application:
    """The second host's application: file downloads, the redirect, 404 for the rest."""
    app = web.Application(middlewares=[_record])
    app[CORE_KEY] = core
    file_routes.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
