"""Batch Mode's create call meets a refusal no retry fixes: it is not sent again, never
waits on a huge hint, and a stop ends its waits; the refusal puts the provider (or its
model) out for the rest of the run's rows."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace

import pytest

from catalog_images.generation import batch_outs
from catalog_images.generation.batch import NotCreated, _create
from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import ProviderRuntime, Router
from catalog_images.generation.stop import StopRequest
from catalog_images.models import Job
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError

PRO, FLASH = "gemini-3-pro-image", "gemini-3.1-flash-image"


class Creates:
    """A batch client whose create calls answer from a script (then a job name)."""

    def __init__(self, *answers: ProviderError) -> None:
        self.answers = list(answers)
        self.creates = 0

    async def create(self, requests, display_name: str) -> str:
        self.creates += 1
        if self.answers:
            raise self.answers.pop(0)
        return "batches/1"

    async def find(self, display_name: str) -> str | None:
        return None


def create(client: Creates, stop: StopRequest | None = None, max_hint_s: float = 120.0):
    async def go():
        started = time.monotonic()
        try:
            name = await asyncio.wait_for(_create(  # a wait on the hint fails, not hangs
                client, [], "name", stop=stop or StopRequest(), max_hint_s=max_hint_s), 5.0)
            return name, time.monotonic() - started
        except NotCreated as exc:
            return exc.cause, time.monotonic() - started
    return asyncio.run(go())


@pytest.mark.parametrize("error", [
    ProviderError(ErrorClass.DAILY_QUOTA, "per day", status=429, retry_after_s=39043.0),
    ProviderError(ErrorClass.SPEND_CAP, "spending cap", status=429),
    ProviderError(ErrorClass.AUTH, "API key not valid", status=400),
    ProviderError(ErrorClass.RATE_LIMITED, "slow down", status=429, retry_after_s=1e9),
], ids=["per-day", "spend-cap", "auth", "hint-1e9"])
def test_a_refusal_no_retry_fixes_is_sent_once_and_never_waited_on(error) -> None:
    client = Creates(error)
    cause, took = create(client)
    assert cause is error and client.creates == 1 and took < 1.0


def test_a_short_rate_limit_is_retried_and_a_stop_ends_the_wait() -> None:
    client = Creates(ProviderError(ErrorClass.RATE_LIMITED, "slow", status=429,
                                   retry_after_s=0.05))
    assert create(client)[0] == "batches/1" and client.creates == 2

    async def stopped_meanwhile():
        stop = StopRequest()
        slow = Creates(*[ProviderError(ErrorClass.RATE_LIMITED, "slow", status=429,
                                       retry_after_s=60.0)] * 4)
        asyncio.get_running_loop().call_later(0.1, stop.set, "SIGTERM")
        started = time.monotonic()
        with pytest.raises(NotCreated):
            await asyncio.wait_for(_create(slow, [], "name", stop=stop, max_hint_s=120.0), 5.0)
        return time.monotonic() - started, slow.creates

    took, creates = asyncio.run(stopped_meanwhile())
    assert took < 1.0 and creates == 2  # the wait ended, and no create after the stop


class _Events:
    """The run's events, as (provider, resets_at, model) of each spent quota told."""

    def __init__(self) -> None:
        self.quotas: list[tuple] = []

    def quota_exhausted(self, provider: str, resets_at: str | None = None,
                        model: str | None = None) -> None:
        self.quotas.append((provider, resets_at, model))


def _context(config: ProviderConfig) -> SimpleNamespace:
    runtime = ProviderRuntime(config, None, ProviderGate(4), CircuitBreaker(cooldown_s=30.0))
    finished: list = []
    return SimpleNamespace(router=Router({config.name: runtime}, {"bulk": [config.name]}),
                           policy=RetryPolicy(), logger=logging.getLogger("test"),
                           finish=finished.append, finished=finished, runtime=runtime,
                           events=_Events())


def _job(row: int, model: str | None) -> Job:
    return Job(row=row, sku=f"SKU-{row}", prompt="a mug", resolution="1K", aspect_ratio="1:1",
               model=model, fingerprint=f"fp{row}")


def test_a_per_day_refusal_puts_out_its_model_and_ends_rows_with_the_cause() -> None:
    config = ProviderConfig(name="google", kind="gemini", base_url="https://api.test",
                            model=PRO)
    ctx = _context(config)
    daily = ProviderError(ErrorClass.DAILY_QUOTA, "per day", status=429, retry_after_s=39043.0)
    out = batch_outs.take_out(ctx, config, daily, None)
    assert out is not None and out.model == PRO
    assert batch_outs.out_now(ctx, config, PRO) is out
    assert batch_outs.out_now(ctx, config, FLASH) is None
    batch_outs.end_rows(ctx, config, [_job(1, None), _job(2, PRO)], out)
    assert [(r.status, r.reason[:19]) for r in ctx.finished] == [
        ("skipped", "daily quota (resets")] * 2
    assert ctx.runtime.stats.rows_left == 2 and "per-day quota" in ctx.runtime.stats.out
    # told once, as the model's quota, with the reset the rows quote
    assert batch_outs.take_out(ctx, config, daily, None) is not None
    (told,) = ctx.events.quotas
    assert told[0::2] == ("google", PRO) and told[1] in ctx.finished[0].reason


def test_a_configuration_refusal_fails_the_rows_and_a_retryable_one_puts_nothing_out() -> None:
    config = ProviderConfig(name="google", kind="gemini", base_url="https://api.test")
    ctx = _context(config)
    slow = ProviderError(ErrorClass.RATE_LIMITED, "slow", status=429, retry_after_s=5.0)
    assert batch_outs.take_out(ctx, config, slow, None) is None
    auth = ProviderError(ErrorClass.AUTH, "API key not valid", status=400)
    out = batch_outs.take_out(ctx, config, auth, None)
    assert batch_outs.out_now(ctx, config, FLASH) is out  # every model
    batch_outs.end_rows(ctx, config, [_job(1, FLASH)], out)
    (result,) = ctx.finished
    assert result.status == "failed" and result.error_class == "auth"
    assert "provider configuration" in result.reason


def test_rows_meet_an_out_before_their_job_and_give_back_what_they_reserved() -> None:
    from catalog_images.generation.budget import Budget

    config = ProviderConfig(name="google", kind="gemini", base_url="https://api.test",
                            model=PRO)
    ctx = _context(config)
    ctx.budget = Budget(10.0)
    jobs = [_job(1, FLASH), _job(2, FLASH)]
    for job in jobs:
        assert ctx.budget.reserve(config.batch_price(job.resolution, job.model))
    assert not batch_outs.ended(ctx, config, jobs, reserved=True)  # nothing out yet
    spend = ProviderError(ErrorClass.SPEND_CAP, "prepay balance depleted", status=429)
    assert batch_outs.refused(ctx, config, [_job(3, PRO)], spend)
    assert batch_outs.ended(ctx, config, jobs, reserved=True)  # a spend cap: every model
    assert ctx.budget.reserve(10.0)  # both reservations were given back
    assert [r.reason for r in ctx.finished] == ["spend cap (provider billing limit)"] * 3
    assert ctx.events.quotas == []  # a spend cap is not a daily quota
