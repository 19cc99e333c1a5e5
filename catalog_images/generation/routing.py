"""Which provider serves a row: ordered routes per row class, health, daily budgets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.outage import ProviderOut
from catalog_images.providers.base import ImageProvider
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError

PRIORITY_ROUTE, BULK_ROUTE = "priority", "bulk"


@dataclass
class ProviderStats:
    """What one provider did during a run."""

    requests: int = 0
    images: int = 0
    rate_limited: int = 0
    retries: int = 0
    failovers_in: int = 0
    failovers_out: int = 0
    breaker_opened: int = 0
    cost_usd: float = 0.0
    first_send: float | None = None  # wall-clock times, so shards on other hosts merge
    last_send: float | None = None
    latencies: list[float] = field(default_factory=list)
    out: str | None = None  # why the provider took no new request from some point on
    rows_left: int = 0  # rows that ended without an image because it was out

    def sent(self, now: float) -> None:
        """Count one request leaving now."""
        self.requests += 1
        if self.first_send is None:
            self.first_send = now
        self.last_send = now

    def merge(self, other: ProviderStats) -> None:
        """Add another process's stats for the same provider (a shard of the run)."""
        for name in ("requests", "images", "rate_limited", "retries", "failovers_in",
                     "failovers_out", "breaker_opened", "cost_usd", "rows_left"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.out = self.out or other.out
        sends = [t for t in (self.first_send, other.first_send) if t is not None]
        self.first_send = min(sends) if sends else None
        lasts = [t for t in (self.last_send, other.last_send) if t is not None]
        self.last_send = max(lasts) if lasts else None
        self.latencies.extend(other.latencies)

    def quota_utilization(self, rpm: int | None, window_s: float) -> float | None:
        """Requests sent ÷ the most the quota allows over the same span (≤ 1 when honoured).

        Over a span S, a quota of R requests per window W admits at most R·(S/W + 1).
        """
        if not rpm or self.first_send is None or self.last_send is None:
            return None
        span = self.last_send - self.first_send
        return round(self.requests / (rpm * (span / window_s + 1)), 4)

    def summary(self) -> dict:
        """JSON-ready totals for the report."""
        lat = np.array(self.latencies) if self.latencies else None
        return {
            "requests": self.requests, "images": self.images, "429s": self.rate_limited,
            "retries": self.retries, "failovers_in": self.failovers_in,
            "failovers_out": self.failovers_out, "breaker_opened": self.breaker_opened,
            "cost_usd": round(self.cost_usd, 6),
            "busy_s": round(self.last_send - self.first_send, 3) if self.first_send else None,
            "latency_p50_s": round(float(np.percentile(lat, 50)), 3) if lat is not None else None,
            "latency_p95_s": round(float(np.percentile(lat, 95)), 3) if lat is not None else None,
            "out": self.out, "rows_left": self.rows_left,
        }


@dataclass
class ProviderRuntime:
    """A provider as the run sees it: config, client, gate, breaker and stats."""

    config: ProviderConfig
    client: ImageProvider
    gate: ProviderGate
    breaker: CircuitBreaker
    stats: ProviderStats = field(default_factory=ProviderStats)
    out: ProviderOut | None = None  # out for every model
    model_outs: dict[str, ProviderOut] = field(default_factory=dict)  # out for one model

    @property
    def name(self) -> str:
        """The provider's configured name."""
        return self.config.name

    def out_now(self, model: str | None = None) -> ProviderOut | None:
        """The out that holds for a row asking for ``model`` (None: the provider's default):
        the provider's own, else that model's; None when the row may be sent."""
        now = time.monotonic()
        for out in (self.out, self.model_outs.get(self.config.model_for(model))):
            if out is not None and out.active(now):
                return out
        return None

    def available(self, model: str | None = None) -> bool:
        """Has daily budget left and is not out (for ``model``); the breaker is asked
        separately (it may hand out a probe)."""
        return self.gate.daily_quota_left and self.out_now(model) is None

    def take_out(self, out: ProviderOut) -> bool:
        """Put the provider, or its model ``out.model``, out (the longer out wins); True when
        it was not out before. Rows waiting for its slots are woken to go elsewhere or end.
        """
        current = self.model_outs.get(out.model) if out.model else self.out
        was_in = current is None or not current.active()
        if was_in or out.until is None or (current.until is not None
                                           and out.until > current.until):
            if out.model:
                self.model_outs[out.model] = out
            else:
                self.out = out
        if was_in and out.message not in (self.stats.out or ""):
            self.stats.out = f"{self.stats.out}; {out.message}" if self.stats.out else out.message
        self.gate.interrupt()
        return was_in


class Router:
    """Ordered provider lists per row class; the first healthy provider with budget wins."""

    def __init__(self, runtimes: dict[str, ProviderRuntime], routes: dict[str, list[str]]):
        self.runtimes = runtimes
        self.routes = routes

    def route_for(self, priority: str | None) -> list[ProviderRuntime]:
        """Providers for a row, in order: the priority route for high-priority rows."""
        name = PRIORITY_ROUTE if priority == "high" and self.routes.get(PRIORITY_ROUTE) else (
            BULK_ROUTE)
        return [self.runtimes[n] for n in self.routes[name]]

    def choose(self, route: list[ProviderRuntime],
               model: str | None = None) -> ProviderRuntime | None:
        """The first provider of ``route`` that has budget (for ``model``) and whose breaker
        lets a call by."""
        for runtime in route:
            if runtime.available(model) and runtime.breaker.allow():
                return runtime
        return None

    @staticmethod
    def exhausted(route: list[ProviderRuntime], model: str | None = None) -> bool:
        """True when no provider of ``route`` has daily budget left (for ``model``)."""
        return not any(r.available(model) for r in route)

    @staticmethod
    def out_error(route: list[ProviderRuntime], model: str | None = None
                  ) -> tuple[ProviderRuntime, ProviderError] | None:
        """When every provider of ``route`` is out (for ``model``) or out of daily budget: the
        first one that is out and the error its rows end with; else None."""
        if not Router.exhausted(route, model):
            return None
        for runtime in route:
            out = runtime.out_now(model)
            if out is not None:
                return runtime, out.row_error()
        return route[0], ProviderError(
            ErrorClass.DAILY_QUOTA, "daily quota (requests_per_day used on every provider of "
            "the route)")

    def interrupt_all(self) -> None:
        """Wake every row waiting at a gate to ask again whether it still wants the slot."""
        for runtime in self.runtimes.values():
            runtime.gate.interrupt()

    @staticmethod
    def wait_hint(route: list[ProviderRuntime], model: str | None = None) -> float:
        """Seconds until some provider of ``route`` may take a probe."""
        waits = [r.breaker.seconds_until_probe() for r in route if r.available(model)]
        return max(0.05, min(waits)) if waits else 0.0

    def summary(self) -> dict:
        """Per-provider stats for the report."""
        return summarize_providers(self.stats(), {n: r.config for n, r in self.runtimes.items()})

    def stats(self) -> dict[str, ProviderStats]:
        """Each provider's stats, breaker openings included."""
        for runtime in self.runtimes.values():
            runtime.stats.breaker_opened = runtime.breaker.opened_count
        return {name: runtime.stats for name, runtime in self.runtimes.items()}


def summarize_providers(stats: dict[str, ProviderStats],
                        configs: dict[str, ProviderConfig]) -> dict:
    """Per-provider report entries, quota utilization measured against each config."""
    out = {}
    for name, provider_stats in stats.items():
        summary = provider_stats.summary()
        config = configs[name]
        summary["quota_utilization"] = provider_stats.quota_utilization(
            config.requests_per_window, config.window_s)
        out[name] = summary
    return out
