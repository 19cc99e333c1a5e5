"""Build the aiohttp application: one shared core, one route module per wire format."""

from __future__ import annotations

from aiohttp import web

from . import (
    admin_routes,
    file_routes,
    gemini_batch_routes,
    gemini_files,
    gemini_routes,
    kie_routes,
    openai_routes,
)
from .core import EmulatorCore
from .http_util import CORE_KEY

MAX_REQUEST_BYTES = 128 * 1024 * 1024  # 14 reference images of 7 MB, base64-encoded


def _is_generation(request: web.Request) -> bool:
    """Synchronous generation calls, the ones that hold a model's capacity while served."""
    path = request.path
    return request.method == "POST" and (
        path.endswith(":generateContent") or path == "/v1/images/generations")


@web.middleware
async def count_serving(request: web.Request, handler):
    """Count generation requests in and out, so the core can apply ``max_concurrency``."""
    if not _is_generation(request):
        return await handler(request)
    core = request.app[CORE_KEY]
    core.serving_started()
    try:
        return await handler(request)
    finally:
        core.serving_ended()


def build_app(core: EmulatorCore) -> web.Application:
    """An application serving every wire format from ``core``.

    Each wire format is a module with ``add_routes(app)`` that reads ``app[CORE_KEY]``:
    Gemini native, Gemini Files + Batch Mode, OpenAI-compatible images, Kie-style tasks.
    Batch routes come before ``gemini_routes``, whose ``models/{model_action}`` is a catch-all.
    """
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[count_serving])
    app[CORE_KEY] = core
    gemini_files.add_routes(app)
    gemini_batch_routes.add_routes(app)
    gemini_routes.add_routes(app)
    openai_routes.add_routes(app)
    kie_routes.add_routes(app)
    file_routes.add_routes(app)
    admin_routes.add_routes(app)
    return app


def make_runner(core: EmulatorCore) -> web.AppRunner:
    """A runner tuned for load: no access log, hung handlers cancelled on disconnect."""
    return web.AppRunner(
        build_app(core),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=0.5,
    )
