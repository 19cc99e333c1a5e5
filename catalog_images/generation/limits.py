"""Client-side limits per provider: an adaptive in-flight window, requests per window and
per day, and pauses after 429s. One gate per provider, shared by every row of a run."""

from __future__ import annotations

import asyncio
import contextlib
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

    RAMP_GAP_S = 0.02  # slow start: one more slot this often while rows wait for one
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
        # Besides, while rows wait, one more slot every RAMP_GAP_S (``_ramp``): the first
        # round trip brings no answer to grow on, and a model beyond its capacity refuses the
        # extra request at once, before the next slot opens.
        self._slow_start = self.limit < max_concurrency
        self._ramping = False
        self.rpm = rpm
        self.window_s = window_s
        self.rpd = rpd
        self.global_limit = global_limit
        self.sent_today = 0
        self.in_flight = 0  # slots held: sending, or waiting for a rate token or a pause
        self.sending = 0  # requests past every wait: sent, or about to be
        self.waiting = 0  # rows queued for a slot: tells the flow when to feed more work
        self._waiters: deque[tuple[asyncio.Future, Callable[[], bool] | None]] = deque()
        self._nudge = asyncio.Event()  # set (and replaced) by interrupt()
        self._sent: deque[list] = deque()  # [send time, confirmed] per request in the window
        self._rate_lock = asyncio.Lock()
        self._paused_until = 0.0
        self._last_decrease = 0.0
        self._judge = OverloadJudge()
        self._next_growth = 0.0  # time.monotonic() of slow start's last paced slot
        self._paced = False  # slow start has grown by paced slots
        self._streak_from = self.limit  # the window when the current run of 503s began

    @property
    def daily_quota_left(self) -> bool:
        """False once the day's request budget is spent."""
        return self.rpd is None or self.sent_today < self.rpd

    def pause(self, seconds: float) -> None:
        """Send nothing new for ``seconds`` (after a 429 with a retry hint)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def on_success(self, admitted_at: float | None = None) -> None:
        """A healthy answer (of a request admitted at ``admitted_at``): grow the window by
        one per window's worth of successes (more slowly above a ceiling learnt from real
        overload); in slow start by one per success, paced (``_paced_growth``)."""
        self._judge.recent.add(False)
        if self.limit >= self.max_concurrency:
            return
        now = time.monotonic()
        if self._slow_start and self._paced_growth(now, admitted_at):
            return
        growth = 1.0 if self._slow_start else self._judge.growth(self.limit, now)
        self.limit = min(float(self.max_concurrency), self.limit + growth)
        self._wake()

    def _paced_growth(self, now: float, admitted_at: float | None) -> bool:
        """Slow start's extra slot, opened one round trip / window after the previous one
        rather than at once: answers that arrive together (a round of equal latencies)
        would otherwise send a whole window beyond a model's capacity before its first 503
        comes back. False when it cannot be paced (no round trip known, no event loop)."""
        if admitted_at is None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._paced = True
        gap = max(0.0, now - admitted_at) / max(1.0, self.limit)
        self._next_growth = max(now, self._next_growth) + gap
        loop.call_at(loop.time() + (self._next_growth - now), self._grow_one)
        return True

    def _grow_one(self) -> None:
        """One paced slow-start slot (nothing once slow start has ended)."""
        if self._slow_start and self.limit < self.max_concurrency:
            self.limit = min(float(self.max_concurrency), self.limit + 1.0)
            self._wake()

    def _start_ramp(self) -> None:
        """Open slow start's timed slots while rows queue (the ramp stops when none do)."""
        if self._slow_start and not self._ramping and self.limit < self.max_concurrency:
            self._ramping = True
            asyncio.get_running_loop().call_later(self.RAMP_GAP_S, self._ramp)

    def _ramp(self) -> None:
        """One timed slow-start slot, and the next one scheduled while rows still wait."""
        self._ramping = False
        if not self._waiters:
            return
        self._paced = True  # a crowd now means the level before it held
        self._grow_one()
        self._start_ramp()

    def on_unavailable(self, retry_after_s: float | None,
                       admitted_at: float | None = None) -> bool:
        """A 503 (of a request admitted at ``admitted_at``, the value ``slot`` gave): shrink the
        window only when 503s crowd the recent answers; honour a hint.

        True when the 503 is our own load (a crowd acted on), not the provider's health.
        """
        now = time.monotonic()
        if self._judge.recent.streak == 0 and not self._judge.ours(now, admitted_at):
            self._streak_from = self.limit  # the window when this run of 503s began
        shrink_to = None
        if self._slow_start and self._paced:
            shrink_to = self._streak_from - 1  # one slot at a time: the level before held
        # Slow start unpaced doubled the window in the last round trip: half is the last
        # window the model served whole (as TCP's ssthresh).
        decrease = 0.5 if self._slow_start else self.DECREASE_FACTOR
        window = self._judge.after_503(self.limit, now, decrease, admitted_at, shrink_to)
        if window is not None:
            self.limit, self._slow_start = window, False
        if retry_after_s:
            self.pause(retry_after_s)
        return self._judge.ours(now, admitted_at)

    def on_overload(self, retry_after_s: float | None) -> None:
        """A 429: shrink the window (at most once a second) and honour the hint."""
        now = time.monotonic()
        self._slow_start = False
        if now - self._last_decrease >= self.MIN_DECREASE_INTERVAL_S:
            self._last_decrease = now
            self.limit = max(1.0, self.limit * self.DECREASE_FACTOR)
        if retry_after_s:
            self.pause(retry_after_s)

    def interrupt(self) -> None:
        """Make every row waiting here ask its ``still_wanted`` again now (the run is
        stopping, or the provider went out): those no longer wanting a slot leave at once."""
        for waiter, wanted in list(self._waiters):
            if not waiter.done() and wanted is not None and not wanted():
                self._waiters.remove((waiter, wanted))
                waiter.set_exception(SlotDeclined())
        nudge, self._nudge = self._nudge, asyncio.Event()
        nudge.set()

    def _wake(self) -> None:
        """Hand free slots to waiters in arrival order (the slot is counted for them)."""
        while self._waiters and self.in_flight < int(self.limit):
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(time.monotonic())  # when the slot was granted

    async def _acquire(self, still_wanted: Callable[[], bool] | None,
                       deadline: float | None) -> float:
        """Take a slot; the ``time.monotonic()`` it was granted at."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return time.monotonic()
        waiter = asyncio.get_running_loop().create_future()
        entry = (waiter, still_wanted)
        self._waiters.append(entry)
        self._start_ramp()
        try:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            await asyncio.wait([waiter], timeout=timeout)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # the slot was handed over as we were cancelled
            elif entry in self._waiters:
                self._waiters.remove(entry)
            raise
        if not waiter.done():  # the row's deadline passed while it queued
            self._waiters.remove(entry)
            waiter.cancel()
            raise SlotDeclined()
        return waiter.result()  # raises SlotDeclined when interrupted

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    async def _sleep(self, seconds: float, deadline: float | None) -> None:
        """Sleep up to ``seconds``; less when interrupted; SlotDeclined past ``deadline``."""
        if deadline is not None:
            if time.monotonic() >= deadline:
                raise SlotDeclined()
            seconds = min(seconds, deadline - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._nudge.wait(), seconds)

    def _take_rate_token(self, now: float) -> float:
        """Take a token and return 0.0, or return the seconds until one may be taken."""
        if now < self._paused_until:
            return self._paused_until - now
        if self.rpm is None:
            return 0.0
        horizon = now - self.window_s - self.SAFETY_MARGIN_S
        while self._sent and self._sent[0][0] <= horizon:
            self._sent.popleft()
        if len(self._sent) < self.rpm:
            stamp = [now, False]
            self._sent.append(stamp)
            SEND_STAMP.set(stamp)
            return 0.0
        return self._sent[0][0] - horizon

    async def _wait_for_rate(self, still_wanted: Callable[[], bool] | None,
                             deadline: float | None) -> None:
        async with self._rate_lock:
            while True:
                if still_wanted is not None and not still_wanted():
                    raise SlotDeclined()
                wait = self._take_rate_token(time.monotonic())
                if wait <= 0:
                    break
                await self._sleep(wait, deadline)
        if self.global_limit:
            from prefect.concurrency.asyncio import rate_limit

            await rate_limit(self.global_limit, occupy=1, strict=False)

    @asynccontextmanager
    async def slot(self, still_wanted: Callable[[], bool] | None = None,
                   deadline: float | None = None):
        """Hold one in-flight slot and one rate token for the duration of a request; gives
        the ``time.monotonic()`` the slot was granted at (for ``on_unavailable``): the
        window the request was admitted under, whatever rate wait came after.

        ``still_wanted`` is asked once a slot is free, before any rate token is taken, after
        every rate wait (which can be long when paced or paused) and whenever ``interrupt``
        is called: when it says no, SlotDeclined is raised and nothing is counted (a no after
        the last rate wait leaves one token unused). Waits end with SlotDeclined at
        ``deadline`` (a ``time.monotonic()`` value). Raises ProviderError(DAILY_QUOTA) when
        the day's budget is spent.
        """
        if not self.daily_quota_left:
            raise ProviderError(ErrorClass.DAILY_QUOTA, "daily quota reached")
        self.waiting += 1
        try:
            granted_at = await self._acquire(still_wanted, deadline)
        finally:
            self.waiting -= 1
        try:
            await self._wait_for_rate(still_wanted, deadline)
            if still_wanted is not None and not still_wanted():
                raise SlotDeclined()
            if not self.daily_quota_left:
                raise ProviderError(ErrorClass.DAILY_QUOTA, "daily quota reached")
            self.sent_today += 1
            self.sending += 1
            try:
                yield granted_at
            finally:
                self.sending -= 1
        finally:
            self._release()
