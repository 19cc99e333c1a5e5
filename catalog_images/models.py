"""Plain data types that travel along a row's path: catalog row -> job -> result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

Resolution = Literal["1K", "2K", "4K"]
RESOLUTIONS: tuple[str, ...] = ("1K", "2K", "4K")
DEFAULT_RESOLUTION: Resolution = "2K"
# Gemini's documented list for gemini-3-pro-image-preview (no "auto").
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)
DEFAULT_ASPECT_RATIO = "1:1"


class RowStatus(StrEnum):
    """Final state of a catalog row in a run report."""

    SUCCEEDED = "succeeded"
    QUARANTINED = "quarantined"  # paid, intact, not the asked shape: kept under quarantine/
    FAILED = "failed"
    REJECTED = "rejected"
    SKIPPED = "skipped"


# The reason of a row skipped because an earlier run quarantined its image of this fingerprint.
QUARANTINED_EARLIER = ("quarantined by an earlier run (wrong shape), not paid for again; "
                       "force the sku to regenerate it")


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """An input image sent inline with the prompt."""

    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What one provider call is asked to produce."""

    prompt: str
    resolution: str = DEFAULT_RESOLUTION
    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    reference_images: tuple[ReferenceImage, ...] = ()
    model: str | None = None  # the model the row or run chose; None: the provider's own


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """A decoded, verified image returned by a provider."""

    data: bytes
    mime_type: str
    width: int
    height: int
    usage: dict = field(default_factory=dict)
    model_version: str | None = None
    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """An accepted catalog row to generate: one row of the plan file.

    The fields are the plan's columns (catalog.validate.JOB_FIELDS), in the same order.
    """

    sku: str
    prompt: str
    resolution: str
    aspect_ratio: str
    reference_image: str | None = None
    priority: str | None = None
    row: int
    fingerprint: str | None = None
    model: str | None = None  # the catalog row's (or the run's) model; None: the provider's

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """A job from a plan row or a stored job dict; unknown keys are ignored."""
        return cls(**{name: data[name] for name in JOB_KEYS if name in data})

    def to_dict(self) -> dict[str, Any]:
        """The plan row (and batch record entry) of this job."""
        return {name: getattr(self, name) for name in JOB_KEYS}


JOB_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Job))
