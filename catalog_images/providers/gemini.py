"""Gemini native ``generateContent`` client (Google's API and Gemini-native relays)."""

from __future__ import annotations

from base64 import b64encode

import httpx

from catalog_images.models import GeneratedImage, ImageRequest
from catalog_images.providers.base import decode_base64_image, verified_image
from catalog_images.providers.caps import json_or_none
from catalog_images.providers.causes import classify_answer
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.errors import (
    ErrorClass,
    ProviderError,
    parse_retry_after_header,
    retry_delay_from_error_body,
)
from catalog_images.providers.http import new_http_client, send_json
from catalog_images.providers.inline_json import Blob

SAFETY_REASONS = frozenset(
    {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY", "PROHIBITED_CONTENT", "SPII",
     "BLOCKLIST", "IMAGE_RECITATION", "RECITATION"}
)


def build_request_body(request: ImageRequest) -> dict:
    """The generateContent JSON body for one image request."""
    parts: list[dict] = [{"text": request.prompt}]
    for ref in request.reference_images:
        parts.append(
            {"inlineData": {"mimeType": ref.mime_type, "data": b64encode(ref.data).decode()}}
        )
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": request.aspect_ratio, "imageSize": request.resolution},
        },
    }


def _inline(part: dict) -> dict | None:
    data = part.get("inlineData") or part.get("inline_data")
    return data if isinstance(data, dict) else None


def find_image_data(parts: list) -> str | None:
    """Base64 data of the answer's image, wherever it is among the parts.

    The last non-thought image part wins (thought parts may carry drafts); a relay's
    ``data:image/...;base64,`` text part is accepted when there is no inline image.
    """
    inline = [p for p in parts if isinstance(p, dict) and _inline(p)]
    images = [
        p for p in inline
        if str(_inline(p).get("mimeType") or _inline(p).get("mime_type") or "image/").startswith(
            "image/"
        )
    ]
    final = [p for p in images if not p.get("thought")] or images
    if final:
        data = _inline(final[-1]).get("data") or ""
        return data if isinstance(data, str) else str(data)  # a Blob stays one
    for part in parts:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str) and text.strip().startswith("data:image/"):
            return text if isinstance(text, Blob) else text.strip()
    return None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return str(value)[:200] if value is not None else None


def _no_image(error_class: ErrorClass, message: str, usage: dict) -> ProviderError:
    """The error of an answer without an image; its ``usage`` says what Google bills for it
    (prompt and thinking tokens)."""
    error = ProviderError(error_class, message)
    error.usage = usage
    return error


def parse_response(payload: object, request: ImageRequest) -> GeneratedImage:
    """Turn a 200 generateContent answer into a verified image or a classified error.

    Any shape is tolerated: a field of the wrong type counts as missing.
    """
    if not isinstance(payload, dict):
        raise ProviderError(ErrorClass.BAD_RESPONSE, "response is not a JSON object")
    usage = _dict(payload.get("usageMetadata"))
    candidates = _list(payload.get("candidates"))
    if not candidates:
        reason = _dict(payload.get("promptFeedback")).get("blockReason")
        if reason:
            raise _no_image(ErrorClass.BLOCKED, f"prompt blocked: {_text(reason)}", usage)
        raise ProviderError(ErrorClass.BAD_RESPONSE, "response has no candidates")
    candidate = _dict(candidates[0])
    finish = str(candidate.get("finishReason") or "STOP")[:60]
    parts = _list(_dict(candidate.get("content")).get("parts"))
    data = find_image_data(parts)
    if not data:
        if finish in SAFETY_REASONS:
            raise _no_image(ErrorClass.SAFETY, f"no image: finishReason {finish}", usage)
        if finish == "MAX_TOKENS" and not parts:
            raise ProviderError(ErrorClass.BAD_RESPONSE, "empty answer: finishReason MAX_TOKENS")
        raise _no_image(ErrorClass.NO_IMAGE, f"no image in the answer: finishReason {finish}",
                        usage)
    return verified_image(
        decode_base64_image(data), request, usage=usage,
        model_version=_text(payload.get("modelVersion")),
        response_id=_text(payload.get("responseId")),
    )


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify a non-200 answer, keeping the server's retry hint."""
    body = json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    message = ""
    if isinstance(error, dict):
        message = f"{error.get('status', '')} {error.get('message', '')}".strip()
    if not message:
        message = response.reason_phrase or "error"
    error_class = classify_answer(response.status_code, body)
    delay = retry_delay_from_error_body(body)
    if delay is None:
        delay = parse_retry_after_header(response.headers.get("retry-after"))
    return ProviderError(
        error_class, message, status=response.status_code, retry_after_s=delay
    )


class GeminiProvider:
    """Async client for ``POST {base}/v1beta/models/{model}:generateContent``."""

    def __init__(
        self, config: ProviderConfig, api_key: str | None, concurrency: int, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = config.name
        self.model = config.model
        self._config = config
        self._client = new_http_client(config, api_key, concurrency, transport=transport)

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """Send one generateContent request (to the request's model, else the provider's)
        and return the verified image."""
        model = self._config.model_for(request.model)
        url = f"{self._config.base_url}/v1beta/models/{model}:generateContent"
        response, payload = await send_json(self._client, "POST", url, "generateContent",
                                            json=build_request_body(request))
        if response.status_code != 200:
            raise error_from_response(response)
        return parse_response(payload, request)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
