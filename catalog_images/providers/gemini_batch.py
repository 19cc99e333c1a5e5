"""Gemini Batch Mode client: submit many generateContent requests as one job, at half price.

Requests are written one at a time to a JSONL file (providers/batch_input.py); they go
inline while the body stays under 20 MB and the images it asks for could come back inline
(``INLINE_RESULTS_LIMIT_BYTES``), otherwise the file is uploaded to the Files API in pieces
(resumable protocol) and its results file is then streamed. Creating a batch is not
idempotent, so callers record the batch they intend (a unique display name) before creating
it, and find a job whose answer they never read by listing batches (generation/batch.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from catalog_images.models import ImageRequest
from catalog_images.providers.base import StopSignal
from catalog_images.providers.batch_input import BatchInput
from catalog_images.providers.batch_results import (
    download_to_file,
    parse_line,
    result_item,
    result_lines,
)
from catalog_images.providers.caps import parse_json, refused
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import error_from_response
from catalog_images.providers.http import new_http_client, send

INLINE_LIMIT_BYTES = 20 * 1024 * 1024
FILE_LIMIT_BYTES = 2_000_000_000  # the Files API takes an input file of up to 2 GB
# Inline results come back inside the job resource, read whole: a job whose images could
# exceed this goes as a JSONL file, whose results are streamed (a 2K PNG is ~8 MB of base64).
INLINE_RESULTS_LIMIT_BYTES = 64 * 1024 * 1024
SUCCEEDED = frozenset({"JOB_STATE_SUCCEEDED", "BATCH_STATE_SUCCEEDED"})
ENDED_WITHOUT_RESULTS = frozenset({
    "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
    "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"})
TERMINAL = SUCCEEDED | ENDED_WITHOUT_RESULTS


class UploadFailed(ProviderError):
    """The job's input file could not be uploaded: no job was created (safe to resend)."""

    def __init__(self, cause: ProviderError) -> None:
        super().__init__(cause.error_class, f"upload of the batch input: {cause.message}",
                         status=cause.status, retry_after_s=cause.retry_after_s)


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
        response = await self._answered(method, url, **kwargs)
        payload = parse_json(response.content, "batch API answer")
        if not isinstance(payload, dict):
            raise ProviderError(ErrorClass.BAD_RESPONSE, "batch API answered no JSON object",
                                status=200)
        return payload

    async def create(self, requests: list[tuple[str, ImageRequest]] | BatchInput,
                     display_name: str) -> str:
        """Submit one job (every request of one model); returns its name (``batches/ID``).

        ``requests`` is best a BatchInput (written one request at a time); a list is
        written to one first. The job goes inline when small, else as an uploaded file.
        """
        if not isinstance(requests, BatchInput):
            with BatchInput.of(requests) as batch:
                return await self.create(batch, display_name)
        model = self.config.model_for(requests.model)
        encoded = None
        if (requests.size < INLINE_LIMIT_BYTES
                and requests.result_bytes <= INLINE_RESULTS_LIMIT_BYTES):
            encoded = requests.inline_body(display_name)
        if encoded is None or len(encoded) >= INLINE_LIMIT_BYTES:
            file_name = await self._upload(requests, display_name)
            encoded = json.dumps({"batch": {"display_name": display_name,
                                            "input_config": {"file_name": file_name}}}).encode()
        created = await self._call(
            "POST", f"{self._base}/v1beta/models/{model}:batchGenerateContent",
            content=encoded)
        return _name(created, "create")  # status 200: the caller looks the job up

    async def _upload(self, batch: BatchInput, display_name: str) -> str:
        """Upload the JSONL file with the Files API's resumable protocol, a piece at a time;
        the file's name. UploadFailed (no job was created) on any error."""
        try:
            started = await self._answered("POST", f"{self._base}/upload/v1beta/files", json={
                "file": {"display_name": display_name}}, headers={
                "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(batch.size),
                "X-Goog-Upload-Header-Content-Type": "application/jsonl"})
            url = self._upload_url(started.headers.get("x-goog-upload-url", ""))
            pieces = batch.chunks()
            piece, offset = next(pieces, b""), 0
            while True:
                following = next(pieces, None)
                command = "upload" if following is not None else "upload, finalize"
                sent = await self._answered("POST", url, content=piece, headers={
                    "X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset),
                    "content-type": "application/octet-stream"})
                if following is None:
                    break
                piece, offset = following, offset + len(piece)
            answer = _dict(parse_json(sent.content, "upload answer"))
            return _name(_dict(answer.get("file")) or answer, "upload")
        except ProviderError as exc:
            raise UploadFailed(exc) from None

    def _upload_url(self, url: str) -> str:
        """The upload session URL the provider named, only on the provider's own origin (it
        is sent the key); refused otherwise."""
        base = httpx.URL(self._base)
        try:
            named = httpx.URL(url) if url else None
        except httpx.InvalidURL:
            named = None
        if named is None or (named.scheme, named.host, named.port) != (
                base.scheme, base.host, base.port) or len(url) > 4096:
            raise refused("the upload answer named no upload URL on the provider's own host")
        return url

    async def _answered(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Send; the answer when it is a 200, else its ProviderError."""
        response = await send(self._client, method, url, **kwargs)
        if response.status_code != 200:
            raise error_from_response(response)
        return response

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
