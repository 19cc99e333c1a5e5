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

import asyncio
import contextlib
import functools
import math
import ssl
import time
from collections.abc import AsyncIterator, Iterator

import httpx

from catalog_images.providers.caps import ACCEPT_ENCODING, read_capped, refused
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.inline_json import read_inline_json
from catalog_images.providers.send_stamp import confirm_send

SHARD_CONNECTIONS = 8
DEFAULT_MAX_BYTES = 160 * 1024 * 1024


class ShardedClient:
    """Several small httpx AsyncClients behind one ``request`` method.

    Every answer is read as a stream under ``max_bytes`` (decompressed; see ``caps``) and
    within ``deadline_s`` overall, so a slow drip cannot hold a request for ever.
    """

    def __init__(self, clients: list[httpx.AsyncClient], max_bytes: int = DEFAULT_MAX_BYTES,
                 deadline_s: float | None = None) -> None:
        self._clients = clients
        self._busy = [0] * len(clients)
        self.max_bytes = max_bytes
        self.deadline_s = deadline_s

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Send on the least busy client; the body is read (capped) before returning."""
        answer, _ = await self.request_json(method, url, None, **kwargs)
        return answer

    async def request_json(self, method: str, url: str, what: str | None,
                           **kwargs) -> tuple[httpx.Response, object]:
        """Like ``request``; with ``what``, a 200 answer's JSON is read as a stream (long
        strings decoded as they come: ``inline_json``) and returned beside an empty body."""
        index = min(range(len(self._clients)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            async with asyncio.timeout(self.deadline_s):
                return await _read(self._clients[index], method, url, self.max_bytes, what,
                                   **kwargs)
        except TimeoutError:
            raise ProviderError(ErrorClass.TIMEOUT,
                                f"no whole answer within {self.deadline_s:.0f}s") from None
        finally:
            self._busy[index] -= 1

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs) -> AsyncIterator[httpx.Response]:
        """A streamed answer on the least busy client (for bodies read piece by piece)."""
        index = min(range(len(self._clients)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            client = self._clients[index]
            response = await client.send(client.build_request(method, url, **kwargs),
                                         stream=True)
            try:
                yield response
            finally:
                await response.aclose()
        finally:
            self._busy[index] -= 1

    async def aclose(self) -> None:
        """Close every connection pool."""
        for client in self._clients:
            await client.aclose()


_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def read_whole(client: httpx.AsyncClient, method: str, url: str, max_bytes: int,
                     **kwargs) -> httpx.Response:
    """Send and read the body under ``max_bytes``; a Response holding the decoded body."""
    answer, _ = await _read(client, method, url, max_bytes, None, **kwargs)
    return answer


async def _read(client: httpx.AsyncClient, method: str, url: str, max_bytes: int,
                what: str | None, **kwargs) -> tuple[httpx.Response, object]:
    """Send and read the answer under ``max_bytes``: a 200's JSON streamed when ``what``
    names it (the Response's body is then empty), else the whole decoded body."""
    request = client.build_request(method, url, **kwargs)
    response = await client.send(request, stream=True)
    payload, body = None, b""
    try:
        if what is not None and response.status_code == 200:
            payload = await read_inline_json(response, max_bytes, what)
        else:
            body = await read_capped(response, max_bytes)
    finally:
        await response.aclose()
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in _DROPPED_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=request, extensions=response.extensions), payload


@functools.cache
def tls_context(trust_env: bool = True) -> ssl.SSLContext:
    """httpx's default TLS context, built once per process: loading the CA bundle costs
    about 0.1 s of CPU per client otherwise."""
    return httpx.create_ssl_context(trust_env=trust_env)


def auth_headers(api_key: str | None, style: str) -> dict[str, str]:
    """The JSON content type plus the key in the header ``style`` names (none without a key)."""
    headers = {"content-type": "application/json", "accept-encoding": ACCEPT_ENCODING}
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
    caps = {"max_bytes": config.max_response_bytes,
            "deadline_s": config.timeout_s + config.connect_timeout_s}
    if transport is not None:
        return ShardedClient(
            [httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport,
                               verify=tls_context())], **caps)
    shards = max(1, math.ceil(concurrency / SHARD_CONNECTIONS))
    per_shard = math.ceil(concurrency / shards)
    return ShardedClient([
        httpx.AsyncClient(
            headers=headers, timeout=timeout, verify=tls_context(),
            limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
        )
        for _ in range(shards)
    ], **caps)


async def _trace(event: str, info: dict) -> None:
    if event.endswith("send_request_headers.complete"):
        confirm_send(time.monotonic())


@contextlib.contextmanager
def _transport_errors() -> Iterator[None]:
    """Timeouts and transport errors as retryable ProviderErrors; an invalid URL refused."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderError(ErrorClass.TIMEOUT, type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise ProviderError(ErrorClass.CONNECTION, type(exc).__name__) from None
    except httpx.InvalidURL:
        raise refused("the provider named an invalid URL") from None


@contextlib.asynccontextmanager
async def send_streamed(client: ShardedClient, method: str, url: str,
                        **kwargs) -> AsyncIterator[httpx.Response]:
    """Like ``send`` but the body is left to the caller (``aiter_raw``), with no cap."""
    with _transport_errors():
        async with client.stream(method, url, extensions={"trace": _trace}, **kwargs) as answer:
            yield answer


async def send(client: ShardedClient, method: str, url: str, **kwargs) -> httpx.Response:
    """Send a request; timeouts and transport errors become retryable ProviderErrors."""
    answer, _ = await send_json(client, method, url, None, **kwargs)
    return answer


async def send_json(client: ShardedClient, method: str, url: str, what: str | None,
                    **kwargs) -> tuple[httpx.Response, object]:
    """``send``, with a 200 answer's JSON (``what`` it is) read as a stream: its long strings
    (inline base64 images) decoded as they arrive, never held as text (``inline_json``)."""
    try:
        with _transport_errors():
            return await client.request_json(method, url, what,
                                             extensions={"trace": _trace}, **kwargs)
    except httpx.HTTPError as exc:  # DecodingError, TooManyRedirects, StreamError...
        raise ProviderError(ErrorClass.BAD_RESPONSE, type(exc).__name__) from None
