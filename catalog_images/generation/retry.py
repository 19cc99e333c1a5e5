"""Retry timing: exponential backoff with full jitter, bounded, honouring server hints."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a row is retried after retryable errors."""

    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    hint_jitter_s: float = 0.25  # spread added to a server-given delay so waiters don't stampede
    max_provider_wait_s: float = 300.0  # a row's patience while every provider is unavailable
    max_retry_hint_s: float = 120.0  # a longer server hint: the provider is out for now
    row_deadline_s: float = 3600.0  # a row ends by then, with an image or not

    def delay(self, attempt: int, hint_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if hint_s is not None:
            return min(self.max_delay_s, hint_s) + rng.uniform(0, self.hint_jitter_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)  # "equal jitter": never zero, never over cap
