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
    return plan.list_cost(provider, batch=True)


def _route_of(priority: str, routes: dict[str, list[ProviderConfig]],
              batch: bool) -> list[ProviderConfig]:
    if priority == "high" and routes.get("priority") and not batch:
        return routes["priority"]
    return routes["bulk"]


def estimate(plan: PlanSummary, routes: dict[str, list[ProviderConfig]],
             concurrency: int, mode: str = "standard") -> dict:
    """Projected rows, cost by provider, resolution and model, and duration; no request.

    Each row is priced at the first provider of its route (high-priority rows take the
    priority route when there is one) at the list price of the row's model; ``cost_basis``
    says per provider whether it bills usage (then the list price is a floor) or per image.
    The duration is the slowest provider's share. In batch mode every row goes to the bulk
    route's first provider at its batch price, and the duration is the provider's (its
    target is 24 h), not ours to project.
    """
    batch = mode == "batch"
    cost_by: dict[str, dict[str, float]] = {"provider": {}, "resolution": {}, "model": {}}
    rows_by_provider: dict[str, int] = {}
    configs: dict[str, ProviderConfig] = {}
    for priority, by_model in plan.by_priority_model.items():
        provider = _route_of(priority, routes, batch)[0]
        configs[provider.name] = provider
        for model, by_resolution in by_model.items():
            for resolution, count in by_resolution.items():
                cost = count * provider.image_price(resolution, model or None, batch)
                for table, key in (("provider", provider.name), ("resolution", resolution),
                                   ("model", provider.model_for(model or None))):
                    cost_by[table][key] = cost_by[table].get(key, 0.0) + cost
                rows_by_provider[provider.name] = rows_by_provider.get(provider.name, 0) + count
    duration = max((n / provider_rate(configs[name], concurrency)
                    for name, n in rows_by_provider.items()), default=0.0)
    return {
        "mode": mode,
        "rows": plan.rows, "to_generate": plan.to_generate, "unchanged": plan.unchanged,
        "rejected": plan.rejected, "removed": plan.removed,
        "cost_usd": round(sum(cost_by["provider"].values()), 4),
        **{f"cost_by_{table}": {k: round(v, 4) for k, v in sorted(costs.items())}
           for table, costs in cost_by.items()},
        "cost_basis": {name: config.cost_basis() for name, config in sorted(configs.items())},
        "rows_by_provider": dict(sorted(rows_by_provider.items())),
        "duration_s": None if batch else round(duration, 1),
        **({"duration_note": "Batch Mode: the provider's target is 24 h"} if batch else {}),
    }
