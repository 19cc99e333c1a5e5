"""Which fault (if any) a request gets: scripted faults first, then random ones."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping

from .config import SCRIPT_ENTRIES

OK = "ok"


class FaultPlan:
    """Scripted per-prompt fault queues plus seeded random faults; not thread-safe by itself."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._scripts: list[tuple[str, deque[str]]] = []

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence."""
        self._rng = random.Random(seed)

    def script(self, prompt_contains: str, faults: Iterable[str]) -> None:
        """Queue ``faults`` (kinds or "ok") for the next requests whose prompt has the substring."""
        entries = [str(f) for f in faults]
        unknown = set(entries) - SCRIPT_ENTRIES
        if unknown:
            raise ValueError(f"unknown scripted fault(s): {', '.join(sorted(unknown))}")
        if entries:
            self._scripts.append((prompt_contains, deque(entries)))

    def clear_scripts(self) -> None:
        """Drop all pending scripted faults."""
        self._scripts.clear()

    def pending(self) -> dict[str, list[str]]:
        """Scripted faults not consumed yet, by substring."""
        out: dict[str, list[str]] = {}
        for needle, queue in self._scripts:
            out.setdefault(needle, []).extend(queue)
        return out

    def pick(self, prompt: str, probabilities: Mapping[str, float]) -> tuple[str, bool]:
        """Return (kind or "ok", scripted?) for one request."""
        for index, (needle, queue) in enumerate(self._scripts):
            if needle in prompt:
                entry = queue.popleft()
                if not queue:
                    del self._scripts[index]
                return entry, True
        if probabilities:
            draw, total = self._rng.random(), 0.0
            for kind, p in probabilities.items():
                total += p
                if draw < total:
                    return kind, False
        return OK, False
