"""Provider error classes: which failures are worth another attempt and which are final."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from enum import StrEnum
from time import time

from catalog_images.secrets import redact


class ErrorClass(StrEnum):
    """Why a provider call did not return an image."""

    RATE_LIMITED = "rate_limited"  # 429
    UNAVAILABLE = "unavailable"  # 500/502/503/504
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    BAD_RESPONSE = "bad_response"  # 200 with malformed JSON or truncated image
    SAFETY = "safety"  # finishReason IMAGE_SAFETY and friends
    BLOCKED = "blocked"  # promptFeedback.blockReason
    NO_IMAGE = "no_image"  # STOP with text only, NO_IMAGE, OTHER...
    WRONG_SHAPE = "wrong_shape"  # an image, but not the asked shape (run policy: fail)
    BAD_REQUEST = "bad_request"  # 400
    AUTH = "auth"  # 401/403 or an invalid key
    NOT_FOUND = "not_found"  # 404: wrong model or base URL
    BILLING_DISABLED = "billing_disabled"  # billing not enabled for the key's project
    DAILY_QUOTA = "daily_quota"  # a per-day quota (ours or the provider's 429) is spent
    SPEND_CAP = "spend_cap"  # 429 for a spend cap, a depleted prepay balance or a tier limit
    ROW_DEADLINE = "row_deadline"  # the row's overall deadline passed before an image came
    TASK_DEADLINE = "task_deadline"  # an async task still unfinished at its deadline
    CIRCUIT_OPEN = "circuit_open"  # no provider of the row's route would take it
    BUDGET = "budget"  # the request could take the run over its spending cap
    STOPPED = "stopped"  # the run was asked to stop (SIGINT/SIGTERM) before this request
    REFUSED = "refused"  # an answer over a safety cap (bytes, JSON depth, pixels, result URL)


RETRYABLE = frozenset(
    {
        ErrorClass.RATE_LIMITED,
        ErrorClass.UNAVAILABLE,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.BAD_RESPONSE,
    }
)
# Errors that say the provider, not the row, is broken: they count against its health.
PROVIDER_FAULTS = RETRYABLE | {ErrorClass.AUTH, ErrorClass.NOT_FOUND, ErrorClass.REFUSED}
# Errors the provider gives every request until a person fixes something (model, key,
# billing): the provider is out for the rest of the run at the first one.
CONFIG_ERRORS = frozenset({ErrorClass.AUTH, ErrorClass.NOT_FOUND, ErrorClass.BILLING_DISABLED})


class ProviderError(Exception):
    """A classified provider failure; its message never contains a secret."""

    usage: dict | None = None  # usageMetadata of an answer without an image (it may be billed)

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        billed: bool = False,
    ) -> None:
        self.error_class = error_class
        self.billed = billed  # the provider charged for this failed request
        self.status = status
        self.retry_after_s = retry_after_s
        self.message = redact(message)[:500]
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed if sent again without paying twice."""
        return self.error_class in RETRYABLE and not self.billed

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status else ""
        return f"{self.error_class.value}: {status}{self.message}"


def classify_status(status: int) -> ErrorClass:
    """Map an HTTP error status to an error class."""
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status in (401, 403):
        return ErrorClass.AUTH
    if status == 404:
        return ErrorClass.NOT_FOUND
    if status in (408, 500, 502, 503, 504) or status >= 500:
        return ErrorClass.UNAVAILABLE if status != 408 else ErrorClass.TIMEOUT
    return ErrorClass.BAD_REQUEST


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")
_RETRY_IN = re.compile(r"retry in ([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b", re.IGNORECASE)


def parse_duration(value: str) -> float | None:
    """Parse a protobuf Duration string such as '26s' or '45.837906927s'."""
    match = _DURATION.match(value or "")
    return float(match.group(1)) if match else None


def parse_retry_after_header(value: str | None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


def retry_delay_from_error_body(body: object) -> float | None:
    """Find google.rpc.RetryInfo.retryDelay, or 'Please retry in Ns' in the message."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = parse_duration(str(detail.get("retryDelay", "")))
            if delay is not None:
                return delay
    match = _RETRY_IN.search(str(error.get("message", "")))
    if match:
        amount = float(match.group(1))
        return amount / 1000 if match.group(2).lower() == "ms" else amount
    return None
