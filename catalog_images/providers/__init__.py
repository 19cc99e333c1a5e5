"""Provider registry: one module per wire format, one entry per kind."""

from __future__ import annotations

from typing import Protocol

import httpx

from catalog_images.providers.async_task import AsyncTaskProvider
from catalog_images.providers.base import ImageProvider
from catalog_images.providers.config import ConfigError, ProviderConfig
from catalog_images.providers.gemini import GeminiProvider
from catalog_images.providers.openai_images import OpenAIImagesProvider


class ProviderFactory(Protocol):
    """A client class: config, resolved key, pool size and an optional HTTP transport."""

    def __call__(
        self, config: ProviderConfig, api_key: str | None, concurrency: int, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ImageProvider: ...


# kind -> client class. The emulator speaks the Gemini wire format.
PROVIDER_KINDS: dict[str, ProviderFactory] = {
    "gemini": GeminiProvider,
    "openai-images": OpenAIImagesProvider,
    "async-task": AsyncTaskProvider,
    "emulator": GeminiProvider,
}


def create_provider(
    config: ProviderConfig, concurrency: int, *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ImageProvider:
    """Build the client for ``config`` with a connection pool sized to ``concurrency``.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests); None keeps the
    default sharded connection pools.
    """
    factory = PROVIDER_KINDS.get(config.kind)
    if factory is None:
        raise ConfigError(f"provider {config.name!r}: unknown kind {config.kind!r}")
    return factory(config, config.resolve_api_key(), concurrency, transport=transport)
