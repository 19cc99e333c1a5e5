"""What the emulated provider would bill by tokens, as Google does: every answer's
``usageMetadata`` (prompt text and images, image output, text output and thinking) at the
rates of its model, per million tokens. Kept apart from the per-image ledger (relays)."""

from __future__ import annotations

from collections import Counter
from typing import Any

# USD per million tokens: (input text, input image, output image, output text and thinking).
# The emulator's own copy of the published rates (it never imports the client).
DEFAULT_TOKEN_RATES: dict[str, dict[str, float]] = {
    "gemini-3-pro-image": {"input_text": 2.0, "input_image": 2.0, "output_image": 120.0,
                           "output_text": 12.0},
    "gemini-3.1-flash-image": {"input_text": 0.5, "input_image": 0.5, "output_image": 60.0,
                               "output_text": 3.0},
    "gemini-2.5-flash-image": {"input_text": 0.3, "input_image": 0.3, "output_image": 30.0,
                               "output_text": 2.5},
}
DEFAULT_TOKEN_RATES["gemini-3-pro-image-preview"] = DEFAULT_TOKEN_RATES["gemini-3-pro-image"]
DEFAULT_TOKEN_RATES["gemini-3.1-flash-image-preview"] = DEFAULT_TOKEN_RATES[
    "gemini-3.1-flash-image"]
RATE_KEYS = ("input_text", "input_image", "output_image", "output_text")
BATCH_FACTOR = 0.5


def _by_modality(details: object) -> Counter[str]:
    counts: Counter[str] = Counter()
    for item in details if isinstance(details, list) else ():
        if isinstance(item, dict):
            counts[str(item.get("modality"))] += int(item.get("tokenCount") or 0)
    return counts


def token_counts(usage: dict[str, Any]) -> Counter[str]:
    """Tokens of an answer by kind: input_text, input_image, output_image, output_text."""
    prompt = _by_modality(usage.get("promptTokensDetails"))
    output = _by_modality(usage.get("candidatesTokensDetails"))
    return Counter({
        "input_text": int(usage.get("promptTokenCount") or 0) - prompt["IMAGE"],
        "input_image": prompt["IMAGE"],
        "output_image": output["IMAGE"],
        "output_text": int(usage.get("candidatesTokenCount") or 0) - output["IMAGE"]
        + int(usage.get("thoughtsTokenCount") or 0),
    })


class TokenLedger:
    """Token counts and their price, by model; not thread-safe by itself."""

    def __init__(self) -> None:
        self.answers = 0
        self.usd = 0.0
        self.tokens: Counter[str] = Counter()
        self.usd_by_model: Counter[str] = Counter()

    def bill(self, rates: dict[str, float], model: str, usage: dict[str, Any],
             mode: str = "standard", count: int = 1) -> float:
        """Charge one answer (``count=-1`` takes it back); returns its price in USD."""
        tokens = token_counts(usage)
        usd = sum(tokens[k] * rates.get(k, 0.0) for k in RATE_KEYS) / 1_000_000
        usd *= BATCH_FACTOR if mode == "batch" else 1.0
        self.answers += count
        self.usd += usd * count
        self.usd_by_model[model] += usd * count
        for kind, n in tokens.items():
            self.tokens[kind] += n * count
        return usd

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready: answers billed, usd, tokens by kind, usd by model."""
        return {"answers": self.answers, "usd": round(self.usd, 6),
                "tokens": dict(self.tokens),
                "usd_by_model": {k: round(v, 6) for k, v in self.usd_by_model.items() if v}}
