"""Telling a model's real overload from background 503s.

Google's 503 ("the model is overloaded", "high demand") is global to the model: it arrives
at random whatever one client's concurrency, and shrinking the window for each one halves
throughput for nothing. A client beyond the model's capacity sees something else: its extra
requests come back 503 at once, again and again, so 503s crowd the recent answers. The
window therefore shrinks only when 503s are not rare among the last answers, and after such
a shrink it remembers the level as a ceiling it probes above only slowly, one slot at a
time, stepping back at the first sign of crowding.
"""

from __future__ import annotations

from collections import deque


class RecentAnswers:
    """The last ``size`` answers of a provider: 503 or not."""

    def __init__(self, size: int = 40) -> None:
        self._answers: deque[bool] = deque(maxlen=size)
        self.unavailable = 0
        self.streak = 0  # 503s in a row, up to the last answer

    def add(self, unavailable: bool) -> None:
        """Record one answer."""
        if len(self._answers) == self._answers.maxlen and self._answers[0]:
            self.unavailable -= 1
        self._answers.append(unavailable)
        self.unavailable += unavailable
        self.streak = self.streak + 1 if unavailable else 0

    def clear(self) -> None:
        """Forget them (after acting on them, so one burst is acted on once)."""
        self._answers.clear()
        self.unavailable = 0
        self.streak = 0


class OverloadJudge:
    """Decides what a 503 means for the window, from the recent answers and the ceiling.

    - Without a known ceiling, 503s shrink the window only when at least ``CROWDED`` of the
      last 40 answers were 503s or the last ``STREAK`` were: 5 % of random 503s reach that
      about once in 10,000 answers; a client beyond capacity within milliseconds, before
      the breaker's five in a row. Shrinks are at least ``SETTLE_S`` apart, enough for the
      requests already refused to come back, short enough to stop a storm.
    - 503s of requests admitted (given their slot) before the last shrink are our own load
      (``ours``), already acted on: they neither shrink the window again nor reach the
      caller's breaker. A 503 of a request admitted after it is new evidence (the window is
      still above capacity). Without that time, 503s answered within ``SETTLE_S`` of a
      shrink are ours.
    - A shrink makes the new window the ceiling for ``CEILING_MEMORY_S``: below it the window
      regrows as usual, above it by one slot per 8 windows of successes, and
      ``PROBE_FAILED`` 503s in a row while above it (a slot beyond capacity is refused again
      and again) put the window one below the refused level (the last level that held, at
      least the ceiling), make that the ceiling, renew its memory and halve the pace of the
      next probes (down to one slot per 256 windows).
    """

    CROWDED = 8
    STREAK = 4
    PROBE_FAILED = 2
    SETTLE_S = 0.05
    CEILING_MEMORY_S = 300.0
    SLOW_PROBE = 8
    SLOWEST_PROBE = 256

    def __init__(self) -> None:
        self.recent = RecentAnswers()
        self.ceiling: float | None = None
        self._ceiling_since = 0.0
        self._shrunk_at = float("-inf")
        self._probe_every = self.SLOW_PROBE  # windows of successes per slot above the ceiling

    def growth(self, limit: float, now: float) -> float:
        """How much one success grows a window of ``limit`` slots."""
        if self.ceiling is not None and now - self._ceiling_since > self.CEILING_MEMORY_S:
            self.ceiling = None
        if self.ceiling is None or limit < self.ceiling:
            return 1.0 / limit
        return 1.0 / (self._probe_every * limit)

    def ours(self, now: float, admitted_at: float | None = None) -> bool:
        """Is a 503 answered now, of a request admitted at ``admitted_at``, part of a crowd
        we caused and acted on?"""
        if admitted_at is not None:
            return admitted_at < self._shrunk_at
        return now - self._shrunk_at < self.SETTLE_S

    def after_503(self, limit: float, now: float, decrease: float,
                  admitted_at: float | None = None,
                  shrink_to: float | None = None) -> float | None:
        """The window after a 503 (of a request admitted at ``admitted_at``, when known), or
        None when it stays as it is; a crowd shrinks it to ``shrink_to`` when the caller
        knows the last level that held, else by ``decrease``."""
        if self.ours(now, admitted_at):
            return None  # the rest of a crowd already acted on
        self.recent.add(True)
        ceiling = self.ceiling
        if ceiling is not None and int(limit) > int(ceiling):
            if self.recent.streak >= self.PROBE_FAILED:
                self.ceiling = max(ceiling, float(int(limit) - 1))  # the last level that held
                self.recent.clear()  # a crowd at the ceiling itself is new evidence
                self._shrunk_at = self._ceiling_since = now
                self._probe_every = min(self.SLOWEST_PROBE, self._probe_every * 2)
                return self.ceiling
            return None
        if self.recent.unavailable < self.CROWDED and self.recent.streak < self.STREAK:
            return None
        if limit < 2:
            return None  # one request at a time cannot crowd a model: the provider is failing
        self.recent.clear()
        shrunk = float(max(1, int(limit * decrease if shrink_to is None else shrink_to)))
        self.ceiling, self._ceiling_since, self._shrunk_at = shrunk, now, now
        self._probe_every = self.SLOW_PROBE
        return shrunk
