"""The emulator's per-day and spend-cap 429s and hints of any length, over real HTTP, and the
pipeline's clients reading each cause from them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.models import ImageRequest
from catalog_images.providers.causes import quota_ids
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import GeminiProvider
from catalog_images.providers.openai_images import OpenAIImagesProvider

MODEL = "gemini-3-pro-image"
PATH = f"/v1beta/models/{MODEL}:generateContent"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(latency_s=0.002, seed=5)).start() as server:
        yield server


def body(prompt: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseModalities": ["IMAGE"],
                                 "imageConfig": {"aspectRatio": "1:1", "imageSize": "1K"}}}


def details(error: dict, kind: str) -> list[dict]:
    return [d for d in error.get("details", []) if d["@type"].endswith(kind)]


def test_after_n_requests_a_per_day_429_with_quota_failure_and_hours_of_retry(emu):
    emu.configure(rpd=3, rpd_retry_delay_s=39043.0, retry_after_header=True)
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        codes = [client.post(PATH, json=body(f"p{i}")).status_code for i in range(3)]
        refused = client.post(PATH, json=body("p3"))
    assert codes == [200, 200, 200] and refused.status_code == 429
    error = refused.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert "GenerateRequestsPerDayPerProjectPerModel" in quota_ids(refused.json())
    assert details(error, "RetryInfo")[0]["retryDelay"] == "39043.000s"
    assert refused.headers["Retry-After"] == "39043"
    assert emu.ledger()["images"] == 3 and emu.stats()["daily_429"] == 1
    assert emu.stats()["first_refusal_at"] is not None
    emu.reset_counters()  # a new day
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        assert client.post(PATH, json=body("next day")).status_code == 200


def test_the_per_day_quota_is_counted_per_model(emu):
    other = "gemini-3.1-flash-image"
    emu.configure(models=(MODEL, other), rpd=2)
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        codes = [client.post(PATH, json=body(f"p{i}")).status_code for i in range(3)]
        elsewhere = client.post(PATH.replace(MODEL, other), json=body("flash"))
    assert codes == [200, 200, 429]  # this model's day is spent
    assert elsewhere.status_code == 200  # another model's quota is its own


def test_a_spend_cap_429_carries_the_billing_message_and_no_retry_hint(emu):
    emu.configure(spend_cap_after=1, retry_after_header=True)
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        assert client.post(PATH, json=body("paid")).status_code == 200
        refused = client.post(PATH, json=body("over the cap"))
    error = refused.json()["error"]
    assert refused.status_code == 429 and "spend cap" in error["message"]
    assert not details(error, "RetryInfo") and "Retry-After" not in refused.headers
    assert emu.stats()["spend_429"] == 1 and emu.ledger()["images"] == 1


def test_a_retry_after_of_a_billion_seconds(emu):
    emu.configure(retry_after_header=True, fault_retry_delay_s=1e9)
    emu.script("x", ["429"])
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        refused = client.post(PATH, json=body("x"))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1000000000"
    assert details(refused.json()["error"], "RetryInfo")[0]["retryDelay"] == "1000000000.000s"


async def _error_of(client) -> ProviderError:
    try:
        await client.generate(ImageRequest("a mug", "1K", "1:1"))
    except ProviderError as exc:
        return exc
    finally:
        await client.aclose()
    raise AssertionError("no error")


@pytest.mark.parametrize("kind", ["gemini", "openai-images"])
def test_the_clients_read_each_cause_from_the_emulator(emu, kind):
    model = MODEL if kind == "gemini" else "nano-banana-pro"
    emu.configure(models=(MODEL, "nano-banana-pro"), rpd=0)
    config = ProviderConfig(name="e", kind=kind, base_url=emu.base_url, model=model)
    client_class = GeminiProvider if kind == "gemini" else OpenAIImagesProvider
    daily = asyncio.run(_error_of(client_class(config, None, 1)))
    assert daily.error_class is ErrorClass.DAILY_QUOTA and daily.retry_after_s == 39043.0
    emu.configure(rpd=None, spend_cap_after=0)
    spend = asyncio.run(_error_of(client_class(config, None, 1)))
    assert spend.error_class is ErrorClass.SPEND_CAP and spend.retry_after_s is None
    emu.configure(spend_cap_after=None, rpm=1, quota_window_s=30.0)
    emu.reset_counters()
    asyncio.run(_image_then_error(client_class(config, None, 1)))


async def _image_then_error(client) -> None:
    """One image within a per-minute quota of 1, then a per-minute 429: plain pacing."""
    await client.generate(ImageRequest("first", "1K", "1:1"))
    paced = await _error_of(client)
    assert paced.error_class is ErrorClass.RATE_LIMITED and 0 < paced.retry_after_s <= 30
