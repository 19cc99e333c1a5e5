"""Parse and validate a Gemini generateContent request body (camelCase or snake_case)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from .config import ASPECT_RATIOS, IMAGE_SIZES

REFERENCE_MIME_TYPES = frozenset(
    ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
)
MAX_REFERENCE_IMAGES = 14
MAX_REFERENCE_BYTES = 7 * 1024 * 1024
MODALITIES = frozenset(("TEXT", "IMAGE"))


class InvalidRequest(ValueError):
    """The body is not an acceptable generateContent request (answered with 400)."""


@dataclass(frozen=True)
class GenerateRequest:
    """What the emulator needs from a request."""

    prompt: str
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    reference_images: int = 0
    wants_image: bool = True


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid value at '{name}': expected an object.")
    return value


def _check_inline(part: dict[str, Any], where: str) -> None:
    inline = _object(_get(part, "inlineData", "inline_data"), f"{where}.inline_data")
    mime = _get(inline, "mimeType", "mime_type")
    data = inline.get("data")
    if mime not in REFERENCE_MIME_TYPES:
        raise InvalidRequest(f"Unsupported MIME type: {mime}")
    if not isinstance(data, str) or not data:
        raise InvalidRequest(f"Invalid value at '{where}.inline_data.data': empty image data.")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed."
        ) from None
    if len(raw) > MAX_REFERENCE_BYTES:
        raise InvalidRequest(f"Inline image at '{where}' exceeds the 7 MB limit.")


def _read_part(part: Any, where: str, texts: list[str]) -> int:
    """Check one part: a text is appended to ``texts``; returns 1 for an inline image."""
    part = _object(part, where)
    if "text" in part:
        if not isinstance(part["text"], str):
            raise InvalidRequest(f"Invalid value at '{where}.text': expected a string.")
        if part["text"].strip():
            texts.append(part["text"])
        return 0
    if _get(part, "inlineData", "inline_data") is not None:
        _check_inline(part, where)
        return 1
    raise InvalidRequest(
        f"* GenerateContentRequest.{where}.data: required oneof "
        "field 'data' must have one initialized field"
    )


def _prompt_and_references(body: dict[str, Any]) -> tuple[str, int]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified")
    texts: list[str] = []
    references = 0
    for i, content in enumerate(contents):
        parts = _object(content, f"contents[{i}]").get("parts")
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for j, part in enumerate(parts):
            references += _read_part(part, f"contents[{i}].parts[{j}]", texts)
    if not texts:
        raise InvalidRequest("* GenerateContentRequest.contents: a non-empty text part is required")
    if references > MAX_REFERENCE_IMAGES:
        raise InvalidRequest(f"At most {MAX_REFERENCE_IMAGES} reference images are supported.")
    return "\n".join(texts), references


def _wants_image(generation: dict[str, Any]) -> bool:
    modalities = _get(generation, "responseModalities", "response_modalities")
    if modalities is None:
        return True
    if not isinstance(modalities, list) or not modalities:
        raise InvalidRequest("Invalid value at 'generation_config.response_modalities'.")
    upper = [str(m).upper() for m in modalities]
    bad = [m for m in upper if m not in MODALITIES]
    if bad:
        raise InvalidRequest(
            f"Invalid value at 'generation_config.response_modalities' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta."
            f'GenerationConfig.Modality), "{bad[0]}"'
        )
    return "IMAGE" in upper


def parse_generate_request(raw: bytes) -> GenerateRequest:
    """Validate the JSON body like the real API; raises InvalidRequest."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"Invalid JSON payload received. {exc.msg}.") from None
    return parse_generate_body(body)


def parse_generate_body(body: Any) -> GenerateRequest:
    """Validate an already decoded request (e.g. one entry of a batch); raises InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Expected an object.")
    prompt, references = _prompt_and_references(body)
    generation = _object(_get(body, "generationConfig", "generation_config"), "generation_config")
    count = _get(generation, "candidateCount", "candidate_count")
    if count not in (None, 1):
        raise InvalidRequest("Only one candidate can be specified in the current model")
    image = _object(_get(generation, "imageConfig", "image_config"), "image_config")
    ratio = _get(image, "aspectRatio", "aspect_ratio") or "1:1"
    size = _get(image, "imageSize", "image_size") or "1K"
    if ratio not in ASPECT_RATIOS:
        raise InvalidRequest(
            f"Unsupported aspect ratio: {ratio}. Supported values are: {', '.join(ASPECT_RATIOS)}."
        )
    if size not in IMAGE_SIZES:
        raise InvalidRequest(
            f"Unsupported image size: {size}. Supported values are: {', '.join(IMAGE_SIZES)}."
        )
    return GenerateRequest(
        prompt=prompt,
        aspect_ratio=ratio,
        image_size=size,
        reference_images=references,
        wants_image=_wants_image(generation),
    )
