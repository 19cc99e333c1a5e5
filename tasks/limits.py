"""Client-side limits per provider: concurrency, requests per window, pauses after 429s."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import asynccontextmanager


class ProviderGate:
    """Admits one request at a time into a provider's concurrency and rate budget.

    Shared by every row of a run in this process. The rate window is a sliding log of send
    times, so a configured RPM that matches the real quota is used fully without 429s.
    """

    SAFETY_MARGIN_S = 0.05  # requests arrive later than they leave; keep the window honest

    def __init__(
        self, max_concurrency: int, rpm: int | None = None, window_s: float = 60.0
    ) -> None:
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.window_s = window_s
        self._slots = asyncio.Semaphore(max_concurrency)
        self._sent: deque[float] = deque()
        self._rate_lock = asyncio.Lock()
        self._paused_until = 0.0
        self.in_flight = 0
        self.waiting = 0  # rows queued for a slot: tells the flow when to feed more work

    def pause(self, seconds: float) -> None:
        """Send nothing new for ``seconds`` (after a 429 with a retry hint)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def _wait_for_rate(self) -> None:
        async with self._rate_lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self.rpm is None:
                    return
                horizon = now - self.window_s - self.SAFETY_MARGIN_S
                while self._sent and self._sent[0] <= horizon:
                    self._sent.popleft()
                if len(self._sent) < self.rpm:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] - horizon)

    @asynccontextmanager
    async def slot(self):
        """Hold one concurrency slot and one rate token for the duration of a request."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await self._wait_for_rate()
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1
        finally:
            self._slots.release()
