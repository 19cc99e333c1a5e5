"""Timestamps as Google APIs write them: ``2025-01-31T12:00:00.123456Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def rfc3339(epoch_s: float, plus_s: float = 0.0) -> str:
    """UTC RFC 3339 text of ``epoch_s + plus_s``."""
    moment = datetime.fromtimestamp(epoch_s, UTC) + timedelta(seconds=plus_s)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
