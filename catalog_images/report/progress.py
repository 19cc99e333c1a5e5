"""Process-local progress events, so a terminal or a UI artifact can follow a run."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Listener = Callable[["RunProgress"], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    """Call ``listener`` with the progress of every run in this process as it changes."""
    _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


@dataclass
class RunProgress:
    """Counts of a running flow, updated as rows finish."""

    run_id: str
    total: int = 0  # rows accepted for generation
    done: int = 0
    counts: Counter = field(default_factory=Counter)
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    phase: str = "planning"

    def publish(self) -> None:
        """Tell every listener."""
        for listener in list(_listeners):
            listener(self)

    def record(self, status: str, cost_usd: float) -> None:
        """One more row finished."""
        self.done += 1
        self.counts[status] += 1
        self.cost_usd += cost_usd
        self.publish()

    @property
    def fraction(self) -> float:
        """Share of accepted rows finished, 0..1."""
        return self.done / self.total if self.total else 1.0

    def line(self) -> str:
        """One log line for the story of the run."""
        elapsed = time.monotonic() - self.started
        rate = self.counts["succeeded"] / elapsed if elapsed > 0 else 0.0
        return (
            f"progress: {self.done}/{self.total} rows done ({self.counts['succeeded']} ok, "
            f"{self.counts['failed']} failed), {rate:.1f} images/s, ${self.cost_usd:.2f} so far"
        )
