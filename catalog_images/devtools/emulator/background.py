"""Background coroutines of an app (task and batch lifecycles), cancelled on cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

BACKGROUND_KEY = web.AppKey("emulator_background", set)


def install(app: web.Application) -> None:
    """Give ``app`` a task set that is cancelled when the app shuts down (idempotent)."""
    if BACKGROUND_KEY in app:
        return
    app[BACKGROUND_KEY] = set()
    app.on_cleanup.append(_cancel_all)


def spawn(app: web.Application, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run ``coro`` on the server loop, keeping a reference until it finishes."""
    tasks: set[asyncio.Task[None]] = app[BACKGROUND_KEY]
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def _cancel_all(app: web.Application) -> None:
    tasks: set[asyncio.Task[None]] = app[BACKGROUND_KEY]
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
