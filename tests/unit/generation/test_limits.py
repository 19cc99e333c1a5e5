"""ProviderGate details not covered by tests/test_limits_and_breaker.py: pauses, AIMD bounds,
waiter order and cancellation, declined slots, daily budget races and send stamps."""

from __future__ import annotations

import asyncio
import time

import pytest

from catalog_images.generation.limits import ProviderGate, SlotDeclined
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.send_stamp import SEND_STAMP, confirm_send


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_pause_holds_back_the_next_request():
    async def go():
        gate = ProviderGate(max_concurrency=2)
        gate.pause(0.08)
        gate.pause(0.01)  # a shorter pause does not cut the longer one
        start = time.monotonic()
        async with gate.slot():
            return time.monotonic() - start

    assert asyncio.run(go()) >= 0.075


def test_an_overload_with_a_hint_pauses_and_shrinks_never_below_one():
    async def go():
        gate = ProviderGate(max_concurrency=4)
        gate.MIN_DECREASE_INTERVAL_S = 0.0  # let every overload count
        for _ in range(10):
            gate.on_overload(None)
        assert gate.limit == 1.0
        gate.on_overload(0.05)
        start = time.monotonic()
        async with gate.slot():
            return time.monotonic() - start

    assert asyncio.run(go()) >= 0.045


def test_successes_grow_the_window_additively_up_to_the_maximum():
    gate = ProviderGate(max_concurrency=3)
    gate.limit = 2.0
    gate.on_success()
    assert gate.limit == 2.5
    gate.on_success()
    assert gate.limit == pytest.approx(2.9)
    gate.on_success()
    assert gate.limit == 3.0  # capped
    gate.on_success()
    assert gate.limit == 3.0


def test_waiters_are_served_in_arrival_order_and_a_grown_window_admits_them():
    async def go():
        gate = ProviderGate(max_concurrency=4)
        gate.limit = 1.0
        order: list[int] = []
        release = asyncio.Event()

        async def row(index: int) -> None:
            async with gate.slot():
                order.append(index)
                await release.wait()

        tasks = [asyncio.create_task(row(i)) for i in range(4)]
        await settle()
        assert order == [0] and gate.waiting == 3 and gate.in_flight == 1
        gate.on_success()  # limit 1 -> 2: the first waiter gets the new slot at once
        await settle()
        assert order == [0, 1] and gate.waiting == 2 and gate.in_flight == 2
        release.set()
        await asyncio.gather(*tasks)
        return order, gate

    order, gate = asyncio.run(go())
    assert order == [0, 1, 2, 3] and gate.in_flight == 0 and gate.waiting == 0
    assert gate.sent_today == 4


def test_a_cancelled_waiter_leaves_the_queue_without_leaking_a_slot():
    async def go():
        gate = ProviderGate(max_concurrency=1)
        release = asyncio.Event()
        served: list[str] = []

        async def row(name: str) -> None:
            async with gate.slot():
                served.append(name)
                await release.wait()

        holder = asyncio.create_task(row("holder"))
        doomed = asyncio.create_task(row("doomed"))
        later = asyncio.create_task(row("later"))
        await settle()
        doomed.cancel()
        await settle()
        assert gate.waiting == 1 and len(gate._waiters) == 1  # only "later" still queued
        release.set()
        await asyncio.gather(holder, later)
        return served, gate

    served, gate = asyncio.run(go())
    assert served == ["holder", "later"] and gate.in_flight == 0


def test_a_slot_declined_before_the_rate_wait_takes_no_token():
    async def go():
        gate = ProviderGate(max_concurrency=1, rpm=5)
        with pytest.raises(SlotDeclined):
            async with gate.slot(still_wanted=lambda: False):
                pytest.fail("a declined slot runs nothing")
        return gate

    gate = asyncio.run(go())
    assert gate.in_flight == 0 and gate.sent_today == 0 and len(gate._sent) == 0


def test_a_slot_declined_after_the_rate_wait_leaves_its_token_used():
    async def go():
        gate = ProviderGate(max_concurrency=1, rpm=5)
        answers = iter([True, False])
        with pytest.raises(SlotDeclined):
            async with gate.slot(still_wanted=lambda: next(answers)):
                pytest.fail("a declined slot runs nothing")
        return gate

    gate = asyncio.run(go())
    assert gate.in_flight == 0 and gate.sent_today == 0 and len(gate._sent) == 1


def test_the_daily_budget_spent_while_waiting_refuses_the_waiter_and_frees_the_slot():
    async def go():
        gate = ProviderGate(max_concurrency=1, rpd=2)
        release = asyncio.Event()

        async def row() -> None:
            async with gate.slot():
                await release.wait()

        tasks = [asyncio.create_task(row()) for _ in range(3)]
        await settle()
        assert gate.waiting == 2 and gate.sent_today == 1  # both passed the first check
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return results, gate

    results, gate = asyncio.run(go())
    assert results[:2] == [None, None]
    assert isinstance(results[2], ProviderError)
    assert results[2].error_class is ErrorClass.DAILY_QUOTA and not results[2].retryable
    assert gate.in_flight == 0 and gate.sent_today == 2 and not gate.daily_quota_left


def test_the_rate_window_stamps_each_send_and_the_http_layer_can_move_the_stamp():
    async def go():
        gate = ProviderGate(max_concurrency=2, rpm=3, window_s=60.0)
        async with gate.slot():
            stamp = SEND_STAMP.get()
            taken = stamp[0]
            confirm_send(taken + 0.5)  # the request headers left half a second later
        return gate, stamp, taken

    gate, stamp, taken = asyncio.run(go())
    assert stamp == [taken + 0.5, True]
    assert gate._sent[0] is stamp  # the window itself holds the moved time


def test_without_an_rpm_no_stamp_is_set():
    async def go():
        gate = ProviderGate(max_concurrency=2)
        async with gate.slot():
            return SEND_STAMP.get(), len(gate._sent)

    assert asyncio.run(go()) == (None, 0)
