"""Fixtures for provider unit tests."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def fast_sleep(monkeypatch) -> list[float]:
    """Make asyncio.sleep return at once; the list records the asked delays."""
    real_sleep = asyncio.sleep
    asked: list[float] = []

    async def sleep(delay: float, result=None):
        asked.append(delay)
        await real_sleep(0)
        return result

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch) -> dict[str, list[str]]:
    """Result hosts resolve without the network: to a public address unless the test maps
    the name (host -> addresses) in the returned dict."""
    from catalog_images.providers import downloads

    names: dict[str, list[str]] = {}

    async def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        return [PUBLIC_ADDRESS]

    monkeypatch.setattr(downloads, "system_resolver", resolve)
    return names
