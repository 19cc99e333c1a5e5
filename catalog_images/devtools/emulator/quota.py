"""Sliding-window request quota over accepted requests."""

from __future__ import annotations

import contextlib
from collections import deque


class SlidingWindowQuota:
    """Counts accepted requests in the last ``window_s`` seconds; not thread-safe by itself."""

    def __init__(self) -> None:
        self._accepted: deque[float] = deque()

    def try_acquire(self, now: float, limit: int, window_s: float) -> float:
        """Take a slot and return 0.0, or return the seconds until a slot frees (> 0)."""
        horizon = now - window_s
        while self._accepted and self._accepted[0] <= horizon:
            self._accepted.popleft()
        if len(self._accepted) < limit:
            self._accepted.append(now)
            return 0.0
        oldest_needed = self._accepted[len(self._accepted) - limit]
        return max(oldest_needed + window_s - now, 0.001)

    def release(self, stamp: float) -> None:
        """Give back a slot taken at ``stamp`` (a request that ended up as a 429)."""
        with contextlib.suppress(ValueError):
            self._accepted.remove(stamp)

    def clear(self) -> None:
        """Forget all accepted requests."""
        self._accepted.clear()
