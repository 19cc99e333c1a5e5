"""Run the emulator: in a background thread (``Emulator``) or blocking (``run_server``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .app import make_runner
from .config import EmulatorConfig
from .core import EmulatorCore
from .second_host import build_second_host


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start_sites(core: EmulatorCore, host: str, port: int,
                       second_host: bool) -> tuple[list[web.AppRunner], int]:
    """The provider site (and the second host on a free port, when asked)."""
    runner, bound = await _start_site(core, host, port)
    if not second_host:
        return [runner], bound
    try:
        cdn, cdn_port = await _start_site(core, host, 0, build_second_host(core))
    except BaseException:
        await runner.cleanup()
        raise
    core.cdn_origin = _url(host, cdn_port)
    return [runner, cdn], bound


async def _start_site(core: EmulatorCore, host: str, port: int,
                      app: web.Application | None = None) -> tuple[web.AppRunner, int]:
    runner = make_runner(core) if app is None else web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


class Emulator:
    """An in-process emulator server on its own event loop thread."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.core = EmulatorCore(config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0,
              second_host: bool = False) -> Self:
        """Serve on host:port (0 = a free port); returns once connections are accepted.

        ``second_host`` also starts the CDN-like second host (second_host.py) on a free port.
        """
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._host = host
        self._thread = threading.Thread(
            target=self._run,
            args=(host, port, ready, failure, second_host),
            name="gemini-emulator",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("emulator did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def _run(
        self, host: str, port: int, ready: threading.Event, failure: list[BaseException],
        second_host: bool,
    ) -> None:
        async def serve() -> None:
            try:
                runners, self._port = await _start_sites(self.core, host, port, second_host)
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            ready.set()
            try:
                await self._stopping.wait()
            finally:
                for runner in runners:
                    await runner.cleanup()

        asyncio.run(serve())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread (in-flight requests get ~0.5 s)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        self._thread = self._loop = self._stopping = None
        self._port = None

    def __enter__(self) -> Self:
        return self if self._thread is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- address -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("emulator is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        return _url(self._host, self.port)

    # ---- control (thread-safe) -----------------------------------------------------------
    @property
    def config(self) -> EmulatorConfig:
        return self.core.config

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change configuration fields at runtime."""
        return self.core.configure(**changes)

    def script(self, prompt_contains: str, faults: Iterable[str]) -> None:
        """Next requests whose prompt contains the substring get these faults ("ok" allowed)."""
        self.core.script(prompt_contains, faults)

    def clear_scripts(self) -> None:
        self.core.clear_scripts()

    def warm(self, sizes: Iterable[tuple[str, str]]) -> None:
        """Pre-build images for (imageSize, aspectRatio) pairs so first requests are fast."""
        self.core.warm(sizes)

    @property
    def second_host_url(self) -> str | None:
        """``http://HOST:PORT`` of the second host, None when it does not listen."""
        return self.core.cdn_origin

    def foreign_requests(self) -> list[dict[str, Any]]:
        """Requests the second host got: ``{"method", "path", "headers"}``, oldest first."""
        return self.core.foreign_requests()

    def ledger(self) -> dict[str, Any]:
        """Billed images: ``{"images", "usd", "by_prompt": {sha256: n}, "by_mode", ...}``."""
        return self.core.ledger()

    def duplicates(self) -> dict[str, int]:
        """Prompts (sha256 hex) billed more than once."""
        return self.core.duplicates()

    def stats(self) -> dict[str, Any]:
        """Request counters: total, by status, by outcome, quota_429, injected by kind."""
        return self.core.stats()

    def reset_counters(self) -> None:
        """Clear ledger, stats and quota window."""
        self.core.reset_counters()


def run_server(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 8000,
    second_host: bool = False,
) -> None:
    """Serve until Ctrl-C or SIGTERM (blocking); prints the base URL once ready."""
    core = EmulatorCore(config)

    async def serve() -> None:
        runners, bound = await _start_sites(core, host, port, second_host)
        done = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
        print(f"Gemini emulator listening on {_url(host, bound)}", flush=True)
        if core.cdn_origin:
            print(f"second host (result files) listening on {core.cdn_origin}", flush=True)
        try:
            await done.wait()
        finally:
            for runner in runners:
                await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    print("Gemini emulator stopped", flush=True)
