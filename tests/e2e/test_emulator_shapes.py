"""The emulator's wrong-shape fault and realistic payloads, through each wire format's real
client over loopback HTTP: the image is intact, billed, and of the configured other shape;
realistic answers are as big as Google's and every one differs."""

from __future__ import annotations

import asyncio

import pytest

from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.devtools.emulator.config import REALISTIC_IMAGE_BYTES
from catalog_images.images import shape_problem
from catalog_images.models import ImageRequest
from catalog_images.providers import create_provider
from catalog_images.providers.config import ProviderConfig

KEY = "canary-test-key-0123456789abcdef"
KINDS = {
    "gemini": {"auth": "x-goog-api-key"},
    "openai-images": {"auth": "bearer"},
    # result files come from the emulator on loopback, over http: allowed for this test only
    "async-task": {"auth": "bearer", "model": "nano-banana-pro", "results_allow_http": True,
                   "results_private_networks": ["127.0.0.1/32"]},
}


@pytest.fixture
def emu(monkeypatch):
    monkeypatch.setenv("T_KEY", KEY)
    config = EmulatorConfig(latency_s=0.0, api_key=KEY, seed=5)
    with Emulator(config).start() as server:
        yield server


def _generate(emu: Emulator, kind: str, *requests: ImageRequest):
    config = ProviderConfig(name="t", kind=kind, base_url=emu.base_url, api_key_env="T_KEY",
                            timeout_s=20.0, **KINDS[kind])

    async def go():
        provider = create_provider(config, concurrency=4)
        try:
            return [await provider.generate(request) for request in requests]
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_wrong_shape_fault_answers_an_intact_billed_image_of_another_shape(emu, kind):
    emu.script("wide mug", ["wrong_shape"])
    asked = ImageRequest("a wide mug", "1K", "16:9")
    [image] = _generate(emu, kind, asked)
    assert (image.width, image.height) == (1024, 1024)  # 1:1, the default when 16:9 is asked
    assert shape_problem(image.width, image.height, "16:9", "1K") == (
        "wrong shape: image is 1024x1024, not aspect ratio 16:9")
    assert emu.ledger()["images"] == 1  # delivered, so billed
    assert emu.stats()["by_outcome"].get("wrong_shape") == 1


def test_the_wrong_shape_and_size_are_configurable(emu):
    emu.configure(faults={"wrong_shape": 1.0}, wrong_aspect_ratio="4:5", wrong_image_size="2K")
    [image] = _generate(emu, "gemini", ImageRequest("a mug", "1K", "1:1"))
    assert shape_problem(image.width, image.height, "4:5", "2K") is None
    assert shape_problem(image.width, image.height, "1:1", "1K") is not None


def test_realistic_images_are_as_big_as_googles_valid_and_all_different(emu):
    emu.configure(image_bytes=REALISTIC_IMAGE_BYTES)
    images = _generate(emu, "gemini", ImageRequest("a mug", "1K", "1:1"),
                       ImageRequest("a mug", "1K", "1:1"), ImageRequest("a mug", "2K", "16:9"))
    one_k, again, two_k = images
    assert 1_400_000 <= len(one_k.data) <= 1_600_000 and one_k.data != again.data
    assert (one_k.width, one_k.height) == (1024, 1024)
    assert 5_700_000 <= len(two_k.data) <= 6_300_000
    assert shape_problem(two_k.width, two_k.height, "16:9", "2K") is None
    emu.configure(image_bytes={})
    [small] = _generate(emu, "gemini", ImageRequest("a mug", "1K", "1:1"))
    assert len(small.data) < 100_000  # the default stays small for tests
