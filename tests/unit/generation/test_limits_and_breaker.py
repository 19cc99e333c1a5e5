"""The provider gate (concurrency, rate, daily budget, AIMD) and the circuit breaker."""

from __future__ import annotations

import asyncio
import time

import pytest

from catalog_images.generation.breaker import BreakerState, CircuitBreaker
from catalog_images.generation.limits import ProviderGate
from catalog_images.providers.errors import ErrorClass, ProviderError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_on_a_failure_streak_and_a_probe_closes_it():
    clock = FakeClock()
    breaker = CircuitBreaker(consecutive_failures=3, cooldown_s=5.0, clock=clock)
    for _ in range(2):
        breaker.record(False)
    breaker.record(True)  # a success resets the streak
    for _ in range(2):
        breaker.record(False)
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now = 4.9
    assert not breaker.allow() and breaker.seconds_until_probe() == pytest.approx(0.1)
    clock.now = 5.0
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # nobody else while it is out
    breaker.record(False)  # probe failed: open again
    assert breaker.state is BreakerState.OPEN and breaker.opened_count == 2
    clock.now = 10.0
    assert breaker.allow()
    breaker.record(True)
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_a_probe_handed_out_but_never_sent_can_be_given_back():
    clock = FakeClock()
    breaker = CircuitBreaker(consecutive_failures=1, cooldown_s=1.0, clock=clock)
    breaker.record(False)
    clock.now = 1.0
    assert breaker.allow() and not breaker.would_allow()  # the probe is out
    breaker.release_probe()  # its row declined the slot (e.g. the run is stopping)
    assert breaker.would_allow() and breaker.allow()  # another row may probe


def test_breaker_opens_on_a_high_failure_rate_without_a_streak():
    breaker = CircuitBreaker(consecutive_failures=100, window=10, failure_rate=0.6)
    for index in range(10):
        breaker.record(index % 3 == 1)  # 3 good, 7 bad, never more than 2 bad in a row
    assert breaker.state is BreakerState.OPEN


def test_rpm_window_paces_sends_without_exceeding_the_quota():
    async def go():
        gate = ProviderGate(max_concurrency=50, rpm=5, window_s=0.5)
        sends: list[float] = []

        async def one():
            async with gate.slot():
                sends.append(time.monotonic())

        start = time.monotonic()
        await asyncio.gather(*(one() for _ in range(15)))
        return start, sends

    start, sends = asyncio.run(go())
    assert sends[-1] - start >= 1.0  # 3 windows' worth: at least two full windows waited
    for index in range(len(sends) - 5):
        assert sends[index + 5] - sends[index] >= 0.5  # never 6 sends within one window


def test_in_flight_never_exceeds_the_adaptive_window():
    async def go():
        gate = ProviderGate(max_concurrency=8)
        peak = 0

        async def one():
            nonlocal peak
            async with gate.slot():
                peak = max(peak, gate.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(40)))
        first_peak = peak
        gate.on_overload(None)
        assert gate.limit == pytest.approx(8 * 0.7)
        gate.on_overload(None)  # within a second: not shrunk twice
        assert gate.limit == pytest.approx(8 * 0.7)
        peak = 0
        await asyncio.gather(*(one() for _ in range(40)))
        shrunk_peak = peak
        for _ in range(50):
            gate.on_success()
        return first_peak, shrunk_peak, gate.limit

    first_peak, shrunk_peak, grown = asyncio.run(go())
    assert first_peak == 8
    assert shrunk_peak <= 5
    assert grown == 8.0


def test_daily_budget_refuses_before_sending():
    async def go():
        gate = ProviderGate(max_concurrency=4, rpd=2)
        for _ in range(2):
            async with gate.slot():
                pass
        with pytest.raises(ProviderError) as caught:
            async with gate.slot():
                pass
        return caught.value

    error = asyncio.run(go())
    assert error.error_class is ErrorClass.DAILY_QUOTA
