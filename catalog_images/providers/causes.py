"""Why a provider refused: the cause of a 429 and the configuration errors, read from the
google.rpc error details (``QuotaFailure``, ``ErrorInfo``) and from the messages.

Not every 429 is a rate limit (wire-format reference, section 7): a per-minute quota is
paced and retried, a per-day quota is spent until its reset, and a spend cap, a depleted
prepay balance or a billing-tier limit answers 429 until a person acts. Billing that is not
enabled answers 400/403 on every request. Each wire format hands its error body here.
"""

from __future__ import annotations

import json
import re

from catalog_images.providers.errors import ErrorClass, classify_status

# Phrases of spend-based 429s: Google's spend caps, prepay and tiers, relays' credits and
# OpenAI's ``insufficient_quota``. "check your plan and billing details" is deliberately
# absent: Google's ordinary per-minute 429 says it too.
_SPEND = re.compile(
    r"spend(?:ing)?[ _-]?(?:cap|limit)|prepa(?:y|id)|credit balance|insufficient[ _]credit"
    r"|insufficient_quota|balance (?:is )?(?:depleted|exhausted|too low)|out of credits"
    r"|billing tier|tier (?:cap|limit)|monthly (?:cap|limit)|tier (?:was )?downgraded",
    re.IGNORECASE,
)
_PER_DAY = re.compile(r"per ?day|perday|requests per day|\bRPD\b|daily (?:quota|limit)",
                      re.IGNORECASE)
_BILLING_OFF = re.compile(
    r"BILLING_DISABLED|billing (?:is )?(?:not enabled|disabled)|enable billing"
    r"|billing to be enabled|billing account (?:is )?(?:disabled|closed)",
    re.IGNORECASE,
)


def _error_object(body: object) -> dict:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def details_of(body: object, kind: str) -> list[dict]:
    """The ``details[]`` entries of a google.rpc error body whose ``@type`` ends in ``kind``."""
    details = _error_object(body).get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details
            if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def quota_ids(body: object) -> list[str]:
    """Every ``QuotaFailure.violations[]`` quotaId and quotaMetric of an error body."""
    names = []
    for failure in details_of(body, "QuotaFailure"):
        violations = failure.get("violations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict):
                names += [str(violation.get(k, "")) for k in ("quotaId", "quotaMetric")]
    return [name for name in names if name]


def _text(body: object, message: str) -> str:
    """The error's words: message, status, type/code and ErrorInfo reasons."""
    error = _error_object(body)
    parts = [message] + [str(error.get(k, "")) for k in ("message", "status", "type", "code")]
    parts += [str(info.get("reason", "")) for info in details_of(body, "ErrorInfo")]
    if isinstance(body, dict) and not error:
        parts.append(json.dumps(body)[:2000])  # relays' own shapes ({"code", "msg"})
    return " ".join(parts)


def cause_of_429(body: object, message: str = "") -> ErrorClass:
    """RATE_LIMITED (per-minute or unknown), DAILY_QUOTA or SPEND_CAP for a 429 answer."""
    text = _text(body, message)
    if _SPEND.search(text):
        return ErrorClass.SPEND_CAP
    if any(_PER_DAY.search(name) for name in quota_ids(body)) or _PER_DAY.search(text):
        return ErrorClass.DAILY_QUOTA
    return ErrorClass.RATE_LIMITED


def classify_answer(status: int, body: object, message: str = "") -> ErrorClass:
    """The error class of a non-200 answer (or a relay's in-body code), by status and cause."""
    if status == 429:
        return cause_of_429(body, message)
    if status == 402:  # payment required: relays' way of saying the credits are gone
        return ErrorClass.SPEND_CAP
    text = _text(body, message)
    if status in (400, 403) and _BILLING_OFF.search(text):
        return ErrorClass.BILLING_DISABLED
    if status == 400 and "API_KEY_INVALID" in text + json.dumps(body or {}, default=str):
        return ErrorClass.AUTH
    return classify_status(status)
