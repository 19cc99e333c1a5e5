"""OpenAI-compatible ``/v1/images/generations`` client (relays that resell Nano Banana Pro)."""

from __future__ import annotations

import httpx

from catalog_images.models import GeneratedImage, ImageRequest
from catalog_images.providers.base import decode_base64_image, verified_image
from catalog_images.providers.caps import json_or_none
from catalog_images.providers.causes import classify_answer
from catalog_images.providers.config import ProviderConfig
from catalog_images.providers.downloads import ResultDownloader
from catalog_images.providers.errors import (
    ErrorClass,
    ProviderError,
    parse_retry_after_header,
)
from catalog_images.providers.http import new_http_client, send_json


def build_request_body(request: ImageRequest, model: str, response_format: str) -> dict:
    """The relay's JSON body: Gemini's aspect ratio in ``size``, resolution in ``image_size``."""
    return {
        "model": model, "prompt": request.prompt, "n": 1, "size": request.aspect_ratio,
        "image_size": request.resolution, "response_format": response_format,
    }


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify an OpenAI-style error body ``{"error": {"message", "type", "code"}}``."""
    body = json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "")[:100]
    code = str(error.get("code") or "")[:100]
    message = f"{kind or code} {str(error.get('message', ''))[:300]}".strip()
    message = message or response.reason_phrase
    error_class = classify_answer(response.status_code, body)
    if "content_policy" in code or "content_policy" in kind or "safety" in code:
        error_class = ErrorClass.SAFETY
    elif kind == "rate_limit_exceeded" and error_class is not ErrorClass.DAILY_QUOTA:
        error_class = ErrorClass.RATE_LIMITED
    elif "invalid_api_key" in (code, kind):
        error_class = ErrorClass.AUTH
    return ProviderError(
        error_class, message, status=response.status_code,
        retry_after_s=parse_retry_after_header(response.headers.get("retry-after")),
    )


class OpenAIImagesProvider:
    """Async client for ``POST {base}/v1/images/generations`` (b64_json, or url then GET)."""

    def __init__(
        self, config: ProviderConfig, api_key: str | None, concurrency: int, *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = config.name
        self.model = config.model
        self._model_for = config.model_for
        self._url = f"{config.base_url}/v1/images/generations"
        self._format = config.response_format
        self._client = new_http_client(
            config, api_key, concurrency, auth="bearer", transport=transport)
        self._downloads = ResultDownloader(config, transport=transport)

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """Ask for one image and return it verified."""
        if request.reference_images:
            raise ProviderError(
                ErrorClass.BAD_REQUEST,
                "reference images need the edits endpoint, which this client does not send",
            )
        body = build_request_body(request, self._model_for(request.model), self._format)
        response, payload = await send_json(self._client, "POST", self._url, "images answer",
                                            json=body)
        if response.status_code != 200:
            raise error_from_response(response)
        if not isinstance(payload, dict) or "data" not in payload:
            raise ProviderError(ErrorClass.BAD_RESPONSE, "response is not the images JSON",
                                status=200)
        items = payload["data"]
        if not items or not isinstance(items, list):
            raise ProviderError(ErrorClass.NO_IMAGE, "no image in the answer (empty data)")
        item = items[0] if isinstance(items[0], dict) else {}
        if item.get("b64_json"):
            b64 = item["b64_json"]
            data = decode_base64_image(b64 if isinstance(b64, str) else str(b64))
        elif item.get("url"):
            data = await self._downloads.fetch(str(item["url"]), "image download")
        else:
            raise ProviderError(ErrorClass.NO_IMAGE, "answer has neither b64_json nor url")
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        return verified_image(data, request, usage=usage)

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._client.aclose()
        await self._downloads.aclose()
