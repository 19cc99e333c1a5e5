"""Routes, provider choice and per-provider statistics."""

from __future__ import annotations

import pytest

from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.routing import (
    ProviderRuntime,
    ProviderStats,
    Router,
    summarize_providers,
)
from catalog_images.providers.config import ProviderConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class NoClient:
    """Routing never calls the client."""

    name = model = "unused"


def runtime(name: str, clock: Clock, rpd: int | None = None, **fields) -> ProviderRuntime:
    config = ProviderConfig(name=name, kind="gemini", base_url="https://x.test", **fields)
    return ProviderRuntime(config, NoClient(), ProviderGate(4, rpd=rpd),
                           CircuitBreaker(consecutive_failures=1, cooldown_s=10.0, clock=clock))


def router(clock: Clock, routes: dict[str, list[str]] | None = None) -> Router:
    runtimes = {name: runtime(name, clock, rpd=2) for name in ("google", "relay", "spare")}
    return Router(runtimes, routes or {"priority": ["google", "relay"],
                                       "bulk": ["relay", "spare"]})


def names(route) -> list[str]:
    return [r.name for r in route]


def test_high_priority_rows_take_the_priority_route_when_there_is_one():
    clock = Clock()
    routed = router(clock)
    assert names(routed.route_for("high")) == ["google", "relay"]
    assert names(routed.route_for("low")) == names(routed.route_for(None)) == ["relay", "spare"]
    bulk_only = router(clock, {"priority": [], "bulk": ["spare"]})
    assert names(bulk_only.route_for("high")) == ["spare"]


def test_choose_skips_providers_without_daily_budget_or_with_an_open_breaker():
    clock = Clock()
    routed = router(clock)
    route = routed.route_for("high")
    assert routed.choose(route).name == "google"
    routed.runtimes["google"].gate.sent_today = 2  # its day is spent
    assert routed.choose(route).name == "relay"
    routed.runtimes["relay"].breaker.record(False)  # opens
    assert routed.choose(route) is None
    assert not routed.exhausted(route)  # relay still has budget, it is only resting
    routed.runtimes["relay"].gate.sent_today = 2
    assert routed.exhausted(route)


def test_a_half_open_breaker_hands_its_probe_to_one_row_only():
    clock = Clock()
    routed = router(clock)
    route = routed.route_for("low")
    routed.runtimes["relay"].breaker.record(False)
    clock.now = 10.0
    assert routed.choose(route).name == "relay"  # the probe
    assert routed.choose(route).name == "spare"  # the next row goes on


def test_wait_hint_is_the_nearest_probe_among_providers_with_budget():
    clock = Clock()
    routed = router(clock)
    route = routed.route_for("low")
    routed.runtimes["spare"].breaker.record(False)  # opens at t=0, probe at 10
    clock.now = 2.0
    routed.runtimes["relay"].breaker.record(False)  # opens at t=2, probe at 12
    clock.now = 4.0
    assert routed.wait_hint(route) == pytest.approx(6.0)
    clock.now = 9.99
    assert routed.wait_hint(route) == 0.05  # never a busy loop
    for name in ("relay", "spare"):
        routed.runtimes[name].gate.sent_today = 2
    assert routed.wait_hint(route) == 0.0


def test_stats_count_sends_and_merge_shards():
    first, second = ProviderStats(), ProviderStats()
    first.sent(100.0)
    first.sent(110.0)
    first.images, first.cost_usd, first.latencies = 2, 0.1, [1.0, 3.0]
    second.sent(90.0)
    second.rate_limited, second.cost_usd, second.latencies = 1, 0.05, [2.0]
    first.merge(second)
    assert (first.requests, first.images, first.rate_limited) == (3, 2, 1)
    assert first.cost_usd == pytest.approx(0.15)
    assert (first.first_send, first.last_send) == (90.0, 110.0)
    assert sorted(first.latencies) == [1.0, 2.0, 3.0]
    empty = ProviderStats()
    empty.merge(ProviderStats())
    assert empty.first_send is None and empty.last_send is None


def test_quota_utilization_compares_sends_with_what_the_quota_allows():
    stats = ProviderStats()
    for t in (0.0, 30.0, 60.0):
        stats.sent(t)
    # over 60 s a quota of 2 per 60 s admits 2 * (60/60 + 1) = 4 requests
    assert stats.quota_utilization(2, 60.0) == 0.75
    assert stats.quota_utilization(None, 60.0) is None
    assert ProviderStats().quota_utilization(2, 60.0) is None


def test_summary_reports_totals_and_latency_percentiles():
    stats = ProviderStats(images=4, cost_usd=0.1234567, latencies=[1.0, 2.0, 3.0, 4.0, 100.0])
    stats.sent(10.0)
    stats.sent(12.5)
    summary = stats.summary()
    assert summary["requests"] == 2 and summary["images"] == 4
    assert summary["cost_usd"] == 0.123457 and summary["busy_s"] == 2.5
    assert summary["latency_p50_s"] == 3.0 and summary["latency_p95_s"] == pytest.approx(80.8)
    idle = ProviderStats().summary()
    assert idle["latency_p50_s"] is None and idle["busy_s"] is None


def test_router_summary_carries_breaker_openings_and_quota_utilization():
    clock = Clock()
    paced = runtime("paced", clock, rpm=2, quota_window_s=60.0)
    free = runtime("free", clock)
    paced.breaker.record(False)
    for t in (0.0, 60.0):
        paced.stats.sent(t)
    routed = Router({"paced": paced, "free": free}, {"bulk": ["paced", "free"]})
    summary = routed.summary()
    assert summary["paced"]["breaker_opened"] == 1 and summary["free"]["breaker_opened"] == 0
    assert summary["paced"]["quota_utilization"] == 0.5
    assert summary["free"]["quota_utilization"] is None
    assert summarize_providers(routed.stats(), {"paced": paced.config, "free": free.config}) == (
        summary)
