"""Parse and validate an OpenAI-compatible ``/v1/images/generations`` body (Gemini relays)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .config import ASPECT_RATIOS, IMAGE_SIZES

RESPONSE_FORMATS = ("b64_json", "url")
PIXEL_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
RATIO_TOLERANCE = 0.05  # "1792x1024" is 16:9 within 1.6 %


class InvalidImagesRequest(ValueError):
    """Not an acceptable request (answered with 400 ``invalid_request_error``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ImagesRequest:
    """What the emulator needs from an images request."""

    model: str
    prompt: str
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    response_format: str = "b64_json"


def ratio_of_size(size: str) -> str | None:
    """Aspect ratio meant by ``size``: "16:9", "1024x1024" (nearest ratio), "auto" -> None."""
    if size in ("", "auto"):
        return None
    if size in ASPECT_RATIOS:
        return size
    match = PIXEL_SIZE.match(size)
    if match is None or not int(match.group(1)) or not int(match.group(2)):
        raise InvalidImagesRequest(
            f"Invalid size '{size}': use an aspect ratio ({', '.join(ASPECT_RATIOS)}), "
            "WIDTHxHEIGHT or 'auto'.",
            "size",
        )
    wanted = math.log(int(match.group(1)) / int(match.group(2)))
    best = min(ASPECT_RATIOS, key=lambda r: abs(math.log(_ratio(r)) - wanted))
    if abs(math.log(_ratio(best)) - wanted) > math.log1p(RATIO_TOLERANCE):
        raise InvalidImagesRequest(f"Unsupported size '{size}': no matching aspect ratio.", "size")
    return best


def _ratio(ratio: str) -> float:
    a, b = ratio.split(":")
    return int(a) / int(b)


def _string(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidImagesRequest(f"'{name}' must be a string.", name)
    return value


def parse_images_request(raw: bytes) -> ImagesRequest:
    """Validate the JSON body; raises InvalidImagesRequest."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidImagesRequest(f"We could not parse the JSON body: {exc.msg}.") from None
    if not isinstance(body, dict):
        raise InvalidImagesRequest("The body must be a JSON object.")
    model = _string(body, "model", "")
    if not model:
        raise InvalidImagesRequest("Missing required parameter: 'model'.", "model")
    prompt = _string(body, "prompt", "")
    if not prompt.strip():
        raise InvalidImagesRequest("Missing required parameter: 'prompt'.", "prompt")
    n = body.get("n", 1)
    if n != 1 or isinstance(n, bool):
        raise InvalidImagesRequest(
            f"Invalid 'n': {n!r}. {model} generates one image per request; send n=1 "
            "(one request per image).",
            "n",
        )
    response_format = _string(body, "response_format", "b64_json")
    if response_format not in RESPONSE_FORMATS:
        raise InvalidImagesRequest(
            f"Invalid 'response_format': '{response_format}'. Use 'b64_json' or 'url'.",
            "response_format",
        )
    image_size = _string(body, "image_size", "1K").upper()
    if image_size not in IMAGE_SIZES:
        raise InvalidImagesRequest(
            f"Invalid 'image_size': '{image_size}'. Use {', '.join(IMAGE_SIZES)}.", "image_size"
        )
    ratio = ratio_of_size(_string(body, "size", "auto"))
    explicit = _string(body, "aspect_ratio", "auto")
    if explicit != "auto":
        if explicit not in ASPECT_RATIOS:
            raise InvalidImagesRequest(
                f"Invalid 'aspect_ratio': '{explicit}'. Use {', '.join(ASPECT_RATIOS)}.",
                "aspect_ratio",
            )
        ratio = explicit
    return ImagesRequest(
        model=model,
        prompt=prompt,
        aspect_ratio=ratio or "1:1",
        image_size=image_size,
        response_format=response_format,
    )
