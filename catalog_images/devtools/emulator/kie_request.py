"""Parse and validate a Kie-style ``createTask`` body (async-task relays)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import ASPECT_RATIOS, IMAGE_SIZES
from .gemini_request import MAX_REFERENCE_IMAGES

OUTPUT_FORMATS = ("png", "jpg", "jpeg")


class InvalidTask(ValueError):
    """Not an acceptable task (answered with body ``code`` 422)."""


@dataclass(frozen=True)
class TaskRequest:
    """What the emulator needs from a createTask body; ``param`` is the body as JSON text."""

    model: str
    prompt: str
    param: str
    aspect_ratio: str = "1:1"
    resolution: str = "1K"
    output_format: str = "png"
    image_input: tuple[str, ...] = ()
    callback_url: str | None = None


def _text(obj: dict[str, Any], name: str, default: str, allowed: tuple[str, ...] = ()) -> str:
    value = obj.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or (allowed and value not in allowed):
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        raise InvalidTask(f"{name} is invalid{hint}")
    return value


def parse_task_request(raw: bytes) -> TaskRequest:
    """Validate the JSON body; raises InvalidTask."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTask(f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise InvalidTask("request body must be a JSON object")
    model = _text(body, "model", "")
    if not model:
        raise InvalidTask("model is required")
    data = body.get("input")
    if not isinstance(data, dict):
        raise InvalidTask("input is required and must be an object")
    prompt = _text(data, "prompt", "")
    if not prompt.strip():
        raise InvalidTask("input.prompt is required")
    images = data.get("image_input") or []
    if not isinstance(images, list) or not all(isinstance(u, str) and u for u in images):
        raise InvalidTask("input.image_input must be a list of image URLs")
    if len(images) > MAX_REFERENCE_IMAGES:
        raise InvalidTask(f"input.image_input accepts at most {MAX_REFERENCE_IMAGES} images")
    ratio = _text(data, "aspect_ratio", "1:1", (*ASPECT_RATIOS, "auto"))
    callback = body.get("callBackUrl")
    return TaskRequest(
        model=model,
        prompt=prompt,
        param=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        aspect_ratio="1:1" if ratio == "auto" else ratio,
        resolution=_text(data, "resolution", "1K", IMAGE_SIZES),
        output_format=_text(data, "output_format", "png", OUTPUT_FORMATS),
        image_input=tuple(images),
        callback_url=callback if isinstance(callback, str) and callback else None,
    )
