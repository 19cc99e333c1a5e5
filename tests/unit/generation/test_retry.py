"""Retry timing: equal jitter without a hint, the server's hint (bounded) with one."""

from __future__ import annotations

import random

import pytest

from catalog_images.generation.retry import RetryPolicy


class Extremes:
    """An rng whose ``uniform`` answers its low or its high end."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def uniform(self, low: float, high: float) -> float:
        return high if self.high else low


@pytest.mark.parametrize(("attempt", "low", "high"),
                         [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (7, 30.0, 60.0),
                          (20, 30.0, 60.0)])
def test_backoff_doubles_per_attempt_with_equal_jitter_under_the_cap(attempt, low, high):
    policy = RetryPolicy()
    assert policy.delay(attempt, None, Extremes(False)) == low
    assert policy.delay(attempt, None, Extremes(True)) == high


def test_a_server_hint_is_honoured_with_a_little_spread_and_capped():
    policy = RetryPolicy(max_delay_s=60.0, hint_jitter_s=0.25)
    assert policy.delay(1, 26.0, Extremes(False)) == 26.0
    assert policy.delay(1, 26.0, Extremes(True)) == 26.25
    assert policy.delay(5, 39043.0, Extremes(True)) == 60.25  # a daily quota's hours: capped
    assert policy.delay(1, 0.0, Extremes(False)) == 0.0  # "retry now" is taken literally


def test_delays_are_never_zero_without_a_hint_and_are_reproducible():
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    first = [policy.delay(a, None, random.Random(5)) for a in range(1, 10)]
    again = [policy.delay(a, None, random.Random(5)) for a in range(1, 10)]
    assert first == again and min(first) >= 0.05 and max(first) <= 1.0
