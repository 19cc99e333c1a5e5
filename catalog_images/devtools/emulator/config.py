"""Emulator settings: one validated, immutable dataclass shared by the core and all routes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .token_ledger import DEFAULT_TOKEN_RATES

# Hostile mode (hostile.py): answers a broken or malicious provider could send.
HOSTILE_FAULT_KINDS: tuple[str, ...] = (
    "oversized", "gzip_bomb", "deep_json", "endless_retry_after", "bad_base64", "png_bomb",
    "url_link_local", "url_loopback", "url_redirect", "bad_batch_item")
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "503",
    "500",
    "hang",
    "reset",
    "malformed",
    "truncated",
    "safety",
    "no_image",
    "blocked",
    "wrong_shape",
    *HOSTILE_FAULT_KINDS,
)
SCRIPT_ENTRIES: frozenset[str] = frozenset((*FAULT_KINDS, "ok"))
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
IMAGE_SIZES: tuple[str, ...] = ("1K", "2K", "4K")
IMAGE_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
BATCH_OUTCOMES: tuple[str, ...] = ("SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED")
# Bytes of a PNG answer by image size with ``realistic_images`` (what Google answers at each
# size: issue 15, reference section 7); PNGs of noise, valid and of the asked dimensions.
REALISTIC_IMAGE_BYTES: dict[str, int] = {"1K": 1_500_000, "2K": 6_000_000, "4K": 20_000_000}


def _default_prices() -> dict[str, float]:
    return {"1K": 0.134, "2K": 0.134, "4K": 0.24, "gemini-3.1-flash-image:1K": 0.067,
            "gemini-3.1-flash-image:2K": 0.101, "gemini-3.1-flash-image:4K": 0.151,
            "gemini-2.5-flash-image": 0.039}


def _default_batch_prices() -> dict[str, float]:
    return {k: round(v / 2, 6) for k, v in _default_prices().items()}


def batch_outcome_state(outcome: str) -> str:
    """``"EXPIRED"`` or ``"JOB_STATE_EXPIRED"`` -> ``"JOB_STATE_EXPIRED"``."""
    return "JOB_STATE_" + str(outcome).upper().removeprefix("JOB_STATE_")


@dataclass(frozen=True)
class EmulatorConfig:
    """Behaviour of the emulated provider; every field has a default.

    ``faults`` maps a kind from ``FAULT_KINDS`` to its per-request probability (sum <= 1).
    ``prices_usd`` keys are tried as ``"MODEL:SIZE"``, ``"MODEL"``, then ``"SIZE"``;
    ``batch_prices_usd`` likewise for images delivered by Gemini Batch Mode.
    ``task_queue_s`` is the extra time an async task (Kie-style) spends ``waiting``;
    ``batch_delay_s`` the time a batch takes from creation to its terminal state, and
    ``batch_outcome`` that state (``SUCCEEDED``, ``FAILED``, ``EXPIRED`` or ``CANCELLED``,
    with or without the ``JOB_STATE_`` prefix). ``batch_create_latency_s`` is how long a
    batch create call takes to answer once the job exists: a client killed in that window
    leaves a job it never heard of, which it must find again by listing batches.
    ``image_format`` is the type of every image answered (``png``, ``jpeg`` or ``webp``),
    with the matching MIME type in each wire format. ``hostile_bytes`` is the size of the
    ``oversized`` body and the inflated size of the ``gzip_bomb`` body (hostile.py).
    ``max_file_bytes``: the largest file the Files API takes (2 GB); a larger upload is
    refused with 400 INVALID_ARGUMENT.
    ``rpd``: a per-day quota, per model as Google counts it; once that many requests for a
    model were admitted (since the start or the last reset) every request for that model
    answers a per-day 429 (Gemini: ``QuotaFailure`` quotaId
    ``GenerateRequestsPerDayPerProjectPerModel``, ``RetryInfo`` of ``rpd_retry_delay_s``,
    hours). ``spend_cap_after``: likewise, but a spend-cap 429 with the billing message and
    no retry hint. ``fault_retry_delay_s`` (the "429" fault's RetryInfo and, with
    ``retry_after_header``, its ``Retry-After``) may be of any length, e.g. 1e9.
    ``token_rates`` maps a model to its USD
    per million tokens (``input_text``, ``input_image``, ``output_image``, ``output_text``)
    for the token ledger, which bills every Gemini answer's ``usageMetadata`` as Google does.
    ``max_concurrency`` is the model's capacity: a generation request arriving while that
    many are already being served is answered 503 at once, as an overloaded model does.
    The ``wrong_shape`` fault answers an intact, billed image of another shape:
    ``wrong_aspect_ratio`` (default: 16:9, or 1:1 when 16:9 was asked) at ``wrong_image_size``
    (default: the asked size). ``image_bytes`` maps an image size to the bytes of its PNG
    answers (incompressible noise, e.g. ``REALISTIC_IMAGE_BYTES``); sizes not listed, and JPEG
    or WebP answers, stay small.
    """

    latency_s: float = 0.05
    latency_jitter_s: float = 0.0
    rpm: int | None = None
    quota_window_s: float = 60.0
    retry_after_header: bool = False
    faults: dict[str, float] = field(default_factory=dict)
    fault_retry_delay_s: float = 1.0
    seed: int | None = None
    api_key: str | None = None
    hang_s: float = 120.0
    image_as_data_uri: bool = False
    thought_parts: bool = True
    prices_usd: dict[str, float] = field(default_factory=_default_prices)
    # Served models: Google's GA IDs. A retired ID answers 404 NOT_FOUND, as Google does; a
    # relay that still sells one is emulated by listing it here.
    models: tuple[str, ...] = ("gemini-3-pro-image", "gemini-3.1-flash-image")
    models_endpoint: bool = True  # GET /v1beta/models/{model}; False: a relay without it
    token_rates: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TOKEN_RATES.items()})
    task_models: tuple[str, ...] = ("nano-banana-pro",)
    task_queue_s: float = 0.0
    batch_delay_s: float = 2.0
    batch_outcome: str = "SUCCEEDED"
    batch_create_latency_s: float = 0.0
    batch_prices_usd: dict[str, float] = field(default_factory=_default_batch_prices)
    image_format: str = "png"
    hostile_bytes: int = 256 * 1024 * 1024
    max_file_bytes: int = 2_000_000_000
    rpd: int | None = None
    rpd_retry_delay_s: float = 39043.0
    spend_cap_after: int | None = None
    max_concurrency: int | None = None
    wrong_aspect_ratio: str | None = None
    wrong_image_size: str | None = None
    image_bytes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            faults = {str(k): float(v) for k, v in dict(self.faults).items()}
            prices = {str(k): float(v) for k, v in dict(self.prices_usd).items()}
            token_rates = {str(m): {str(k): float(v) for k, v in dict(r).items()}
                           for m, r in dict(self.token_rates).items()}
            batch_prices = {str(k): float(v) for k, v in dict(self.batch_prices_usd).items()}
            image_bytes = {str(k): int(v) for k, v in dict(self.image_bytes).items()}
            models = _names(self.models)
            task_models = _names(self.task_models)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid config value: {exc}") from None
        object.__setattr__(self, "faults", faults)
        object.__setattr__(self, "prices_usd", prices)
        object.__setattr__(self, "token_rates", token_rates)
        object.__setattr__(self, "batch_prices_usd", batch_prices)
        object.__setattr__(self, "image_bytes", image_bytes)
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "task_models", task_models)
        try:
            _validate(self)
        except TypeError as exc:
            raise ValueError(f"invalid config value: {exc}") from None

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Return a copy with ``changes`` applied; unknown fields raise ValueError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def public_dict(self) -> dict[str, Any]:
        """JSON-ready view with the API key redacted."""
        data = dataclasses.asdict(self)
        data["models"] = list(self.models)
        data["task_models"] = list(self.task_models)
        if self.api_key is not None:
            data["api_key"] = "***"
        return data


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _validate_faults(faults: dict[str, float]) -> None:
    unknown = set(faults) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
    if any(not 0.0 <= p <= 1.0 for p in faults.values()):
        raise ValueError("fault probabilities must be within [0, 1]")
    if sum(faults.values()) > 1.0 + 1e-9:
        raise ValueError("fault probabilities must sum to at most 1")


# Least value of each numeric field that may also be None (None: no such limit).
_MINIMUMS: dict[str, int] = {"hostile_bytes": 1, "max_file_bytes": 1, "rpm": 1, "rpd": 0,
                             "spend_cap_after": 0, "max_concurrency": 1}


def _validate_numbers(cfg: EmulatorConfig) -> None:
    for name in (
        "latency_s",
        "latency_jitter_s",
        "hang_s",
        "fault_retry_delay_s",
        "task_queue_s",
        "batch_delay_s",
        "batch_create_latency_s",
        "rpd_retry_delay_s",
    ):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0")
    for name, least in _MINIMUMS.items():
        value = getattr(cfg, name)
        if value is not None and value < least:
            raise ValueError(f"{name} must be None or >= {least}")


def _validate(cfg: EmulatorConfig) -> None:
    _validate_faults(cfg.faults)
    _validate_numbers(cfg)
    if cfg.quota_window_s <= 0:
        raise ValueError("quota_window_s must be > 0")
    if not cfg.models or not cfg.task_models:
        raise ValueError("models and task_models must not be empty")
    if cfg.image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}")
    _validate_shapes(cfg)
    if batch_outcome_state(cfg.batch_outcome).removeprefix("JOB_STATE_") not in BATCH_OUTCOMES:
        raise ValueError(f"batch_outcome must be one of {', '.join(BATCH_OUTCOMES)}")


def _validate_shapes(cfg: EmulatorConfig) -> None:
    if cfg.wrong_aspect_ratio is not None and cfg.wrong_aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(f"wrong_aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")
    if cfg.wrong_image_size is not None and cfg.wrong_image_size not in IMAGE_SIZES:
        raise ValueError(f"wrong_image_size must be one of {', '.join(IMAGE_SIZES)}")
    for size, count in cfg.image_bytes.items():
        if size not in IMAGE_SIZES or not 0 < count <= 200_000_000:
            raise ValueError("image_bytes maps 1K, 2K or 4K to a byte count up to 200000000")


def wrong_shape_of(cfg: EmulatorConfig, image_size: str, aspect_ratio: str) -> tuple[str, str]:
    """The (image size, aspect ratio) a ``wrong_shape`` fault answers instead of the asked."""
    ratio = cfg.wrong_aspect_ratio or ("1:1" if aspect_ratio == "16:9" else "16:9")
    return cfg.wrong_image_size or image_size, ratio
