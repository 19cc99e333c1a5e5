"""The httpx client every provider module shares: auth headers, pool size, timeouts."""

from __future__ import annotations

import time

import httpx

from tasks.providers.config import ProviderConfig
from tasks.providers.errors import ErrorClass, ProviderError
from tasks.send_stamp import confirm_send


def new_http_client(
    config: ProviderConfig, api_key: str | None, concurrency: int, auth: str | None = None
) -> httpx.AsyncClient:
    """An AsyncClient with the provider's auth header and a pool sized to ``concurrency``."""
    headers = {"content-type": "application/json"}
    style = auth or config.auth
    if api_key and style == "x-goog-api-key":
        headers["x-goog-api-key"] = api_key
    elif api_key and style == "bearer":
        headers["authorization"] = f"Bearer {api_key}"
    return httpx.AsyncClient(
        headers=headers,
        timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


async def _trace(event: str, info: dict) -> None:
    if event.endswith("send_request_headers.complete"):
        confirm_send(time.monotonic())


async def send(client: httpx.AsyncClient, method: str, url: str, **kwargs) -> httpx.Response:
    """Send a request; timeouts and transport errors become retryable ProviderErrors."""
    try:
        return await client.request(method, url, extensions={"trace": _trace}, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderError(ErrorClass.TIMEOUT, type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise ProviderError(ErrorClass.CONNECTION, type(exc).__name__) from None
