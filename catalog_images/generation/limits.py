"""Client-side limits per provider: an adaptive in-flight window, requests per window and
per day, and pauses after 429s. One gate per provider, shared by every row of a run."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from contextlib import asynccontextmanager

from catalog_images.generation.overload import OverloadJudge
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.send_stamp import SEND_STAMP


class SlotDeclined(Exception):  # noqa: N818 - a signal, not an error
    """The caller no longer wants this provider once its turn came (it turned unhealthy)."""


class ProviderGate:
    """Admits requests into a provider's concurrency, rate and daily budgets.

    The in-flight window adapts (AIMD): 429s shrink it, healthy answers grow it back up to
    ``max_concurrency``; 503s shrink it only when they crowd the recent answers, as a model
    beyond its capacity answers, not when they are background noise (generation/overload.py).
    The rate window is a sliding log of send times, so a configured RPM equal to the real
    quota is used fully without a 429.
    """

    SAFETY_MARGIN_S = 0.05  # requests arrive later than they leave; keep the window honest
    DECREASE_FACTOR = 0.7
    MIN_DECREASE_INTERVAL_S = 1.0

    def __init__(
        self, max_concurrency: int, rpm: int | None = None, window_s: float = 60.0,
        rpd: int | None = None, global_limit: str | None = None,
        initial_window: int | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.limit = float(min(max_concurrency, initial_window or max_concurrency))
        # Slow start: from a small first window, one more slot per success (doubling each
        # round trip) until the maximum or the first sign of overload, so a model whose
        # capacity is below our concurrency is not met with a wall of requests it refuses.
        self._slow_start = self.limit < max_concurrency
        self.rpm = rpm
        self.window_s = window_s
        self.rpd = rpd
        self.global_limit = global_limit
        self.sent_today = 0
        self.in_flight = 0
        self.waiting = 0  # rows queued for a slot: tells the flow when to feed more work
        self._waiters: deque[asyncio.Future] = deque()
        self._sent: deque[list] = deque()  # [send time, confirmed] per request in the window
        self._rate_lock = asyncio.Lock()
        self._paused_until = 0.0
        self._last_decrease = 0.0
        self._judge = OverloadJudge()

    @property
    def daily_quota_left(self) -> bool:
        """False once the day's request budget is spent."""
        return self.rpd is None or self.sent_today < self.rpd

    def pause(self, seconds: float) -> None:
        """Send nothing new for ``seconds`` (after a 429 with a retry hint)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def on_success(self) -> None:
        """A healthy answer: grow the window by one per window's worth of successes (more
        slowly above a ceiling learnt from real overload)."""
        self._judge.recent.add(False)
        if self.limit < self.max_concurrency:
            growth = 1.0 if self._slow_start else self._judge.growth(self.limit, time.monotonic())
            self.limit = min(float(self.max_concurrency), self.limit + growth)
            self._wake()

    def on_unavailable(self, retry_after_s: float | None) -> bool:
        """A 503: shrink the window only when 503s crowd the recent answers; honour a hint.

        True when the 503 is our own load (a crowd acted on), not the provider's health.
        """
        now = time.monotonic()
        window = self._judge.after_503(self.limit, now, self.DECREASE_FACTOR)
        if window is not None:
            self.limit, self._slow_start = window, False
        if retry_after_s:
            self.pause(retry_after_s)
        return self._judge.ours(now)

    def on_overload(self, retry_after_s: float | None) -> None:
        """A 429: shrink the window (at most once a second) and honour the hint."""
        now = time.monotonic()
        self._slow_start = False
        if now - self._last_decrease >= self.MIN_DECREASE_INTERVAL_S:
            self._last_decrease = now
            self.limit = max(1.0, self.limit * self.DECREASE_FACTOR)
        if retry_after_s:
            self.pause(retry_after_s)

    def _wake(self) -> None:
        """Hand free slots to waiters in arrival order (the slot is counted for them)."""
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    async def _acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over as we were cancelled
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    async def _wait_for_rate(self) -> None:
        async with self._rate_lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self.rpm is None:
                    break
                horizon = now - self.window_s - self.SAFETY_MARGIN_S
                while self._sent and self._sent[0][0] <= horizon:
                    self._sent.popleft()
                if len(self._sent) < self.rpm:
                    stamp = [now, False]
                    self._sent.append(stamp)
                    SEND_STAMP.set(stamp)
                    break
                await asyncio.sleep(self._sent[0][0] - horizon)
        if self.global_limit:
            from prefect.concurrency.asyncio import rate_limit

            await rate_limit(self.global_limit, occupy=1, strict=False)

    @asynccontextmanager
    async def slot(self, still_wanted: Callable[[], bool] | None = None):
        """Hold one in-flight slot and one rate token for the duration of a request.

        ``still_wanted`` is asked once a slot is free, before any rate token is taken: when
        it says no, SlotDeclined is raised and nothing is counted. It is asked again after
        the rate wait (which can be long when paced); a no then leaves one token unused.
        Raises ProviderError(DAILY_QUOTA) when the day's budget is spent.
        """
        if not self.daily_quota_left:
            raise ProviderError(ErrorClass.DAILY_QUOTA, "daily quota reached")
        self.waiting += 1
        try:
            await self._acquire()
        finally:
            self.waiting -= 1
        try:
            if still_wanted is not None and not still_wanted():
                raise SlotDeclined()
            await self._wait_for_rate()
            if still_wanted is not None and not still_wanted():
                raise SlotDeclined()
            if not self.daily_quota_left:
                raise ProviderError(ErrorClass.DAILY_QUOTA, "daily quota reached")
            self.sent_today += 1
            yield
        finally:
            self._release()
