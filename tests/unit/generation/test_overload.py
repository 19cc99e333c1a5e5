"""Overload from noise: random 503s leave the window alone, crowded 503s shrink it once,
and the ceiling learnt from that is probed slowly and stepped back from at once."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.overload import OverloadJudge, RecentAnswers


def test_recent_answers_count_only_the_last_ones_and_the_streak():
    recent = RecentAnswers(size=4)
    for unavailable in (True, True, False, False, False):
        recent.add(unavailable)
    assert recent.unavailable == 1 and recent.streak == 0  # the first 503 has left
    recent.add(True)
    recent.add(True)
    assert recent.streak == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("catalog_images.generation.limits.time.monotonic", fake)
    return fake


def test_five_percent_random_503s_leave_the_window_at_its_maximum(clock):
    gate, rng = ProviderGate(max_concurrency=32), random.Random(7)
    lowest = gate.limit
    for _ in range(10_000):
        clock.now += 0.01
        if rng.random() < 0.05:
            gate.on_unavailable(None)
        else:
            gate.on_success()
        lowest = min(lowest, gate.limit)
    assert gate.limit == 32
    assert lowest >= 22  # at worst one false alarm, regrown


def test_scattered_503s_shrink_once_they_crowd_the_recent_answers(clock):
    gate = ProviderGate(max_concurrency=32)
    for _ in range(OverloadJudge.CROWDED - 1):
        assert gate.on_unavailable(None) is False
        gate.on_success()
    assert gate.limit == 32
    assert gate.on_unavailable(None) is True  # the eighth of the last 40: a crowd
    assert gate.limit == int(32 * gate.DECREASE_FACTOR)


def test_a_streak_of_503s_shrinks_the_window_before_the_breaker_would_open(clock):
    gate = ProviderGate(max_concurrency=32)
    for _ in range(OverloadJudge.STREAK - 1):
        gate.on_unavailable(None)
    assert gate.limit == 32
    gate.on_unavailable(None)
    assert gate.limit == int(32 * gate.DECREASE_FACTOR)
    clock.now += 0.05
    assert gate.on_unavailable(None) is True  # the rest of that crowd: ours, not shrunk again
    assert gate.limit == int(32 * gate.DECREASE_FACTOR)


def _simulate_capacity(clock: FakeClock, capacity: int, concurrency: int,
                       answers: int) -> tuple[int, ProviderGate]:
    """Each round the gate's window is filled and answered; beyond ``capacity`` a slot is
    refused at once and taken again by the next row: three 503s in a row per such slot."""
    gate, rejected, done = ProviderGate(max_concurrency=concurrency), 0, 0
    while done < answers:
        clock.now += 0.5
        for slot in range(int(gate.limit)):
            if slot < capacity:
                gate.on_success()
            else:
                for _ in range(3):
                    gate.on_unavailable(None)
                rejected += 3
            done += 1
    return rejected, gate


@pytest.mark.parametrize(("capacity", "concurrency"), [(16, 32), (2, 8), (60, 64)])
def test_beyond_capacity_the_window_settles_near_it_with_few_503s(clock, capacity, concurrency):
    rejected, gate = _simulate_capacity(clock, capacity, concurrency, answers=20_000)
    assert capacity * 0.85 <= gate.limit <= capacity + 1
    assert rejected / 20_000 <= 0.02


def test_a_probe_above_the_ceiling_steps_back_below_it_at_the_second_503_in_a_row():
    judge, window = OverloadJudge(), None
    for _ in range(OverloadJudge.CROWDED):
        window = judge.after_503(20.0, now=0.0, decrease=0.5) or window
    assert window == 10.0 and judge.ceiling == 10.0
    assert judge.after_503(12.5, now=1.0, decrease=0.5) is None
    assert judge.after_503(12.5, now=1.0, decrease=0.5) == 11.0  # 11 held, 12 did not
    assert judge.ceiling == 11.0
    assert judge.ours(1.0 + judge.SETTLE_S / 2) and not judge.ours(1.0 + judge.SETTLE_S * 2)
    # Its counts are spent: one more 503 at the new ceiling does not shrink the window.
    assert judge.after_503(11.0, now=2.0, decrease=0.5) is None


def test_503s_of_requests_admitted_before_a_shrink_are_ours_and_later_ones_count():
    judge = OverloadJudge()
    for _ in range(OverloadJudge.STREAK):
        window = judge.after_503(32.0, now=10.0, decrease=0.7, admitted_at=9.9)
    assert window == 22.0
    for _ in range(20):  # the rest of that wall of requests, answered a second later
        assert judge.after_503(22.0, now=11.0, decrease=0.7, admitted_at=9.95) is None
        assert judge.ours(11.0, admitted_at=9.95)
    assert not judge.ours(11.0, admitted_at=10.5)  # admitted after the shrink: new evidence
    for _ in range(OverloadJudge.STREAK - 1):
        assert judge.after_503(22.0, now=11.0, decrease=0.7, admitted_at=10.5) is None
    assert judge.after_503(22.0, now=11.0, decrease=0.7, admitted_at=10.5) == 15.0


def test_growth_is_slow_above_the_ceiling_and_normal_once_it_is_forgotten():
    judge = OverloadJudge()
    for _ in range(OverloadJudge.CROWDED):
        judge.after_503(20.0, now=0.0, decrease=0.5)
    assert judge.growth(5.0, now=1.0) == 1 / 5
    assert judge.growth(10.0, now=1.0) == 1 / (OverloadJudge.SLOW_PROBE * 10)
    assert judge.growth(10.0, now=OverloadJudge.CEILING_MEMORY_S + 1) == 1 / 10
    assert judge.ceiling is None


def test_slow_start_doubles_the_window_each_round_until_the_maximum(clock):
    gate = ProviderGate(max_concurrency=64, initial_window=8)
    rounds = []
    while gate.limit < 64:
        for _ in range(int(gate.limit)):
            gate.on_success()
        rounds.append(gate.limit)
    assert rounds == [16, 32, 64]


def test_slow_start_ends_at_the_first_crowd_of_503s(clock):
    gate = ProviderGate(max_concurrency=64, initial_window=8)
    for _ in range(12):
        gate.on_success()
    assert gate.limit == 20
    for _ in range(OverloadJudge.STREAK):
        gate.on_unavailable(None)
    assert gate.limit == 10  # half: the window of the round before, as TCP's ssthresh
    gate.on_success()
    assert gate.limit == pytest.approx(10 + 1 / (OverloadJudge.SLOW_PROBE * 10))


def test_at_one_request_at_a_time_503s_are_the_providers_not_ours(clock):
    gate = ProviderGate(max_concurrency=1)
    for _ in range(10):
        assert gate.on_unavailable(None) is False  # the breaker hears every one
    assert gate.limit == 1


def test_slow_start_opens_its_extra_slots_paced_over_a_round_trip():
    async def scenario() -> tuple[float, float]:
        gate = ProviderGate(max_concurrency=64, initial_window=8)
        now = time.monotonic()
        for _ in range(8):  # a round of 0.4 s answers, all at once
            gate.on_success(admitted_at=now - 0.4)
        at_once = gate.limit
        await asyncio.sleep(0.55)
        return at_once, gate.limit

    at_once, after = asyncio.run(scenario())
    assert at_once == 8  # not 16 at once: one slot per 0.4 s / 8 = 50 ms
    assert after == 16


def test_a_crowd_in_paced_slow_start_leaves_the_window_at_the_last_level_that_held():
    async def scenario() -> tuple[float, float]:
        gate = ProviderGate(max_concurrency=64, initial_window=16)
        now = time.monotonic()
        for _ in range(4):  # 1.6 s answers: one more slot every 0.1 s
            gate.on_success(admitted_at=now - 1.6)
        await asyncio.sleep(0.15)
        first = gate.limit
        gate.on_unavailable(None, admitted_at=time.monotonic())  # a slot beyond is refused
        await asyncio.sleep(0.2)  # more slots open before the 503s crowd
        assert gate.limit >= first + 1
        for _ in range(OverloadJudge.STREAK - 1):
            gate.on_unavailable(None, admitted_at=time.monotonic())
        return first, gate.limit

    first, after = asyncio.run(scenario())
    assert first >= 17 and after == first - 1  # the level before the first refusal held


def test_slow_start_opens_a_slot_at_each_ramp_gap_while_rows_wait_and_none_without_them():
    async def scenario() -> tuple[float, float, float]:
        gate = ProviderGate(max_concurrency=64, initial_window=8)
        idle_wait = ProviderGate.RAMP_GAP_S * 5
        await asyncio.sleep(idle_wait)
        idle = gate.limit  # nobody waits: nothing to ramp for
        held = [gate.slot() for _ in range(40)]
        entered = [asyncio.ensure_future(slot.__aenter__()) for slot in held]
        started = time.monotonic()
        while gate.limit < 14 and time.monotonic() - started < 5:
            await asyncio.sleep(0.001)
        gaps = (time.monotonic() - started) / ProviderGate.RAMP_GAP_S
        await asyncio.sleep(ProviderGate.RAMP_GAP_S * 50)
        for task in entered:
            task.cancel()
        return idle, gaps, gate.limit

    idle, gaps, full = asyncio.run(scenario())
    assert idle == 8
    assert 5.5 <= gaps < 100  # six slots, one per gap at most, and no answer needed
    assert full == 40  # every waiting row admitted, and no slot beyond them


def test_a_model_refusing_at_once_stops_the_ramp_one_slot_above_its_capacity():
    async def scenario() -> tuple[float, int]:
        capacity = 12
        gate = ProviderGate(max_concurrency=64, initial_window=8)
        refused = 0

        async def row() -> None:
            nonlocal refused
            while True:
                async with gate.slot() as admitted_at:
                    if gate.sending > capacity:  # beyond capacity: a 503 at once
                        refused += 1
                        gate.on_unavailable(None, admitted_at=admitted_at)
                        await asyncio.sleep(0)
                        continue
                    await asyncio.sleep(10)  # in service for longer than the test

        rows = [asyncio.ensure_future(row()) for _ in range(30)]
        await asyncio.sleep(ProviderGate.RAMP_GAP_S * 30)
        for task in rows:
            task.cancel()
        return gate.limit, refused

    limit, refused = asyncio.run(scenario())
    assert limit == 12  # the last level that held
    assert refused <= OverloadJudge.STREAK + 1
