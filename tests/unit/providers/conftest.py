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
