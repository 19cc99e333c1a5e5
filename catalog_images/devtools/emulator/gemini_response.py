"""Gemini native response bodies: success, no-image variants and google.rpc error bodies."""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from typing import Any

IMAGE_TOKENS = {"1K": 1120, "2K": 1120, "4K": 2000}  # Nano Banana Pro
FLASH_2_IMAGE_TOKENS = {"1K": 1120, "2K": 1680, "4K": 2520}  # Nano Banana 2
FLASH_IMAGE_TOKENS = 1290  # Nano Banana (gemini-2.5-flash-image)
REFERENCE_IMAGE_TOKENS = 560
THOUGHT_TOKENS = 184  # the least thinking an answer reports
THOUGHT_TOKENS_SPREAD = 600  # thinking varies by prompt: 184 to 783 tokens
TEXT_REPLY = "Here is the product image you asked for."
THOUGHT_TEXT = (
    "**Composing the product shot**\n\nI'm centring the product on a plain backdrop with a "
    "soft surface line, keeping the requested aspect ratio and a catalogue-style look."
)
NO_IMAGE_TEXT = "I can describe the product, but I was not able to generate an image this time."
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
    "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. "
    "* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
    "Please retry in {delay:.2f}s."
)


def image_tokens(model: str, image_size: str) -> int:
    """Output tokens one image costs."""
    if model.startswith("gemini-2.5-flash-image"):
        return FLASH_IMAGE_TOKENS
    if model.startswith("gemini-3.1-flash-image"):
        return FLASH_2_IMAGE_TOKENS[image_size]
    return IMAGE_TOKENS[image_size]


def thought_tokens(prompt: str) -> int:
    """Thinking tokens of an answer: always some (thinking is on for image models), more for
    some prompts than others, the same for the same prompt."""
    digest = hashlib.sha256(b"think:" + prompt.encode("utf-8")).digest()
    return THOUGHT_TOKENS + int.from_bytes(digest[:4], "big") % THOUGHT_TOKENS_SPREAD


def response_id() -> str:
    return secrets.token_urlsafe(16)


def _usage(
    prompt: str, references: int, image_tok: int, thoughts: int, text_tok: int = 0
) -> dict[str, Any]:
    text_prompt = max(1, len(prompt) // 4)
    prompt_tok = text_prompt + references * REFERENCE_IMAGE_TOKENS
    details = [{"modality": "TEXT", "tokenCount": text_prompt}]
    if references:
        details.append({"modality": "IMAGE", "tokenCount": references * REFERENCE_IMAGE_TOKENS})
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tok,
        "candidatesTokenCount": image_tok + text_tok,
        "totalTokenCount": prompt_tok + image_tok + text_tok + thoughts,
        "promptTokensDetails": details,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if image_tok:
        usage["candidatesTokensDetails"] = [{"modality": "IMAGE", "tokenCount": image_tok}]
    elif text_tok:
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": text_tok}]
    return usage


def thought_signature(prompt: str) -> str:
    digest = hashlib.sha256(b"sig:" + prompt.encode("utf-8")).digest()
    return base64.b64encode(digest * 3).decode("ascii")


def success_body(
    *,
    model: str,
    prompt: str,
    image_size: str,
    references: int,
    image_b64: str,
    mime_type: str,
    as_data_uri: bool,
    thought_parts: bool,
) -> dict[str, Any]:
    """A STOP candidate whose image part comes after optional text and thought parts."""
    parts: list[dict[str, Any]] = []
    if thought_parts:
        parts.append({"text": TEXT_REPLY})
        parts.append({"text": THOUGHT_TEXT, "thought": True})
    if as_data_uri:
        parts.append({"text": f"data:{mime_type};base64,{image_b64}"})
    else:
        parts.append(
            {
                "inlineData": {"mimeType": mime_type, "data": image_b64},
                "thoughtSignature": thought_signature(prompt),
            }
        )
    image_tok = image_tokens(model, image_size)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": _usage(
            prompt, references, image_tok, thought_tokens(prompt) if thought_parts else 0
        ),
        "modelVersion": model,
        "responseId": response_id(),
    }


