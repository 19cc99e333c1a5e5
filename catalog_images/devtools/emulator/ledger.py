"""Billing ledger (delivered images only) and request counters."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any


def prompt_key(prompt: str) -> str:
    """Ledger key of a prompt: sha256 hex of its UTF-8 text."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def price_for(prices: dict[str, float], model: str, image_size: str) -> float:
    """Price of one image: ``MODEL:SIZE``, then ``MODEL``, then ``SIZE``; 0.0 when unlisted."""
    for key in (f"{model}:{image_size}", model, image_size):
        if key in prices:
            return prices[key]
    return 0.0


class Ledger:
    """What the emulated provider charged; not thread-safe by itself."""

    def __init__(self) -> None:
        self.images = 0
        self.usd = 0.0
        self.by_prompt: Counter[str] = Counter()
        self.usd_by_prompt: Counter[str] = Counter()
        self.by_size: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_mode: Counter[str] = Counter()

    def bill(
        self,
        prompt: str,
        model: str,
        image_size: str,
        usd: float,
        count: int = 1,
        mode: str = "standard",
    ) -> None:
        """Charge one delivered image (``count=-1`` refunds one that failed to go out).

        ``mode`` is the price list that billed it: ``"standard"`` or ``"batch"``.
        """
        key = prompt_key(prompt)
        self.images += count
        self.usd += usd * count
        self.by_prompt[key] += count
        self.usd_by_prompt[key] += usd * count
        self.by_size[image_size] += count
        self.by_model[model] += count
        self.by_mode[mode] += count
        counters = (
            self.by_prompt,
            self.usd_by_prompt,
            self.by_size,
            self.by_model,
            self.by_mode,
        )
        for counter in counters:
            for name in [k for k, v in counter.items() if v <= 0]:
                del counter[name]

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready copy: images, usd, by_prompt, usd_by_prompt, by_size, by_model, by_mode."""
        return {
            "images": self.images,
            "usd": round(self.usd, 6),
            "by_prompt": dict(self.by_prompt),
            "usd_by_prompt": {k: round(v, 6) for k, v in self.usd_by_prompt.items()},
            "by_size": dict(self.by_size),
            "by_model": dict(self.by_model),
            "by_mode": dict(self.by_mode),
        }

    def duplicates(self) -> dict[str, int]:
        """Prompts (sha256 hex) billed more than once, with their counts."""
        return {k: n for k, n in self.by_prompt.items() if n > 1}


class Stats:
    """Request counters; not thread-safe by itself."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_status: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.scripted = 0
        self.quota_429 = 0
        self.daily_429 = 0
        self.spend_429 = 0
        self.first_refusal_at: float | None = None  # wall time of the first day/spend 429
        self.capacity_503 = 0
        self.model_lookups: Counter[str] = Counter()  # models.get calls by status

    def refused(self, kind: str) -> None:
        """Count a per-day ("day") or spend-cap ("spend") 429."""
        if kind == "day":
            self.daily_429 += 1
        else:
            self.spend_429 += 1
        if self.first_refusal_at is None:
            self.first_refusal_at = time.time()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready copy of all counters."""
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "by_outcome": dict(self.by_outcome),
            "quota_429": self.quota_429,
            "daily_429": self.daily_429,
            "spend_429": self.spend_429,
            "first_refusal_at": self.first_refusal_at,
            "capacity_503": self.capacity_503,
            "model_lookups": dict(self.model_lookups),
            "injected": dict(self.injected),
            "scripted": self.scripted,
        }
