"""OpenAI-compatible images response and error bodies."""

from __future__ import annotations

import math
import time
from typing import Any

from .gemini_response import image_tokens

OVERLOADED = "The model is overloaded. Please try again later."
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
TIMEOUT = "Request timed out."
SAFETY = (
    "Your request was rejected as a result of our safety system. Your prompt may contain "
    "text that is not allowed by our safety system."
)


def usage(model: str, prompt: str, image_size: str, images: int) -> dict[str, Any]:
    """gpt-image style usage: input (text only here) and output tokens."""
    text = max(1, len(prompt) // 4)
    output = image_tokens(model, image_size) * images
    return {
        "total_tokens": text + output,
        "input_tokens": text,
        "output_tokens": output,
        "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
    }


def images_body(
    items: list[dict[str, str]], *, model: str, prompt: str, image_size: str, pixels: str,
    output_format: str = "png",
) -> dict[str, Any]:
    """``{"created", "data": [{"b64_json"} | {"url"}], "usage", "size", "output_format"}``."""
    return {
        "created": int(time.time()),
        "data": items,
        "usage": usage(model, prompt, image_size, len(items)),
        "size": pixels,
        "output_format": output_format,
    }


def error_body(
    message: str, kind: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def rate_limit(
    model: str, limit: int | None, delay_s: float, kind: str = "minute"
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """429 body and its ``Retry-After`` (whole seconds, rounded up) / ``retry-after-ms`` headers.

    ``kind`` "day" names the requests-per-day limit; "spend" is ``insufficient_quota``
    (credits or spend limit gone) without a retry hint.
    """
    if kind == "spend":
        message = ("You exceeded your current quota, please check your plan and billing "
                   "details: your credit balance is depleted.")
        return error_body(message, "insufficient_quota", "insufficient_quota"), None
    shown = math.ceil(delay_s * 1000) / 1000
    per = "day (RPD)" if kind == "day" else "min"
    limit_text = f" Limit: {limit} / {per}." if limit is not None else ""
    where = " on requests per day (RPD)" if kind == "day" else ""
    message = (f"Rate limit reached for requests to {model}{where}.{limit_text} "
               f"Please try again in {shown:.3f}s.")
    headers = {
        "Retry-After": str(max(1, math.ceil(delay_s))),
        "retry-after-ms": str(max(1, math.ceil(delay_s * 1000))),
    }
    return error_body(message, "rate_limit_exceeded", "rate_limit_exceeded"), headers
