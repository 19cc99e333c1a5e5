"""A per-day quota is per (provider, model) on Google: a per-day 429 for one model leaves
the provider's other models serving their rows; a spend cap or a key error stops them all."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from types import SimpleNamespace

from catalog_images.generation.breaker import CircuitBreaker
from catalog_images.generation.budget import Budget
from catalog_images.generation.limits import ProviderGate
from catalog_images.generation.outage import out_for
from catalog_images.generation.retry import RetryPolicy
from catalog_images.generation.routing import ProviderRuntime, Router
from catalog_images.generation.row import _generate_with_retries, _refused_now
from catalog_images.generation.stop import StopRequest
from catalog_images.models import GeneratedImage, ImageRequest
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.report.events import RunEvents
from catalog_images.report.results import Tries

PRO, FLASH = "gemini-3-pro-image", "gemini-3.1-flash-image"


def daily() -> ProviderError:
    return ProviderError(ErrorClass.DAILY_QUOTA, "GenerateRequestsPerDayPerProjectPerModel",
                         status=429, retry_after_s=39043.0)


class PerModel:
    """A provider client answering each model from its own script; after it, images."""

    def __init__(self, scripts: dict[str, list[ProviderError]] | None = None) -> None:
        self.scripts = {model: list(s) for model, s in (scripts or {}).items()}
        self.sent: dict[str, int] = {}

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        model = request.model or PRO
        self.sent[model] = self.sent.get(model, 0) + 1
        await asyncio.sleep(0)
        if self.scripts.get(model):
            raise self.scripts[model].pop(0)
        return GeneratedImage(b"png", "image/png", 1024, 1024)


def runtime(name: str, client: PerModel) -> ProviderRuntime:
    config = ProviderConfig(name=name, kind="gemini", base_url="https://api.test", model=PRO)
    return ProviderRuntime(config, client, ProviderGate(4), CircuitBreaker(cooldown_s=30.0))


def context(*runtimes: ProviderRuntime) -> SimpleNamespace:
    router = Router({r.name: r for r in runtimes}, {"bulk": [r.name for r in runtimes]})
    return SimpleNamespace(router=router, stop=StopRequest(), policy=RetryPolicy(),
                           budget=Budget(None), rng=random.Random(1),
                           logger=logging.getLogger("test"), events=RunEvents(None))


async def kept(runtime: ProviderRuntime, image: GeneratedImage) -> str:
    return f"kept from {runtime.name}"


def rows(ctx, *models: str | None) -> list[object]:
    async def go():
        route = ctx.router.route_for(None)
        return [(await _generate_with_retries(ctx, route, ImageRequest("a mug", "1K", "1:1",
                                                                      model=model),
                                              Tries(), kept))[1] for model in models]
    return asyncio.run(go())


def test_a_per_day_429_on_one_model_leaves_the_other_model_serving() -> None:
    client = PerModel({PRO: [daily()]})
    ctx = context(google := runtime("google", client))
    results = rows(ctx, PRO, FLASH, PRO, None, FLASH)
    assert results[1] == results[4] == "kept from google"  # the other model still served
    for error in (results[0], results[2], results[3]):  # None is the provider's model (Pro)
        assert error.error_class is ErrorClass.DAILY_QUOTA
        assert error.message.startswith("daily quota (resets 20")
    assert client.sent == {PRO: 1, FLASH: 2}  # nothing more sent for the spent model
    assert not google.available(PRO) and not google.available(None) and google.available(FLASH)
    assert google.out is None and set(google.model_outs) == {PRO}
    assert f"per-day quota of {PRO} spent" in google.stats.out
    assert google.stats.rows_left == 3


def test_with_a_fallback_only_the_spent_model_moves_to_it() -> None:
    primary, fallback = PerModel({FLASH: [daily()]}), PerModel()
    ctx = context(runtime("google", primary), runtime("relay", fallback))
    results = rows(ctx, FLASH, PRO, FLASH, PRO)
    assert results == ["kept from relay", "kept from google", "kept from relay",
                       "kept from google"]
    assert primary.sent == {FLASH: 1, PRO: 2} and fallback.sent == {FLASH: 2}


def test_a_row_of_the_spent_model_is_refused_before_any_lookup_the_other_is_not() -> None:
    ctx = context(google := runtime("google", PerModel()))
    google.take_out(out_for("google", daily(), 120.0, PRO))
    route = ctx.router.route_for(None)
    refused = _refused_now(ctx, route, PRO)
    assert refused is not None and refused[0] is google
    assert refused[1].error_class is ErrorClass.DAILY_QUOTA
    assert _refused_now(ctx, route, FLASH) is None


def test_a_spend_cap_or_a_key_error_stops_every_model_of_the_provider() -> None:
    for error in (ProviderError(ErrorClass.SPEND_CAP, "spending cap", status=429),
                  ProviderError(ErrorClass.AUTH, "API key not valid", status=400)):
        client = PerModel({PRO: [error]})
        ctx = context(google := runtime("google", client))
        results = rows(ctx, PRO, FLASH, None)
        assert all(isinstance(r, ProviderError) for r in results), error
        assert client.sent == {PRO: 1} and google.out is not None and not google.model_outs


def test_out_for_scopes_each_cause() -> None:
    assert out_for("g", daily(), 120.0, PRO).model == PRO
    not_found = out_for("g", ProviderError(ErrorClass.NOT_FOUND, "models/x", status=404),
                        120.0, "x")
    assert not_found.model == "x" and "every request of x would get it" in not_found.message
    hint = ProviderError(ErrorClass.RATE_LIMITED, "slow", status=429, retry_after_s=1e9)
    assert out_for("g", hint, 120.0, PRO).model is None  # a pacing hint: the whole provider
    spend = ProviderError(ErrorClass.SPEND_CAP, "prepay balance depleted", status=429)
    assert out_for("g", spend, 120.0, PRO).model is None


def test_the_longer_out_of_a_model_wins_and_the_message_is_kept_once() -> None:
    google = runtime("google", PerModel())
    short = ProviderError(ErrorClass.DAILY_QUOTA, "per day", status=429, retry_after_s=10.0)
    assert google.take_out(out_for("google", short, 120.0, PRO))
    assert not google.take_out(out_for("google", daily(), 120.0, PRO))
    assert google.model_outs[PRO].until > time.monotonic() + 1000
    assert google.stats.out.count("per-day quota") == 1
    assert google.take_out(out_for("google", daily(), 120.0, FLASH))
    assert FLASH in google.stats.out and PRO in google.stats.out
