"""Gemini Batch Mode client: submit many generateContent requests as one job, at half price.

Requests go inline while the body stays under 20 MB and the images it asks for could come
back inline (``INLINE_RESULTS_LIMIT_BYTES``), otherwise as a JSONL file uploaded to the Files
API, whose results file is then streamed. Creating a batch is not idempotent, so callers
record the batch they intend (a unique display name) before creating it, and find a job
whose answer they never read by listing batches (tasks/batch_run.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from catalog_images.models import ImageRequest
from catalog_images.providers.base import StopSignal
from catalog_images.providers.batch_results import (
    download_to_file,
    parse_line,
    result_item,
    result_lines,
)
from catalog_images.providers.caps import parse_json
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import build_request_body, error_from_response
from catalog_images.providers.http import new_http_client, send

INLINE_LIMIT_BYTES = 20 * 1024 * 1024
# Inline results come back inside the job resource, read whole: a job whose images could
# exceed this goes as a JSONL file, whose results are streamed (a 2K PNG is ~8 MB of base64).
INLINE_RESULTS_LIMIT_BYTES = 64 * 1024 * 1024
RESULT_BYTES = {"1K": 2 * 1024 * 1024, "2K": 8 * 1024 * 1024, "4K": 32 * 1024 * 1024}
SUCCEEDED = frozenset({"JOB_STATE_SUCCEEDED", "BATCH_STATE_SUCCEEDED"})
ENDED_WITHOUT_RESULTS = frozenset({
    "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
    "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"})
TERMINAL = SUCCEEDED | ENDED_WITHOUT_RESULTS


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _name(answer: dict, what: str) -> str:
    """The resource name an answer carries; a ProviderError (status 200) without one."""
    name = answer.get("name")
    if not isinstance(name, str) or not name or len(name) > 500:
        raise ProviderError(ErrorClass.BAD_RESPONSE, f"batch {what} answered no name",
                            status=200)
    return name


def batch_state(resource: dict) -> str:
    """The job state, wherever the API put it."""
    return str(_dict(resource.get("metadata")).get("state") or resource.get("state") or "")


class GeminiBatchClient:
    """Create, poll and read Gemini batch jobs."""

    def __init__(
        self, config: ProviderConfig, api_key: str | None, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._base = config.base_url
        self._client = new_http_client(config, api_key, concurrency=4, transport=transport)

    async def _call(self, method: str, url: str, **kwargs) -> dict:
        response = await send(self._client, method, url, **kwargs)
        if response.status_code != 200:
            raise error_from_response(response)
        payload = parse_json(response.content, "batch API answer")
        if not isinstance(payload, dict):
            raise ProviderError(ErrorClass.BAD_RESPONSE, "batch API answered no JSON object",
                                status=200)
        return payload

    async def create(self, requests: list[tuple[str, ImageRequest]], display_name: str) -> str:
        """Submit one job (every request of one model); returns its name (``batches/ID``)."""
        model = self.config.model_for(requests[0][1].model if requests else None)
        lines = [{"key": key, "request": build_request_body(req)} for key, req in requests]
        inline = {"requests": {"requests": [
            {"request": line["request"], "metadata": {"key": line["key"]}} for line in lines]}}
        body = {"batch": {"display_name": display_name, "input_config": inline}}
        encoded = json.dumps(body).encode()
        results = sum(RESULT_BYTES.get(req.resolution, RESULT_BYTES["4K"]) for _, req in requests)
        if len(encoded) >= INLINE_LIMIT_BYTES or results > INLINE_RESULTS_LIMIT_BYTES:
            jsonl = "\n".join(json.dumps(line) for line in lines).encode()
            uploaded = await self._call(
                "POST", f"{self._base}/upload/v1beta/files", content=jsonl,
                headers={"content-type": "application/jsonl"})
            file_name = _name(_dict(uploaded.get("file")) or uploaded, "upload")
            body = {"batch": {"display_name": display_name,
                              "input_config": {"file_name": file_name}}}
            encoded = json.dumps(body).encode()
        created = await self._call(
            "POST", f"{self._base}/v1beta/models/{model}:batchGenerateContent",
            content=encoded)
        return _name(created, "create")  # status 200: the caller looks the job up

    async def find(self, display_name: str, page_size: int = 1000) -> str | None:
        """The name (``batches/ID``) of the job created as ``display_name``, or None."""
        token = ""
        while True:
            params = {"pageSize": str(page_size), **({"pageToken": token} if token else {})}
            listed = await self._call("GET", f"{self._base}/v1beta/batches", params=params)
            for operation in _list(listed.get("operations")):
                operation = _dict(operation)
                metadata = _dict(operation.get("metadata"))
                name = operation.get("name") or metadata.get("name")
                if metadata.get("displayName") == display_name and isinstance(name, str) and name:
                    return name
            token = str(listed.get("nextPageToken") or "")[:1000]
            if not token:
                return None

    async def wait(self, name: str, deadline_s: float, first_poll_s: float = 2.0,
                   max_poll_s: float = 60.0, stop: StopSignal | None = None) -> dict:
        """Poll with backoff until a terminal state, the deadline or ``stop``; the last
        resource."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        delay = first_poll_s
        resource: dict = {}
        while True:
            try:
                resource = await self._call("GET", f"{self._base}/v1beta/{name}")
            except ProviderError as exc:
                if not exc.retryable:
                    raise
            if batch_state(resource) in TERMINAL or loop.time() >= deadline or (
                stop is not None and stop.requested
            ):
                return resource
            pause = min(delay, max(0.0, deadline - loop.time()))
            await (stop.pause(pause) if stop is not None else asyncio.sleep(pause))
            delay = min(max_poll_s, delay * 1.5)

    async def results(self, resource: dict) -> dict[str, dict]:
        """key -> {"response": ...} or {"error": ...} of a succeeded job (held whole)."""
        return {key: item async for key, item in self.iter_results(resource)}

    async def iter_results(self, resource: dict) -> AsyncIterator[tuple[str, dict]]:
        """(key, {"response": dict} or {"error": dict}) of a succeeded job, as they come.

        The JSONL file route is streamed to a temporary file and read line by line; a
        malformed item or line is skipped with a warning (its row then has no answer).
        """
        response = _dict(resource.get("response"))
        inlined = _dict(response.get("inlinedResponses")).get("inlinedResponses")
        if inlined is not None:
            for item in _list(inlined):
                answer = result_item(item, inline=True)
                if answer is not None:
                    yield answer
            return
        file_name = response.get("responsesFile") or _dict(resource.get("dest")).get(
            "fileName")
        if not file_name or not isinstance(file_name, str):
            return
        url = f"{self._base}/download/v1beta/{file_name}:download"
        with await download_to_file(self._client, url, {"alt": "media"}) as spooled:
            for line in result_lines(spooled, self.config.max_response_bytes):
                answer = result_item(parse_line(line), inline=False)
                if answer is not None:
                    yield answer

    async def aclose(self) -> None:
        """Close connections."""
        await self._client.aclose()
