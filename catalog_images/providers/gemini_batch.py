"""Gemini Batch Mode client: submit many generateContent requests as one job, at half price.

Requests go inline while the body stays under 20 MB, otherwise as a JSONL file uploaded to
the Files API. Creating a batch is not idempotent, so callers record the batch they intend
(a unique display name) before creating it, and find a job whose answer they never read by
listing batches (tasks/batch_run.py).
"""

from __future__ import annotations

import asyncio
import json

import httpx

from catalog_images.models import ImageRequest
from catalog_images.providers.base import StopSignal
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import build_request_body, error_from_response
from catalog_images.providers.http import new_http_client, send

INLINE_LIMIT_BYTES = 20 * 1024 * 1024
SUCCEEDED = frozenset({"JOB_STATE_SUCCEEDED", "BATCH_STATE_SUCCEEDED"})
ENDED_WITHOUT_RESULTS = frozenset({
    "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
    "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"})
TERMINAL = SUCCEEDED | ENDED_WITHOUT_RESULTS


def batch_state(resource: dict) -> str:
    """The job state, wherever the API put it."""
    return str((resource.get("metadata") or {}).get("state") or resource.get("state") or "")


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
        try:
            return response.json()
        except ValueError:
            raise ProviderError(ErrorClass.BAD_RESPONSE, "batch API answered invalid JSON",
                                status=200) from None

    async def create(self, requests: list[tuple[str, ImageRequest]], display_name: str) -> str:
        """Submit one job (every request of one model); returns its name (``batches/ID``)."""
        model = self.config.model_for(requests[0][1].model if requests else None)
        lines = [{"key": key, "request": build_request_body(req)} for key, req in requests]
        inline = {"requests": {"requests": [
            {"request": line["request"], "metadata": {"key": line["key"]}} for line in lines]}}
        body = {"batch": {"display_name": display_name, "input_config": inline}}
        encoded = json.dumps(body).encode()
        if len(encoded) >= INLINE_LIMIT_BYTES:
            jsonl = "\n".join(json.dumps(line) for line in lines).encode()
            uploaded = await self._call(
                "POST", f"{self._base}/upload/v1beta/files", content=jsonl,
                headers={"content-type": "application/jsonl"})
            file_name = (uploaded.get("file") or uploaded).get("name")
            body = {"batch": {"display_name": display_name,
                              "input_config": {"file_name": file_name}}}
            encoded = json.dumps(body).encode()
        created = await self._call(
            "POST", f"{self._base}/v1beta/models/{model}:batchGenerateContent",
            content=encoded)
        return str(created["name"])

    async def find(self, display_name: str, page_size: int = 1000) -> str | None:
        """The name (``batches/ID``) of the job created as ``display_name``, or None."""
        token = ""
        while True:
            params = {"pageSize": str(page_size), **({"pageToken": token} if token else {})}
            listed = await self._call("GET", f"{self._base}/v1beta/batches", params=params)
            for operation in listed.get("operations") or []:
                metadata = operation.get("metadata") or {}
                name = operation.get("name") or metadata.get("name")
                if metadata.get("displayName") == display_name and name:
                    return str(name)
            token = str(listed.get("nextPageToken") or "")
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
        """key -> {"response": ...} or {"error": ...} of a succeeded job."""
        response = resource.get("response") or {}
        inlined = (response.get("inlinedResponses") or {}).get("inlinedResponses")
        out: dict[str, dict] = {}
        if inlined is not None:
            for item in inlined:
                key = str((item.get("metadata") or {}).get("key"))
                out[key] = item
            return out
        file_name = response.get("responsesFile") or (resource.get("dest") or {}).get(
            "fileName")
        if not file_name:
            return out
        raw = await send(self._client, "GET",
                         f"{self._base}/download/v1beta/{file_name}:download",
                         params={"alt": "media"})
        if raw.status_code != 200:
            raise error_from_response(raw)
        for line in raw.text.splitlines():
            if line.strip():
                item = json.loads(line)
                out[str(item.get("key"))] = item
        return out

    async def aclose(self) -> None:
        """Close connections."""
        await self._client.aclose()
