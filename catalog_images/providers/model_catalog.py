"""The image models we know: their families, dated rate cards, and the IDs Google retired.

A *family* is one underlying model, whoever resells it and under whatever name: images of
the same family are interchangeable (the fingerprint names the family, not the provider).
A *rate card* is what Google charges per million tokens of each kind, with the date the
prices were read and where; ``usage_cost`` turns an answer's ``usageMetadata`` into USD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PRICES_AS_OF = "2026-11-30"
PRICES_SOURCE = ("ai.google.dev/gemini-api/docs/pricing, as summarised in the provider "
                 "wire-format reference, sections 2 and 7")
REFERENCE_IMAGE_TOKENS = 560  # prompt tokens of one input image (Pro)
MILLION = 1_000_000


@dataclass(frozen=True)
class RateCard:
    """USD per million tokens of each kind, and the output tokens of one image."""

    as_of: str
    source: str
    input_text: float
    input_image: float
    output_image: float
    output_text: float  # thinking tokens and text output
    image_tokens: Mapping[str, int]  # output tokens of one image, by resolution
    published: Mapping[str, float] = field(default_factory=dict)  # per image, as Google rounds
    batch_factor: float = 0.5
    note: str = ""

    def list_price(self, resolution: str, batch: bool = False) -> float:
        """The per-image list price as published, else the image's output tokens at the
        output image rate."""
        price = self.published.get(resolution)
        if price is None:
            price = self.image_tokens[resolution] * self.output_image / MILLION
        return round(price * (self.batch_factor if batch else 1.0), 6)

    def usage_cost(self, usage: Mapping, *, image: bool, batch: bool = False) -> float:
        """USD of one answer from its ``usageMetadata``.

        Prompt tokens are split by ``promptTokensDetails`` (text and image rates), output
        tokens by ``candidatesTokensDetails`` (without details: image tokens when the answer
        held an image, text otherwise); thinking tokens go at the text output rate.
        """
        text_in, image_in = _split(usage, "promptTokenCount", "promptTokensDetails", "IMAGE")
        out_total = _count(usage.get("candidatesTokenCount"))
        details = usage.get("candidatesTokensDetails")
        if isinstance(details, list) and details:
            text_out, image_out = _split(usage, "candidatesTokenCount",
                                         "candidatesTokensDetails", "IMAGE")
        else:
            text_out, image_out = (0, out_total) if image else (out_total, 0)
        thoughts = _count(usage.get("thoughtsTokenCount"))
        usd = (text_in * self.input_text + image_in * self.input_image
               + image_out * self.output_image + (text_out + thoughts) * self.output_text)
        return round(usd / MILLION * (self.batch_factor if batch else 1.0), 6)


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _split(usage: Mapping, total_key: str, details_key: str, modality: str) -> tuple[int, int]:
    """(other tokens, tokens of ``modality``) of a token count and its per-modality details."""
    total = _count(usage.get(total_key))
    details = usage.get(details_key)
    of_modality = 0
    if isinstance(details, list):
        of_modality = sum(_count(d.get("tokenCount")) for d in details
                          if isinstance(d, dict) and d.get("modality") == modality)
    of_modality = min(of_modality, total)
    return total - of_modality, of_modality


@dataclass(frozen=True)
class ModelFamily:
    """One underlying image model: its current Google ID, its other IDs, its rate card."""

    model: str
    name: str
    rate_card: RateCard
    aliases: tuple[str, ...] = ()  # earlier IDs of the same model (previews)
    fingerprint_name: str = ""  # what fingerprints call it; kept when the ID changes

    @property
    def fingerprint_token(self) -> str:
        """The family's name inside fingerprints (stable, so no image is paid for twice)."""
        return self.fingerprint_name or self.model


@dataclass(frozen=True)
class RetiredModel:
    """A model ID Google shut down, and what replaces it."""

    model: str
    replacement: str
    shutdown: str  # ISO date, or "" when not published

    def message(self) -> str:
        """'X was shut down on DATE; its replacement is Y'."""
        when = f" on {self.shutdown}" if self.shutdown else ""
        return f"{self.model!r} was shut down{when}; its replacement is {self.replacement!r}"


PRO = ModelFamily(
    model="gemini-3-pro-image", name="Nano Banana Pro",
    rate_card=RateCard(
        PRICES_AS_OF, PRICES_SOURCE, input_text=2.00, input_image=2.00, output_image=120.0,
        output_text=12.00, image_tokens=MappingProxyType({"1K": 1120, "2K": 1120, "4K": 2000}),
        published=MappingProxyType({"1K": 0.134, "2K": 0.134, "4K": 0.24})),
    aliases=("gemini-3-pro-image-preview",),
    # Images made with the preview are the same model: their fingerprints stay valid.
    fingerprint_name="gemini-3-pro-image-preview",
)
FLASH_2 = ModelFamily(
    model="gemini-3.1-flash-image", name="Nano Banana 2",
    rate_card=RateCard(
        PRICES_AS_OF, PRICES_SOURCE + " (third-party summaries: verify)", input_text=0.50,
        input_image=0.50, output_image=60.0, output_text=3.00,
        image_tokens=MappingProxyType({"1K": 1120, "2K": 1680, "4K": 2520}),
        published=MappingProxyType({"1K": 0.067, "2K": 0.101, "4K": 0.151}),
        note="output image rate from the reference; input and thinking rates unconfirmed"),
    aliases=("gemini-3.1-flash-image-preview",),
    fingerprint_name="gemini-3.1-flash-image-preview",
)
FLASH = ModelFamily(
    model="gemini-2.5-flash-image", name="Nano Banana",
    rate_card=RateCard(
        PRICES_AS_OF, PRICES_SOURCE, input_text=0.30, input_image=0.30, output_image=30.0,
        output_text=2.50, image_tokens=MappingProxyType({"1K": 1290, "2K": 1290, "4K": 1290}),
        published=MappingProxyType({"1K": 0.039, "2K": 0.039, "4K": 0.039}),
        note="output image rate from the reference; input and text rates unconfirmed"),
)
FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {family.model: family for family in (PRO, FLASH_2, FLASH)})
RETIRED: Mapping[str, RetiredModel] = MappingProxyType({r.model: r for r in (
    RetiredModel("gemini-3-pro-image-preview", "gemini-3-pro-image", "2026-06-25"),
    RetiredModel("gemini-3.1-flash-image-preview", "gemini-3.1-flash-image", ""),
    RetiredModel("gemini-2.5-flash-image", "gemini-3.1-flash-image", "2026-10-02"),
)})
DEFAULT_MODEL = PRO.model
_BY_ID: dict[str, ModelFamily] = {
    name: family for family in FAMILIES.values() for name in (family.model, *family.aliases)}


def family_of(model: str | None) -> ModelFamily | None:
    """The family of a model ID (current or retired), or None for a name we do not know."""
    return _BY_ID.get(model or "")


def known_models() -> list[str]:
    """Every model ID a catalog row may name: current ones first, then retired ones."""
    return [*FAMILIES, *(name for name in _BY_ID if name not in FAMILIES)]


def retired(model: str) -> RetiredModel | None:
    """What replaced ``model`` when Google retired it, or None."""
    return RETIRED.get(model)


@dataclass(frozen=True)
class Charge:
    """What one answer cost: the bill (``cost_usd``) and the per-image list price."""

    cost_usd: float = 0.0
    list_usd: float = 0.0
    basis: str = field(default="per_image")
