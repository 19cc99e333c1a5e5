"""The shared HTTP layer and the registry: injected transports, auth headers, send stamps."""

from __future__ import annotations

import httpx
import pytest

from catalog_images.models import ImageRequest
from catalog_images.providers import PROVIDER_KINDS, create_provider
from catalog_images.providers.async_task import AsyncTaskProvider
from catalog_images.providers.config import ConfigError
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import GeminiProvider
from catalog_images.providers.http import (
    SHARD_CONNECTIONS,
    ShardedClient,
    auth_headers,
    new_http_client,
    send,
)
from catalog_images.providers.openai_images import OpenAIImagesProvider
from catalog_images.providers.send_stamp import SEND_STAMP

from .wire import KEY, Wire, b64, config, image_bytes, json_response, run


@pytest.mark.parametrize(
    ("style", "key", "expected"),
    [("x-goog-api-key", KEY, {"x-goog-api-key": KEY}),
     ("bearer", KEY, {"authorization": f"Bearer {KEY}"}),
     ("none", KEY, {}), ("bearer", None, {}), ("bearer", "", {})])
def test_auth_headers(style, key, expected):
    assert auth_headers(key, style) == {"content-type": "application/json",
                                        "accept-encoding": "gzip, deflate", **expected}


@pytest.mark.parametrize(
    ("concurrency", "shards", "per_shard"),
    [(1, 1, 1), (8, 1, 8), (9, 2, 5), (64, 8, 8), (65, 9, 8)])
def test_without_a_transport_connections_are_spread_over_small_pools(
        monkeypatch, concurrency, shards, per_shard):
    built: list[dict] = []

    class FakeAsyncClient:  # real clients each build an SSL context: slow and not the point
        def __init__(self, **kwargs) -> None:
            built.append(kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", FakeAsyncClient)
    new_http_client(config(timeout_s=7.0, connect_timeout_s=3.0), KEY, concurrency)
    assert len(built) == shards and shards * SHARD_CONNECTIONS >= concurrency
    for kwargs in built:
        assert "transport" not in kwargs
        assert kwargs["limits"] == httpx.Limits(max_connections=per_shard,
                                                max_keepalive_connections=per_shard)
        assert kwargs["timeout"] == httpx.Timeout(7.0, connect=3.0)
        assert kwargs["headers"]["x-goog-api-key"] == KEY


def test_with_a_transport_one_client_sends_everything_through_it_with_the_auth_header():
    wire = Wire(httpx.Response(204))
    client = new_http_client(config(), KEY, 64, auth="bearer", transport=wire.transport)

    async def go():
        try:
            return await send(client, "GET", "https://api.test/ping", params={"a": "1"})
        finally:
            await client.aclose()

    assert run(go()).status_code == 204
    assert len(client._clients) == 1
    [request] = wire.requests
    assert str(request.url) == "https://api.test/ping?a=1"
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_the_least_busy_shard_takes_the_next_request():
    class Recording:
        def __init__(self) -> None:
            self.calls = 0

        def build_request(self, method, url, **kwargs):
            return httpx.Request(method, url)

        async def send(self, request, stream=False):
            self.calls += 1
            return httpx.Response(200, request=request)

    first, second = Recording(), Recording()
    sharded = ShardedClient([first, second])
    sharded._busy[0] = 3  # shard 0 is serving three requests
    run(sharded.request("GET", "https://api.test/"))
    assert (first.calls, second.calls) == (0, 1) and sharded._busy == [3, 0]


@pytest.mark.parametrize(
    ("raised", "error_class"),
    [(httpx.ConnectTimeout("c"), ErrorClass.TIMEOUT), (httpx.ReadTimeout("r"), ErrorClass.TIMEOUT),
     (httpx.ConnectError("refused"), ErrorClass.CONNECTION),
     (httpx.RemoteProtocolError("reset"), ErrorClass.CONNECTION)])
def test_transport_failures_become_retryable_provider_errors(raised, error_class):
    client = new_http_client(config(), KEY, 1, transport=Wire(raised).transport)

    async def go():
        try:
            await send(client, "POST", "https://api.test/x", json={})
        finally:
            await client.aclose()

    with pytest.raises(ProviderError) as caught:
        run(go())
    assert caught.value.error_class is error_class and caught.value.retryable
    assert caught.value.message == type(raised).__name__


def test_the_send_stamp_moves_when_the_request_headers_leave():
    async def handler(request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        await trace("http11.send_request_headers.started", {})
        assert SEND_STAMP.get() == [1.0, False]  # not yet sent
        await trace("http11.send_request_headers.complete", {})
        return httpx.Response(200)

    client = new_http_client(config(), KEY, 1, transport=httpx.MockTransport(handler))

    async def go():
        stamp = [1.0, False]  # what the rate gate sets when it hands out a token
        SEND_STAMP.set(stamp)
        try:
            await send(client, "GET", "https://api.test/")
        finally:
            await client.aclose()
        return stamp

    stamp = run(go())
    assert stamp[1] is True and stamp[0] > 1.0


def test_the_send_stamp_confirms_once_only():
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.extensions["trace"]("http11.send_request_headers.complete", {})
        return httpx.Response(200)

    client = new_http_client(config(), KEY, 1, transport=httpx.MockTransport(handler))

    async def go():
        stamp = [1.0, False]
        SEND_STAMP.set(stamp)
        await send(client, "GET", "https://api.test/")
        first = stamp[0]
        await send(client, "GET", "https://api.test/")  # a second request of the same task
        await client.aclose()
        return first, stamp

    first, stamp = run(go())
    assert stamp == [first, True]


def test_the_registry_maps_every_kind_to_its_client():
    expected = {"gemini": GeminiProvider, "openai-images": OpenAIImagesProvider,
                "async-task": AsyncTaskProvider, "emulator": GeminiProvider}
    assert expected == PROVIDER_KINDS


@pytest.mark.parametrize(
    ("kind", "path", "body", "header"),
    [("gemini", "/v1beta/models/gemini-3-pro-image:generateContent",
      {"candidates": [{"content": {"parts": [
          {"inlineData": {"mimeType": "image/png", "data": b64(image_bytes())}}]}}]},
      "x-goog-api-key"),
     ("emulator", "/v1beta/models/gemini-3-pro-image:generateContent",
      {"candidates": [{"content": {"parts": [{"text": "data:image/png;base64,"
                                              + b64(image_bytes())}]}}]}, "x-goog-api-key"),
     ("openai-images", "/v1/images/generations", {"data": [{"b64_json": b64(image_bytes())}]},
      "authorization")])
def test_create_provider_passes_the_transport_and_the_resolved_key(
        monkeypatch, kind, path, body, header):
    monkeypatch.setenv("UNIT_PROVIDER_KEY", KEY)
    wire = Wire(json_response(200, body))

    async def go():
        provider = create_provider(config(kind, api_key_env="UNIT_PROVIDER_KEY"), 16,
                                   transport=wire.transport)
        try:
            return await provider.generate(ImageRequest("x", "1K", "1:1"))
        finally:
            await provider.aclose()

    assert run(go()).width == 16
    [request] = wire.requests
    assert request.url.path == path and KEY in request.headers[header]


def test_create_provider_refuses_an_unknown_kind():
    unknown = config().model_copy(update={"kind": "carrier-pigeon"})
    with pytest.raises(ConfigError, match="carrier-pigeon"):
        create_provider(unknown, 1)
