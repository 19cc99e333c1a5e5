"""A row's path when a provider is out (per-day quota, spend cap, configuration error, a
retry hint over the cap), its overall deadline, and stopping while rows wait."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.budget import Budget
from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.outage import next_pacific_midnight, out_for
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import ProviderRuntime, Router
from catalog_images.generation.row import _generate_with_retries
from catalog_images.generation.stop import StopRequest
from catalog_images.models import GeneratedImage, ImageRequest
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.report.events import RunEvents
from catalog_images.report.results import Tries

REQUEST = ImageRequest("a mug", "1K", "1:1")
DAILY = ProviderError(ErrorClass.DAILY_QUOTA, "RESOURCE_EXHAUSTED per day", status=429,
                      retry_after_s=39043.0)


class Scripted:
    """A provider client answering from a script; after it, images. Counts requests."""

    def __init__(self, *answers: ProviderError) -> None:
        self.answers = list(answers)
        self.sent = 0

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.sent += 1
        await asyncio.sleep(0)
        if self.answers:
            raise self.answers.pop(0)
        return GeneratedImage(b"png", "image/png", 1024, 1024)


def runtime(name: str, client: Scripted, concurrency: int = 4) -> ProviderRuntime:
    config = ProviderConfig(name=name, kind="gemini", base_url="https://api.test")
    return ProviderRuntime(config, client, ProviderGate(concurrency),
                           CircuitBreaker(cooldown_s=30.0))


def context(*runtimes: ProviderRuntime, **policy) -> SimpleNamespace:
    router = Router({r.name: r for r in runtimes}, {"bulk": [r.name for r in runtimes]})
    stop = StopRequest()
    stop.add_listener(router.interrupt_all)
    return SimpleNamespace(router=router, stop=stop, policy=RetryPolicy(**policy),
                           budget=Budget(None), rng=random.Random(1),
                           logger=logging.getLogger("test"), events=RunEvents(None))


async def kept(runtime: ProviderRuntime, image: GeneratedImage) -> str:
    return f"kept from {runtime.name}"


async def row(ctx) -> tuple[ProviderRuntime | None, object]:
    route = ctx.router.route_for(None)
    return await _generate_with_retries(ctx, route, REQUEST, Tries(), kept)


def test_a_per_day_429_ends_the_rows_of_a_lone_provider_at_once_with_its_reset():
    client = Scripted(DAILY)
    ctx = context(google := runtime("google", client))

    async def go():
        started = time.monotonic()
        first, second = await row(ctx), await row(ctx)
        return time.monotonic() - started, first, second

    took, (_, first), (where, second) = asyncio.run(go())
    assert took < 1.0 and client.sent == 1  # the second row sent nothing
    for error in (first, second):
        assert error.error_class is ErrorClass.DAILY_QUOTA
        assert error.message.startswith("daily quota (resets 20")
    assert where is google and google.stats.rows_left == 2 and google.stats.rate_limited == 1
    assert "per-day quota" in google.stats.out and "run again after the reset" in google.stats.out


def test_a_per_day_429_sends_the_row_and_the_next_ones_to_the_fallback():
    primary, fallback = Scripted(DAILY), Scripted()
    ctx = context(runtime("google", primary), runtime("relay", fallback))

    async def go():
        return [await row(ctx) for _ in range(3)]

    results = asyncio.run(go())
    assert [outcome for _, outcome in results] == ["kept from relay"] * 3
    assert primary.sent == 1 and fallback.sent == 3


def test_a_spend_cap_stops_paid_requests_to_that_provider_with_a_clear_message(caplog):
    client = Scripted(ProviderError(ErrorClass.SPEND_CAP, "monthly spending cap", status=429))
    ctx = context(google := runtime("google", client))

    async def go():
        return [await row(ctx) for _ in range(5)]

    with caplog.at_level(logging.WARNING):
        results = asyncio.run(go())
    assert client.sent == 1
    assert {outcome.error_class for _, outcome in results} == {ErrorClass.SPEND_CAP}
    assert "raise the spend cap, top up the prepaid balance" in google.stats.out
    assert [r.message for r in caplog.records].count(f"provider {google.stats.out}") == 1


def test_a_configuration_error_ends_rows_at_once_instead_of_waiting_for_a_breaker():
    client = Scripted(*[ProviderError(ErrorClass.NOT_FOUND, "models/x is not found",
                                      status=404)] * 10)
    ctx = context(runtime("google", client), max_provider_wait_s=300.0)

    async def go():
        started = time.monotonic()
        results = await asyncio.gather(*(row(ctx) for _ in range(6)))
        return time.monotonic() - started, results

    took, results = asyncio.run(go())
    assert took < 1.0 and client.sent <= 4  # at most the requests already in flight
    for _, error in results:
        assert error.error_class is ErrorClass.NOT_FOUND
        assert "provider configuration" in error.message


def test_a_retry_hint_over_the_cap_puts_the_provider_out_for_now():
    client = Scripted(ProviderError(ErrorClass.RATE_LIMITED, "slow down", status=429,
                                    retry_after_s=1e9))
    ctx = context(google := runtime("google", client), max_retry_hint_s=120.0)
    started = time.monotonic()
    _, error = asyncio.run(row(ctx))
    assert time.monotonic() - started < 1.0 and client.sent == 1
    assert error.error_class is ErrorClass.DAILY_QUOTA
    assert error.message.startswith("out for now: asked to wait 1000000000 s, over the 120 s cap")
    assert not google.available()


def test_a_retry_hint_within_the_cap_is_waited_for_and_the_row_retried():
    client = Scripted(ProviderError(ErrorClass.RATE_LIMITED, "slow down", status=429,
                                    retry_after_s=0.05))
    ctx = context(runtime("google", client), max_retry_hint_s=120.0)
    _, outcome = asyncio.run(row(ctx))
    assert outcome == "kept from google" and client.sent == 2


def test_a_row_ends_at_its_deadline_whatever_it_waits_for():
    client = Scripted(*[ProviderError(ErrorClass.UNAVAILABLE, "overloaded", status=503,
                                      retry_after_s=60.0)] * 5)
    ctx = context(runtime("google", client), row_deadline_s=0.3, max_attempts=20)
    started = time.monotonic()
    _, error = asyncio.run(row(ctx))
    assert time.monotonic() - started < 1.0 and client.sent == 1
    assert error.error_class is ErrorClass.ROW_DEADLINE and "row_deadline_s = 0" in error.message


def test_a_stop_ends_rows_waiting_on_a_one_hour_pause_and_on_a_slot_within_a_second():
    client = Scripted()
    ctx = context(google := runtime("google", client, concurrency=1))
    google.gate.pause(3600.0)

    async def go():
        rows = [asyncio.ensure_future(row(ctx)) for _ in range(5)]
        await asyncio.sleep(0.1)
        assert not any(r.done() for r in rows)  # one waits on the pause, four on its slot
        assert (google.gate.in_flight, google.gate.sending) == (1, 0)  # none sent: the
        started = time.monotonic()  # stop message says 0 in flight
        ctx.stop.set("SIGTERM")
        results = await asyncio.wait_for(asyncio.gather(*rows), 2.0)
        return time.monotonic() - started, results

    took, results = asyncio.run(go())
    assert took < 1.0 and client.sent == 0
    assert {error.error_class for _, error in results} == {ErrorClass.STOPPED}
    assert google.gate.in_flight == 0 and google.gate.waiting == 0


def test_out_for_reads_each_cause_and_leaves_retryable_ones_alone():
    daily = out_for("g", DAILY, 120.0, "gemini-3-pro-image")
    assert daily.until is not None and daily.model == "gemini-3-pro-image"
    assert daily.reason == f"daily quota (resets {daily.resets_at})"
    assert daily.resets_at.endswith(" UTC")
    assert out_for("g", ProviderError(ErrorClass.DAILY_QUOTA, "daily quota reached"),
                   120.0) is None  # our own requests_per_day: the router handles it
    no_hint = out_for("g", ProviderError(ErrorClass.DAILY_QUOTA, "per day", status=429), 120.0)
    assert no_hint.until is None and no_hint.active()
    assert out_for("g", ProviderError(ErrorClass.RATE_LIMITED, "x", status=429,
                                      retry_after_s=120.0), 120.0) is None
    assert out_for("g", ProviderError(ErrorClass.UNAVAILABLE, "x", status=503), 120.0) is None
    auth = out_for("g", ProviderError(ErrorClass.AUTH, "API key not valid", status=400), 120.0)
    assert auth.until is None and "fix the key" in auth.message


def test_the_daily_reset_without_a_hint_is_midnight_pacific():
    late = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)  # 01:30 in Los Angeles (PST)
    assert next_pacific_midnight(late) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_gate_waiter_leaves_at_its_deadline_or_when_interrupted_and_unwanted():
    from catalog_images.generation.limits import SlotDeclined

    async def go():
        gate = ProviderGate(max_concurrency=1)
        wanted = {"late": True, "left": True}
        held = asyncio.Event()

        async def holder():
            async with gate.slot():
                await held.wait()

        async def waiter(name: str, deadline: float | None):
            try:
                async with gate.slot(lambda: wanted[name], deadline):
                    return "sent"
            except SlotDeclined:
                return "declined"

        hold = asyncio.ensure_future(holder())
        await asyncio.sleep(0)
        late = asyncio.ensure_future(waiter("late", time.monotonic() + 0.1))
        left = asyncio.ensure_future(waiter("left", None))
        await asyncio.sleep(0.3)
        first = (late.done() and late.result(), left.done())
        gate.interrupt()  # still wanted: it keeps its place
        await asyncio.sleep(0.05)
        kept = not left.done()
        wanted["left"] = False
        gate.interrupt()
        await asyncio.sleep(0.05)
        second = left.done() and left.result()
        held.set()
        await hold
        return first, kept, second, gate.in_flight, gate.waiting

    first, kept, second, in_flight, waiting = asyncio.run(go())
    assert first == ("declined", False) and kept and second == "declined"
    assert in_flight == 0 and waiting == 0
