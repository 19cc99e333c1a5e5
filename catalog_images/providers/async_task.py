"""Async-task relay client (Kie-style): create a task, poll it, download the result at once.

A created task is never created again for the same attempt: transient poll and download
errors are retried against the same task until its deadline, because a second task for
the same prompt would be paid for twice.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from catalog_images.images import ImageTooLarge, inspect_image, max_pixels
from catalog_images.models import GeneratedImage, ImageRequest
from catalog_images.providers.base import verified_image
from catalog_images.providers.caps import parse_json
from catalog_images.providers.causes import classify_answer
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.downloads import DOWNLOAD_ATTEMPTS, ResultDownloader
from catalog_images.providers.errors import ErrorClass, ProviderError, classify_status
from catalog_images.providers.http import new_http_client, send

__all__ = ["DOWNLOAD_ATTEMPTS", "AsyncTaskProvider"]
POLICY_WORDS = ("content", "policy", "safety", "sensitive", "nsfw")


def build_create_body(request: ImageRequest, model: str) -> dict:
    """The createTask body."""
    return {
        "model": model,
        "input": {"prompt": request.prompt, "aspect_ratio": request.aspect_ratio,
                  "resolution": request.resolution, "output_format": "png"},
    }


def body_code(payload: dict) -> int:
    """The body's ``code`` (500 when missing or not a number)."""
    code = payload.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str):
        return 500
    try:
        return int(code) if code != "" else 500
    except ValueError:
        return 500


def result_url(result_json: object) -> str | None:
    """The first URL of a task's ``resultJson`` (a JSON string); None when it names none."""
    if not result_json:
        return None
    if not isinstance(result_json, str):
        raise ProviderError(ErrorClass.BAD_RESPONSE, "resultJson is not a JSON string",
                            billed=True)
    try:
        parsed = parse_json(result_json.encode(), "resultJson")
    except ProviderError as exc:
        raise ProviderError(exc.error_class, exc.message, billed=True) from None
    urls = parsed.get("resultUrls") if isinstance(parsed, dict) else None
    if not isinstance(urls, list) or not urls:
        return None
    return str(urls[0])


def body_error(payload: dict, what: str) -> ProviderError:
    """An error answered as HTTP 200 with another ``code`` in the body."""
    code = body_code(payload) or 500
    message = f"{what}: code {code} {str(payload.get('msg', ''))[:200]}".strip()
    error_class = ErrorClass.BAD_REQUEST if code == 422 else classify_answer(code, payload)
    return ProviderError(error_class, message, status=code)


def task_failure(data: dict) -> ProviderError:
    """Classify a task that ended in state ``fail``."""
    code = str(data.get("failCode") or "")
    message = f"task failed: {code} {data.get('failMsg') or ''}".strip()
    text = message.lower()
    if any(word in text for word in POLICY_WORDS):
        return ProviderError(ErrorClass.SAFETY, message)
    if code.isdigit() and int(code) >= 500 and "no image" not in text:
        return ProviderError(ErrorClass.UNAVAILABLE, message)
    return ProviderError(ErrorClass.NO_IMAGE, message)


class AsyncTaskProvider:
    """Client for ``/api/v1/jobs/createTask`` + ``/api/v1/jobs/recordInfo``."""

    def __init__(
        self, config: ProviderConfig, api_key: str | None, concurrency: int, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = config.name
        self.model = config.model
        self._model_for = config.model_for
        self._base = config.base_url
        self._poll_initial_s = config.poll_initial_s
        self._poll_max_s = config.poll_max_s
        self._deadline_s = config.task_deadline_s
        self._client = new_http_client(
            config, api_key, concurrency, auth="bearer", transport=transport)
        self._downloads = ResultDownloader(config, transport=transport)
        self._rng = random.Random()

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """Create a task, wait for it, download and verify its image."""
        if request.reference_images:
            raise ProviderError(ErrorClass.BAD_REQUEST,
                                "reference images must be URLs for async-task relays")
        task_id = await self._create(request)
        url = await self._wait(task_id)
        return verified_image(await self._download(url, task_id, request.resolution), request)

    async def _create(self, request: ImageRequest) -> str:
        response = await send(self._client, "POST", f"{self._base}/api/v1/jobs/createTask",
                              json=build_create_body(request, self._model_for(request.model)))
        payload = self._json(response, "createTask")
        if body_code(payload) != 200:
            raise body_error(payload, "createTask")
        data = payload.get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not task_id or not isinstance(task_id, str | int):
            raise ProviderError(ErrorClass.BAD_RESPONSE, "createTask answered no taskId")
        return str(task_id)

    def _json(self, response, what: str) -> dict:
        if response.status_code != 200:
            raise ProviderError(classify_status(response.status_code),
                                f"{what} answered HTTP {response.status_code}",
                                status=response.status_code)
        payload = parse_json(response.content, what)
        if not isinstance(payload, dict):
            raise ProviderError(ErrorClass.BAD_RESPONSE, f"{what}: not a JSON object")
        return payload

    async def _wait(self, task_id: str) -> str:
        """Poll with backoff until success, failure or the deadline; return the result URL."""
        deadline = time.monotonic() + self._deadline_s
        delay = self._poll_initial_s
        while True:
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            try:
                data = await self._record(task_id)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                data = {}
            state = data.get("state")
            if state == "success":
                url = result_url(data.get("resultJson"))
                if url is None:
                    raise ProviderError(ErrorClass.NO_IMAGE, "task succeeded without a URL",
                                        billed=True)
                return url
            if state == "fail":
                raise task_failure(data)
            if time.monotonic() >= deadline:
                raise ProviderError(
                    ErrorClass.TASK_DEADLINE,
                    f"task {task_id} unfinished after {self._deadline_s:.0f}s (state {state})",
                )
            delay = min(self._poll_max_s, delay * 1.5) * self._rng.uniform(0.9, 1.1)

    async def _record(self, task_id: str) -> dict:
        response = await send(self._client, "GET", f"{self._base}/api/v1/jobs/recordInfo",
                              params={"taskId": task_id})
        payload = self._json(response, "recordInfo")
        if body_code(payload) != 200:
            raise body_error(payload, "recordInfo")
        data = payload.get("data")
        return data if isinstance(data, dict) else {}

    async def _download(self, url: str, task_id: str, resolution: str) -> bytes:
        """Download the result at once without the key, retrying the same URL while it is
        not a whole image; a paid image is never redone."""

        def whole(data: bytes) -> None:
            try:
                inspect_image(data, max_pixels(resolution))
            except ImageTooLarge as exc:  # a bomb: downloading it again will not help
                raise ProviderError(ErrorClass.REFUSED, str(exc), billed=True) from None

        return await self._downloads.fetch(url, f"result of task {task_id}", check=whole)

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._client.aclose()
        await self._downloads.aclose()
