"""Every provider client against the emulator's hostile mode over real loopback HTTP.

Each hostile answer must end as a ProviderError of a known class, read no further than the
cap, and the second host (where result URLs point) must never see the key.
"""

from __future__ import annotations

import asyncio

import pytest

from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.models import ImageRequest
from catalog_images.providers import create_provider
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini_batch import GeminiBatchClient

KEY = "hostile-e2e-key-0123456789abcdef"
CAP = 2 * 1024 * 1024
REQUEST = ImageRequest("a red mug", "1K", "1:1")
LOOPBACK = {"results_allow_http": True, "results_private_networks": ["127.0.0.1/32"]}
KINDS = {
    "gemini": {"kind": "gemini", "auth": "x-goog-api-key"},
    "openai-url": {"kind": "openai-images", "auth": "bearer", "response_format": "url",
                   **LOOPBACK},
    "openai-b64": {"kind": "openai-images", "auth": "bearer"},
    "async-task": {"kind": "async-task", "auth": "bearer", "model": "nano-banana-pro",
                   "poll_initial_s": 0.02, "poll_max_s": 0.05, "task_deadline_s": 10.0,
                   **LOOPBACK},
}
REFUSED, BAD = ErrorClass.REFUSED, ErrorClass.BAD_RESPONSE
EXPECTED = {  # (wire format, fault) -> error class
    **{(k, f): REFUSED for k in ("gemini", "openai-url", "openai-b64", "async-task")
       for f in ("oversized", "gzip_bomb", "deep_json", "png_bomb")},
    ("gemini", "bad_base64"): BAD, ("openai-b64", "bad_base64"): BAD,
    **{(k, f): REFUSED for k in ("openai-url", "async-task")
       for f in ("url_link_local", "url_loopback")},
    ("openai-url", "url_redirect"): BAD, ("async-task", "url_redirect"): BAD,
    **{(k, "endless_retry_after"): ErrorClass.RATE_LIMITED for k in KINDS},
}


@pytest.fixture(scope="module")
def emu():
    config = EmulatorConfig(latency_s=0.0, api_key=KEY, hostile_bytes=8 * CAP)
    with Emulator(config).start(second_host=True) as server:
        yield server


def _config(emu: Emulator, name: str) -> ProviderConfig:
    return ProviderConfig(name=name, base_url=emu.base_url, api_key_env="HOSTILE_E2E_KEY",
                          timeout_s=5.0, max_response_bytes=CAP, **KINDS[name])


def _generate(config: ProviderConfig):
    async def go():
        provider = create_provider(config, concurrency=2)
        try:
            return await provider.generate(REQUEST)
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(("name", "fault"), sorted(EXPECTED))
def test_each_hostile_answer_is_a_known_provider_error(emu, monkeypatch, name, fault):
    monkeypatch.setenv("HOSTILE_E2E_KEY", KEY)
    emu.script("red mug", [fault])
    with pytest.raises(ProviderError) as caught:
        _generate(_config(emu, name))
    error = caught.value
    assert error.error_class is EXPECTED[name, fault], error
    if fault == "endless_retry_after" and name != "async-task":  # hint capping: the retry loop
        assert error.retry_after_s is not None and error.retry_after_s > 10**9
    if fault.startswith("url_") or (fault == "png_bomb" and name != "gemini"):
        assert error.billed and not error.retryable
    assert KEY not in str(error)


@pytest.mark.parametrize("name", ["openai-url", "async-task"])
def test_results_come_from_the_second_host_without_the_key(emu, monkeypatch, name):
    monkeypatch.setenv("HOSTILE_E2E_KEY", KEY)
    emu.clear_scripts()
    before = len(emu.foreign_requests())
    image = _generate(_config(emu, name))
    assert image.width == 1024
    seen = emu.foreign_requests()[before:]
    assert [r["path"].split("/")[2] for r in seen] == ["files"]
    headers = {k.lower(): v for k, v in seen[0]["headers"].items()}
    assert "authorization" not in headers and "x-goog-api-key" not in headers
    assert KEY not in str(seen)


def test_no_request_the_second_host_ever_got_carried_the_key(emu, monkeypatch):
    monkeypatch.setenv("HOSTILE_E2E_KEY", KEY)
    emu.clear_scripts()
    _generate(_config(emu, "openai-url"))  # at least one, whatever ran before
    seen = emu.foreign_requests()
    assert seen and all(KEY not in str(r) for r in seen)


@pytest.mark.parametrize("inline", [True, False])
def test_a_bad_batch_item_fails_only_its_row(emu, monkeypatch, inline):
    monkeypatch.setenv("HOSTILE_E2E_KEY", KEY)
    emu.configure(batch_delay_s=0.05)
    emu.script("bad row", ["bad_batch_item"])
    requests = [("sku-1", ImageRequest("good row one", "1K", "1:1")),
                ("sku-2", ImageRequest("bad row", "1K", "1:1")),
                ("sku-3", ImageRequest("good row three", "1K", "1:1"))]

    async def go():
        client = GeminiBatchClient(_config(emu, "gemini"), KEY)
        try:
            if not inline:
                from catalog_images.providers import gemini_batch
                monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 10)
            name = await client.create(requests, f"hostile-{inline}")
            resource = await client.wait(name, 10.0, first_poll_s=0.05, max_poll_s=0.1)
            return await client.results(resource)
        finally:
            await client.aclose()

    answers = asyncio.run(go())
    assert sorted(answers) == ["sku-1", "sku-3"]
    assert all("response" in item for item in answers.values())
