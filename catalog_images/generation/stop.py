"""Stopping a run without wasting paid images.

The first SIGINT (Ctrl-C) or SIGTERM (``kill``, a container stop, a Prefect cancellation)
starts no new provider request: requests in flight finish, their images are spooled and
uploaded, rows not started end ``skipped`` (reason ``stopped``) and the report is written.
A second signal stops the process as it would have stopped without this module. Only
SIGKILL, or a power cut, can still lose an answer the provider has billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Whether the run was asked to stop, and by which signal."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def set(self, signal_name: str) -> None:
        """Ask the run to stop (call on its event loop); tell the listeners."""
        self.signal_name = self.signal_name or signal_name
        self._event.set()
        for listener in self._listeners:
            listener()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the event loop) when a stop is requested, e.g. to wake rows
        waiting at a provider gate so they leave at once."""
        self._listeners.append(listener)

    async def wait(self) -> None:
        """Return once a stop was requested."""
        await self._event.wait()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a stop is requested meanwhile."""
        if seconds <= 0 or self.requested:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest, logger: logging.Logger | logging.LoggerAdapter,
                    in_flight: Callable[[], int] = lambda: 0) -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into ``stop`` while the block runs; restore after.

    Signal handlers belong to the main thread: elsewhere (a Dask worker) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def restore() -> None:
        for number, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(number, handler)

    def on_signal(number: int, frame) -> None:
        name = signal.Signals(number).name
        if stop.requested:  # the second one: stop the way the process would have
            restore()
            signal.raise_signal(number)
            return
        stop.signal_name = name
        loop.call_soon_threadsafe(announce, name)  # no logging inside a signal handler

    def announce(name: str) -> None:
        stop.set(name)
        logger.warning("%s: no new provider request starts; the %d in flight finish and "
                       "are uploaded, then the report is written. Send it again to stop "
                       "at once (answers in flight would be paid and lost).", name, in_flight())

    for number in STOP_SIGNALS:
        signal.signal(number, on_signal)
    try:
        yield
    finally:
        restore()
