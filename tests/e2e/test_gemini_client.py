"""The Gemini native client against the real emulator over loopback HTTP."""

from __future__ import annotations

import asyncio

import pytest

from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.models import ImageRequest
from catalog_images.providers import create_provider
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import (
    ErrorClass,
    ProviderError,
    parse_retry_after_header,
    retry_delay_from_error_body,
)

KEY = "canary-test-key-0123456789abcdef"


def _config(emu: Emulator, **overrides) -> ProviderConfig:
    fields = {"name": "t", "kind": "gemini", "base_url": emu.base_url, "auth": "x-goog-api-key",
              "api_key_env": "T_GEMINI_KEY", "timeout_s": 2.0}
    return ProviderConfig(**{**fields, **overrides})


def _generate(config: ProviderConfig, request: ImageRequest):
    async def go():
        provider = create_provider(config, concurrency=4)
        try:
            return await provider.generate(request)
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.fixture
def emu(monkeypatch):
    monkeypatch.setenv("T_GEMINI_KEY", KEY)
    with Emulator(EmulatorConfig(latency_s=0.0, api_key=KEY, hang_s=5.0)).start() as server:
        yield server


@pytest.mark.parametrize(("size", "ratio", "pixels"), [("1K", "1:1", (1024, 1024)),
                                                       ("2K", "16:9", None), ("4K", "4:5", None)])
def test_generates_a_verified_image_of_the_asked_shape(emu, size, ratio, pixels):
    image = _generate(_config(emu), ImageRequest("a red mug", size, ratio))
    assert image.mime_type == "image/png" and image.data.startswith(b"\x89PNG")
    if pixels:
        assert (image.width, image.height) == pixels
    w, h = map(int, ratio.split(":"))
    assert abs(image.width / image.height - w / h) < 0.02 * (w / h)
    assert image.usage["candidatesTokenCount"] in (1120, 2000)
    assert emu.ledger()["images"] == 1


def test_bearer_auth_and_data_uri_image_parts_of_relays(emu):
    emu.configure(image_as_data_uri=True)
    image = _generate(_config(emu, auth="bearer"), ImageRequest("a lamp", "1K", "3:2"))
    assert (image.width, image.height) != (0, 0)


@pytest.mark.parametrize(
    ("fault", "error_class", "retryable"),
    [("503", ErrorClass.UNAVAILABLE, True), ("500", ErrorClass.UNAVAILABLE, True),
     ("429", ErrorClass.RATE_LIMITED, True), ("malformed", ErrorClass.BAD_RESPONSE, True),
     ("truncated", ErrorClass.BAD_RESPONSE, True), ("reset", ErrorClass.CONNECTION, True),
     ("hang", ErrorClass.TIMEOUT, True), ("safety", ErrorClass.SAFETY, False),
     ("no_image", ErrorClass.NO_IMAGE, False), ("blocked", ErrorClass.BLOCKED, False)],
)
def test_faults_are_classified(emu, fault, error_class, retryable):
    emu.script("teapot", [fault])
    with pytest.raises(ProviderError) as caught:
        _generate(_config(emu, timeout_s=0.5), ImageRequest("a teapot", "1K", "1:1"))
    assert caught.value.error_class is error_class
    assert caught.value.retryable is retryable
    assert KEY not in str(caught.value)
    assert emu.ledger()["images"] == 0


def test_quota_429_carries_the_retry_delay(emu):
    emu.configure(rpm=1, quota_window_s=30.0)
    _generate(_config(emu), ImageRequest("first", "1K", "1:1"))
    with pytest.raises(ProviderError) as caught:
        _generate(_config(emu), ImageRequest("second", "1K", "1:1"))
    assert caught.value.error_class is ErrorClass.RATE_LIMITED
    assert 20 < caught.value.retry_after_s <= 30.5


def test_wrong_key_and_unknown_model_are_final_and_never_echo_the_key(emu, monkeypatch):
    monkeypatch.setenv("T_GEMINI_KEY", "wrong-test-key-0000000000000000")
    with pytest.raises(ProviderError) as caught:
        _generate(_config(emu), ImageRequest("x", "1K", "1:1"))
    assert caught.value.error_class is ErrorClass.AUTH and not caught.value.retryable
    assert "wrong-test-key" not in str(caught.value)
    monkeypatch.setenv("T_GEMINI_KEY", KEY)
    with pytest.raises(ProviderError) as caught:
        _generate(_config(emu, model="no-such-model"), ImageRequest("x", "1K", "1:1"))
    assert caught.value.error_class is ErrorClass.NOT_FOUND


def test_retry_hints_are_parsed_from_every_documented_place():
    body = {"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.837906927s"}]}}
    assert retry_delay_from_error_body(body) == pytest.approx(45.837906927)
    assert retry_delay_from_error_body(
        {"error": {"message": "Quota exceeded. Please retry in 26.6s."}}) == pytest.approx(26.6)
    assert retry_delay_from_error_body({"error": {"message": "busy"}}) is None
    assert parse_retry_after_header("7") == 7.0
    assert parse_retry_after_header("soon") is None


def test_a_batch_create_that_times_out_is_found_by_its_display_name_not_sent_again(emu):
    from catalog_images.generation.batch import _create
    from catalog_images.providers.gemini_batch import GeminiBatchClient

    emu.configure(batch_create_latency_s=1.5, batch_delay_s=0.2)
    config = _config(emu, timeout_s=0.5)

    async def go():
        client = GeminiBatchClient(config, KEY)
        try:
            request = ImageRequest("a slow batch", "1K", "1:1")
            return await _create(client, [("k", request)], "unique-display-name-1"), \
                await client.find("no-such-display-name")
        finally:
            await client.aclose()

    name, missing = asyncio.run(go())
    assert name.startswith("batches/") and missing is None
    assert emu.stats()["requests"] == 1  # one create; the lookups are not creates
    assert not emu.duplicates()
