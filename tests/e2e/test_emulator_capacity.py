"""The emulator's model capacity: requests beyond ``max_concurrency`` in service get a 503."""

from __future__ import annotations

import asyncio

import httpx

from catalog_images.devtools.emulator import Emulator, EmulatorConfig


def _body(prompt: str) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseModalities": ["IMAGE"]}}


async def _burst(base_url: str, path: str, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        answers = await asyncio.gather(*(
            client.post(path, json=_body(f"product {i}")) for i in range(count)))
    return sorted(answer.status_code for answer in answers)


def test_requests_beyond_capacity_are_answered_503_at_once_and_counted():
    config = EmulatorConfig(latency_s=0.5, seed=3, max_concurrency=3)
    path = f"/v1beta/models/{config.models[0]}:generateContent"
    with Emulator(config).start() as emu:
        statuses = asyncio.run(_burst(emu.base_url, path, 8))
        assert statuses == [200] * 3 + [503] * 5
        assert emu.stats()["capacity_503"] == 5
        # once the three are served, capacity is free again
        assert asyncio.run(_burst(emu.base_url, path, 3)) == [200] * 3
        assert emu.stats()["capacity_503"] == 5


def test_without_a_capacity_every_request_is_served():
    config = EmulatorConfig(latency_s=0.2, seed=3)
    path = f"/v1beta/models/{config.models[0]}:generateContent"
    with Emulator(config).start() as emu:
        assert asyncio.run(_burst(emu.base_url, path, 8)) == [200] * 8
        assert emu.stats()["capacity_503"] == 0
