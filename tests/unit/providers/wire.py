"""Helpers for provider unit tests: tiny real images, configs and a recording MockTransport."""

from __future__ import annotations

import asyncio
import io
import json
from base64 import b64encode
from collections.abc import Callable

import httpx
from PIL import Image

from catalog_images.providers.config import ProviderConfig

KEY = "unit-test-key-0123456789abcdef"
BASE = "https://api.test"


def image_bytes(width: int = 16, height: int = 16, fmt: str = "PNG") -> bytes:
    """A complete, decodable image of ``width`` x ``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return b64encode(data).decode()


def config(kind: str = "gemini", **overrides) -> ProviderConfig:
    """A provider config pointing at the fake base URL."""
    fields = {"name": "unit", "kind": kind, "base_url": BASE, "timeout_s": 2.0}
    return ProviderConfig(**{**fields, **overrides})


def json_response(status: int, body: object, headers: dict | None = None) -> httpx.Response:
    """A JSON answer."""
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", **(headers or {})})


Handler = Callable[[httpx.Request], httpx.Response]


class Wire:
    """A MockTransport that records every request and answers from a handler or a script.

    A script is a list of responses (or exceptions) consumed in order; the last one repeats.
    """

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = list(answers)
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def body(self, index: int = 0) -> dict:
        """The JSON body of request ``index``."""
        return json.loads(self.requests[index].content)

    def paths(self) -> list[str]:
        """Method and path of each request, in order."""
        return [f"{r.method} {r.url.path}" for r in self.requests]


def run(coro):
    """Run one coroutine on a fresh event loop."""
    return asyncio.run(coro)


def seen_url(request: httpx.Request) -> str:
    """The URL a request was meant for: a result download goes to the address its host was
    checked at, with the host itself in the Host header."""
    return str(request.url.copy_with(netloc=request.headers["host"].encode()))
