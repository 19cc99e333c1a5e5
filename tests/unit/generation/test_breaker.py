"""Circuit breaker details not covered by tests/test_limits_and_breaker.py."""

from __future__ import annotations

import pytest

from catalog_images.generation.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def opened(clock: Clock, cooldown_s: float = 5.0) -> CircuitBreaker:
    breaker = CircuitBreaker(consecutive_failures=2, cooldown_s=cooldown_s, clock=clock)
    breaker.record(False)
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_would_allow_asks_without_moving_the_state_or_taking_the_probe():
    clock = Clock()
    breaker = opened(clock)
    assert not breaker.would_allow()
    clock.now += 5.0
    assert breaker.would_allow() and breaker.state is BreakerState.OPEN  # nothing moved
    assert breaker.would_allow()
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.would_allow()


def test_seconds_until_probe_in_each_state():
    clock = Clock()
    breaker = CircuitBreaker(consecutive_failures=1, cooldown_s=5.0, clock=clock)
    assert breaker.seconds_until_probe() == 0.0 and breaker.closed
    breaker.record(False)
    clock.now += 2.0
    assert breaker.seconds_until_probe() == pytest.approx(3.0)
    clock.now += 10.0
    assert breaker.seconds_until_probe() == 0.0
    breaker.allow()
    assert breaker.seconds_until_probe() == 0.2  # half-open: ask again shortly


def test_late_answers_while_open_neither_close_nor_extend_it():
    clock = Clock()
    breaker = opened(clock)
    clock.now += 3.0
    breaker.record(False)  # answers to requests sent before the breaker opened
    breaker.record(True)
    assert breaker.state is BreakerState.OPEN and breaker.opened_count == 1
    assert breaker.seconds_until_probe() == pytest.approx(2.0)


def test_the_failure_rate_only_counts_a_full_window():
    breaker = CircuitBreaker(consecutive_failures=100, window=10, failure_rate=0.6)
    for healthy in (False, False, True) * 3:  # 9 outcomes, two thirds failed
        breaker.record(healthy)
    assert breaker.state is BreakerState.CLOSED
    breaker.record(False)  # the tenth: 7 of 10 failed
    assert breaker.state is BreakerState.OPEN


def test_a_successful_probe_forgets_the_old_window():
    clock = Clock()
    breaker = CircuitBreaker(consecutive_failures=100, window=4, failure_rate=0.5,
                             cooldown_s=1.0, clock=clock)
    for healthy in (True, False, True, False):
        breaker.record(healthy)
    assert breaker.state is BreakerState.OPEN  # the window is full and half of it failed
    clock.now += 1.0
    assert breaker.allow()
    breaker.record(True)
    assert breaker.closed
    breaker.record(False)  # with the old window kept: 2 of 4 failed, open again
    breaker.record(True)
    breaker.record(False)
    assert breaker.closed
    breaker.record(False)  # the new window is full: 3 of 4 failed
    assert breaker.state is BreakerState.OPEN and breaker.opened_count == 2


def test_releasing_a_probe_outside_half_open_changes_nothing():
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    breaker.release_probe()
    assert breaker.closed and breaker.allow()
    breaker = opened(clock)
    breaker.release_probe()
    assert not breaker.allow() and breaker.state is BreakerState.OPEN


def test_on_change_hears_open_once_and_closed_when_a_probe_succeeds():
    clock, heard = Clock(), []
    breaker = CircuitBreaker(consecutive_failures=2, cooldown_s=5.0, clock=clock,
                             on_change=heard.append)
    breaker.record(False)
    assert heard == []
    breaker.record(False)
    assert heard == ["open"]
    clock.now += 5.0
    assert breaker.allow()  # the probe
    breaker.record(False)  # a failed probe re-opens it: no second "open"
    assert heard == ["open"] and breaker.state is BreakerState.OPEN
    clock.now += 5.0
    assert breaker.allow()
    breaker.record(True)
    assert heard == ["open", "closed"] and breaker.closed
