"""The HTTP client every provider module shares: auth headers, pool size, timeouts.

httpcore's connection pool does work quadratic in its number of connections on every
request (measured here: 64 connections in one pool halved throughput against 0.5 s
responses). So a provider's connections are spread over several small httpx clients of at
most ``SHARD_CONNECTIONS`` each, and each request goes to the least busy one.

Every client accepts an optional ``transport`` (an ``httpx.AsyncBaseTransport``): tests pass
``httpx.MockTransport``, a deployment could pass a proxy transport. The caller's transport is
then the pool (it is not sharded) and it is closed with the provider client, as httpx does.
"""

from __future__ import annotations

import math
import time

import httpx

from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.send_stamp import confirm_send

SHARD_CONNECTIONS = 8


class ShardedClient:
    """Several small httpx AsyncClients behind one ``request`` method."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self._clients = clients
        self._busy = [0] * len(clients)

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Send on the least busy client; the body is read before returning."""
        index = min(range(len(self._clients)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            return await self._clients[index].request(method, url, **kwargs)
        finally:
            self._busy[index] -= 1

    async def aclose(self) -> None:
        """Close every connection pool."""
        for client in self._clients:
            await client.aclose()


def auth_headers(api_key: str | None, style: str) -> dict[str, str]:
    """The JSON content type plus the key in the header ``style`` names (none without a key)."""
    headers = {"content-type": "application/json"}
    if api_key and style == "x-goog-api-key":
        headers["x-goog-api-key"] = api_key
    elif api_key and style == "bearer":
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def new_http_client(
    config: ProviderConfig, api_key: str | None, concurrency: int, auth: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ShardedClient:
    """Clients with the provider's auth header and ``concurrency`` connections in all.

    ``auth`` overrides ``config.auth``; with a ``transport``, one client sends everything
    through it (pool limits are then the transport's business).
    """
    headers = auth_headers(api_key, auth or config.auth)
    timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
    if transport is not None:
        return ShardedClient(
            [httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)])
    shards = max(1, math.ceil(concurrency / SHARD_CONNECTIONS))
    per_shard = math.ceil(concurrency / shards)
    return ShardedClient([
        httpx.AsyncClient(
            headers=headers, timeout=timeout,
            limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
        )
        for _ in range(shards)
    ])


async def _trace(event: str, info: dict) -> None:
    if event.endswith("send_request_headers.complete"):
        confirm_send(time.monotonic())


async def send(client: ShardedClient, method: str, url: str, **kwargs) -> httpx.Response:
    """Send a request; timeouts and transport errors become retryable ProviderErrors."""
    try:
        return await client.request(method, url, extensions={"trace": _trace}, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderError(ErrorClass.TIMEOUT, type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise ProviderError(ErrorClass.CONNECTION, type(exc).__name__) from None
