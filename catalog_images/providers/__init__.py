"""Provider registry: one module per wire format, one entry per kind."""

from __future__ import annotations

from collections.abc import Callable

from catalog_images.providers.async_task import AsyncTaskProvider
from catalog_images.providers.base import ImageProvider
from catalog_images.providers.config import ConfigError, ProviderConfig
from catalog_images.providers.gemini import GeminiProvider
from catalog_images.providers.openai_images import OpenAIImagesProvider

ProviderFactory = Callable[[ProviderConfig, str | None, int], ImageProvider]

# kind -> client class. The emulator speaks the Gemini wire format.
PROVIDER_KINDS: dict[str, ProviderFactory] = {
    "gemini": GeminiProvider,
    "openai-images": OpenAIImagesProvider,
    "async-task": AsyncTaskProvider,
    "emulator": GeminiProvider,
}


def create_provider(config: ProviderConfig, concurrency: int) -> ImageProvider:
    """Build the client for ``config`` with a connection pool sized to ``concurrency``."""
    factory = PROVIDER_KINDS.get(config.kind)
    if factory is None:
        raise ConfigError(f"provider {config.name!r}: unknown kind {config.kind!r}")
    return factory(config, config.resolve_api_key(), concurrency)
