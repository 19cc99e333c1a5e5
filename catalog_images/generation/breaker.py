"""A circuit breaker per provider: stop sending to a failing provider, probe it back."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    """Closed: traffic flows. Open: none. Half-open: one probe at a time."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``consecutive_failures`` retryable failures in a row, or when the failure
    rate over the last ``window`` outcomes reaches ``failure_rate``; after ``cooldown_s`` one
    probe request is let through, and its success closes the breaker again.

    Final errors (safety, bad request) say nothing about the provider's health: they are
    recorded as successes. ``on_change`` hears "open" when traffic stops (not again for a
    failed probe) and "closed" when it flows again (the run's events).
    """

    def __init__(
        self, consecutive_failures: int = 5, window: int = 20, failure_rate: float = 0.6,
        cooldown_s: float = 5.0, clock=time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.consecutive_failures = consecutive_failures
        self.failure_rate = failure_rate
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._streak = 0
        self.state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_out = False
        self.opened_count = 0
        self.on_change = on_change

    def allow(self) -> bool:
        """May a request be sent now? (Moves open → half-open after the cooldown.)"""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            self.state = BreakerState.HALF_OPEN
            self._probe_out = False
        if self.state is BreakerState.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def release_probe(self) -> None:
        """Give back a half-open probe that was handed out but never sent."""
        if self.state is BreakerState.HALF_OPEN:
            self._probe_out = False

    def would_allow(self) -> bool:
        """What ``allow`` would answer now, without handing out the probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return self._clock() - self._opened_at >= self.cooldown_s
        return not self._probe_out

    @property
    def closed(self) -> bool:
        """True while traffic flows freely."""
        return self.state is BreakerState.CLOSED

    def seconds_until_probe(self) -> float:
        """How long until ``allow`` may say yes again."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self.cooldown_s - self._clock())
        return 0.0 if self.state is BreakerState.CLOSED else 0.2

    def record(self, healthy: bool) -> None:
        """Record the outcome of a request sent through this breaker."""
        self._outcomes.append(healthy)
        if self.state is BreakerState.OPEN:
            return  # an answer to a request sent before the breaker opened
        if healthy:
            self._streak = 0
            if self.state is BreakerState.HALF_OPEN:
                self.state = BreakerState.CLOSED
                self._outcomes.clear()
                self._tell("closed")
            return
        self._streak += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open()
            return
        full = len(self._outcomes) == self._outcomes.maxlen
        rate = self._outcomes.count(False) / len(self._outcomes)
        if self._streak >= self.consecutive_failures or (full and rate >= self.failure_rate):
            self._open()

    def _open(self) -> None:
        if self.state is BreakerState.CLOSED:
            self._tell("open")
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_out = False
        self.opened_count += 1

    def _tell(self, change: str) -> None:
        if self.on_change is not None:
            self.on_change(change)