def text_only_body(model: str, prompt: str, references: int) -> dict[str, Any]:
    """STOP with a single text part and no image (the "no_image" fault, or TEXT-only asks)."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": NO_IMAGE_TEXT}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": _usage(prompt, references, 0, 0, text_tok=18),
        "modelVersion": model,
        "responseId": response_id(),
    }


def safety_body(model: str, prompt: str, references: int) -> dict[str, Any]:
    """A candidate stopped with IMAGE_SAFETY and no content: no candidate tokens, but the
    prompt and the thinking done before the block are reported (and billed)."""
    return {
        "candidates": [
            {
                "finishReason": "IMAGE_SAFETY",
                "finishMessage": "Unable to show the generated image: it may violate our "
                "policies. Try rephrasing the prompt.",
                "index": 0,
            }
        ],
        "usageMetadata": _usage(prompt, references, 0, thought_tokens(prompt)),
        "modelVersion": model,
        "responseId": response_id(),
    }


def blocked_body(model: str, prompt: str, references: int) -> dict[str, Any]:
    """No candidates; the prompt itself was blocked."""
    return {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": _usage(prompt, references, 0, 0),
        "modelVersion": model,
        "responseId": response_id(),
    }


def error_body(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``{"error": {code, message, status[, details]}}`` like google.rpc.Status."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def format_delay(seconds: float) -> str:
    """google.protobuf.Duration JSON text, rounded up to the millisecond: "1.250s"."""
    return f"{math.ceil(seconds * 1000) / 1000:.3f}s"


PER_MINUTE = ("generativelanguage.googleapis.com/generate_content_requests",
              "GenerateRequestsPerMinutePerProjectPerModel")
PER_DAY = ("generativelanguage.googleapis.com/generate_content_requests_per_day",
           "GenerateRequestsPerDayPerProjectPerModel")
SPEND_CAP_MESSAGE = (
    "Your project has reached its monthly spend cap for the Gemini API, so requests are "
    "blocked until the spend cap is raised or the next billing month starts. Manage the cap "
    "in Google AI Studio: https://aistudio.google.com/billing. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/billing."
)


def refusal_body(kind: str, model: str, limit: int | None, delay_s: float) -> dict[str, Any]:
    """The 429 of quota ``kind``: "minute" (paced), "day" (until the reset) or "spend"."""
    if kind == "spend":
        return spend_cap_error_body()
    return quota_error_body(model, limit, delay_s, PER_DAY if kind == "day" else PER_MINUTE)


def spend_cap_error_body() -> dict[str, Any]:
    """429 RESOURCE_EXHAUSTED for a spend cap: the billing message, a Help link, no retry."""
    details = [{"@type": "type.googleapis.com/google.rpc.Help", "links": [
        {"description": "Gemini API billing", "url": "https://ai.google.dev/gemini-api/docs/billing"}
    ]}]
    return error_body(429, "RESOURCE_EXHAUSTED", SPEND_CAP_MESSAGE, details)


def quota_error_body(
    model: str, limit: int | None, delay_s: float, quota: tuple[str, str] = PER_MINUTE
) -> dict[str, Any]:
    """429 RESOURCE_EXHAUSTED with QuotaFailure (``quota``: metric, id), Help and RetryInfo."""
    delay_s = math.ceil(delay_s * 1000) / 1000
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": quota[0],
                    "quotaId": quota[1],
                    "quotaDimensions": {"location": "global", "model": model},
                    **({"quotaValue": str(limit)} if limit is not None else {}),
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format_delay(delay_s)},
    ]
    shown = math.ceil(delay_s * 100) / 100
    message = QUOTA_MESSAGE.format(
        metric=quota[0], limit=limit if limit is not None else "n/a", model=model, delay=shown
    )
    return error_body(429, "RESOURCE_EXHAUSTED", message, details)


MODEL_NAMES = {"gemini-3-pro-image": "Nano Banana Pro", "gemini-3.1-flash-image": "Nano Banana 2",
               "gemini-2.5-flash-image": "Nano Banana"}


def model_body(model: str) -> dict[str, Any]:
    """models.get: the google.ai.generativelanguage Model resource of a served model."""
    base = model.removesuffix("-preview")
    return {
        "name": f"models/{model}", "baseModelId": base, "version": "001",
        "displayName": MODEL_NAMES.get(base, model),
        "description": f"Image generation model {model} (emulated).",
        "inputTokenLimit": 65536, "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens",
                                       "batchGenerateContent"],
        "thinking": True,
    }


def api_key_invalid_body() -> dict[str, Any]:
    """400 for a wrong key; never includes the key itself."""
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ]
    return error_body(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details
    )


def missing_key_body() -> dict[str, Any]:
    """403 for a request without any key."""
    message = (
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API."
    )
    return error_body(403, "PERMISSION_DENIED", message)
