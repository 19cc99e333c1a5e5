"""What a run would do and cost, from the plan and the providers' prices and limits alone."""

from __future__ import annotations

from catalog_images.catalog.plan import PlanSummary
from catalog_images.providers.config import ProviderConfig


def provider_rate(config: ProviderConfig, concurrency: int) -> float:
    """Images per second a provider sustains: the lower of its quota and its concurrency."""
    by_concurrency = min(concurrency, config.max_concurrency) / config.typical_latency_s
    if config.requests_per_window:
        return min(by_concurrency, config.requests_per_window / config.window_s)
    return by_concurrency


def batch_cost(plan: PlanSummary, provider: ProviderConfig) -> float:
    """What the plan's rows cost in Batch Mode (every row goes to ``provider``)."""
    return round(sum(n * provider.batch_price(res) for res, n in plan.by_resolution.items()), 6)


def estimate(plan: PlanSummary, routes: dict[str, list[ProviderConfig]],
             concurrency: int, mode: str = "standard") -> dict:
    """Projected rows, cost by provider and resolution, and duration, with no request sent.

    Each row is priced at the first provider of its route (high-priority rows take the
    priority route when there is one); the duration is the slowest provider's share. In
    batch mode every row goes to the bulk route's first provider at its batch price, and
    the duration is the provider's (its target is 24 h), not ours to project.
    """
    batch = mode == "batch"
    cost_by_provider: dict[str, float] = {}
    cost_by_resolution: dict[str, float] = {}
    rows_by_provider: dict[str, int] = {}
    for priority, by_resolution in plan.by_priority_resolution.items():
        route = routes.get("priority") if priority == "high" and routes.get("priority") and (
            not batch) else routes["bulk"]
        provider = route[0]
        for resolution, count in by_resolution.items():
            price = provider.batch_price(resolution) if batch else provider.prices.for_resolution(
                resolution)
            cost = count * price
            cost_by_provider[provider.name] = cost_by_provider.get(provider.name, 0.0) + cost
            cost_by_resolution[resolution] = cost_by_resolution.get(resolution, 0.0) + cost
            rows_by_provider[provider.name] = rows_by_provider.get(provider.name, 0) + count
    configs = {c.name: c for route in routes.values() for c in route}
    duration = max((n / provider_rate(configs[name], concurrency)
                    for name, n in rows_by_provider.items()), default=0.0)
    return {
        "mode": mode,
        "rows": plan.rows, "to_generate": plan.to_generate, "unchanged": plan.unchanged,
        "rejected": plan.rejected, "removed": plan.removed,
        "cost_usd": round(sum(cost_by_provider.values()), 4),
        "cost_by_provider": {k: round(v, 4) for k, v in sorted(cost_by_provider.items())},
        "cost_by_resolution": {k: round(v, 4) for k, v in sorted(cost_by_resolution.items())},
        "rows_by_provider": dict(sorted(rows_by_provider.items())),
        "duration_s": None if batch else round(duration, 1),
        **({"duration_note": "Batch Mode: the provider's target is 24 h"} if batch else {}),
    }
