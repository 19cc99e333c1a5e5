"""What a provider's images cost: its model's rate card (with the provider's changes), the
list price per image, and the bill of one answer (by usage or per image).

``Priced`` is a mixin of ``ProviderConfig``: it reads the fields ``model``, ``family``,
``model_names``, ``billing``, ``prices``, ``batch_prices`` and ``rates``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from catalog_images.providers.model_catalog import (
    DEFAULT_MODEL,
    FAMILIES,
    REFERENCE_IMAGE_TOKENS,
    Charge,
    ModelFamily,
    RateCard,
    family_of,
)

RATE_FIELDS = frozenset(
    {"input_text", "input_image", "output_image", "output_text", "as_of", "source"})
THINKING_ALLOWANCE_TOKENS = 2000  # held by the budget beyond the list price, usage billing


def checked_rates(value: dict[str, dict[str, float | str]]) -> dict:
    """A provider's ``rates`` table, when every model and rate in it is one we know."""
    for model, changes in value.items():
        if family_of(model) is None:
            raise ValueError(f"no rate card for model {model!r}")
        unknown = set(changes) - RATE_FIELDS
        if unknown:
            raise ValueError(f"{model}: unknown rate(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(RATE_FIELDS))}")
    return value


class Priced:
    """Model names, rate cards and prices of a provider configuration."""

    if TYPE_CHECKING:  # the fields of ProviderConfig this reads
        model: str
        family: str | None
        model_names: dict[str, str]
        billing: str
        prices: Any
        batch_prices: Any
        rates: dict[str, dict[str, float | str]]

    def rate_card(self, model: str | None) -> RateCard:
        """The rate card of ``model``'s family, with this provider's ``rates`` changes (a
        changed output image rate replaces the published per-image prices)."""
        family = self.family_for(model)
        changes = self.rates.get(family.model) or next(
            (self.rates[alias] for alias in family.aliases if alias in self.rates), {})
        if not changes:
            return family.rate_card
        published = {} if "output_image" in changes else family.rate_card.published
        return replace(family.rate_card, **changes, published=published)

    def model_for(self, model: str | None) -> str:
        """The name this provider expects for ``model`` (None: the provider's own model)."""
        return self.model_names.get(model, model) if model else self.model

    def family_for(self, model: str | None) -> ModelFamily:
        """The family of ``model``; of the provider's own model for None or a name we do not
        know (``family``, else its model; a name unknown there too is Nano Banana Pro, which
        every relay of the seed document resells)."""
        return (family_of(model) or family_of(self.family) or family_of(self.model)
                or FAMILIES[DEFAULT_MODEL])

    def fingerprint_model(self, model: str | None) -> str:
        """The model's name in fingerprints: its family's, so any reseller's image counts."""
        return self.family_for(model).fingerprint_token

    def image_price(self, resolution: str, model: str | None = None,
                    batch: bool = False) -> float:
        """List price of one image: ``prices`` (``batch_prices``, or half in Batch Mode) when
        set, else the model's rate card."""
        if batch and self.batch_prices is not None:
            return self.batch_prices.for_resolution(resolution)
        if self.prices is not None:
            return self.prices.for_resolution(resolution) * (0.5 if batch else 1.0)
        return self.rate_card(model).list_price(resolution, batch)

    def batch_price(self, resolution: str, model: str | None = None) -> float:
        """Price of one image in Batch Mode (half the standard price when none is set)."""
        return self.image_price(resolution, model, batch=True)

    def charge(self, resolution: str, model: str | None, usage: dict | None, *,
               image: bool, batch: bool = False) -> Charge:
        """What one answer costs: by its ``usageMetadata`` when the provider bills usage and
        the answer has it, else the flat price of an image (nothing for no image)."""
        list_usd = self.image_price(resolution, model, batch) if image else 0.0
        if self.billing == "usage" and usage:
            cost = self.rate_card(model).usage_cost(usage, image=image, batch=batch)
            return Charge(cost, list_usd, "usage")
        return Charge(list_usd, list_usd, "per_image")

    def reserve_price(self, resolution: str, model: str | None, prompt_chars: int,
                      references: int) -> float:
        """What the budget holds before a request: the list price, plus under usage billing
        the prompt (about a token per 2 characters, 560 per image) and a thinking allowance."""
        price = self.image_price(resolution, model)
        if self.billing != "usage":
            return price
        card = self.rate_card(model)
        extra = ((prompt_chars // 2) * card.input_text
                 + references * REFERENCE_IMAGE_TOKENS * card.input_image
                 + THINKING_ALLOWANCE_TOKENS * card.output_text) / 1_000_000
        return round(price + extra, 6)

    def cost_basis(self, model: str | None = None) -> str:
        """One line saying how this provider's images are priced."""
        family, card = self.family_for(model), self.rate_card(model)
        if self.billing == "usage":
            return (f"usage: usageMetadata tokens x the {family.model} rate card of {card.as_of}"
                    " (list price per image is a floor: prompt and thinking tokens add to it)")
        if self.prices is not None:
            return "per image: the flat prices of the provider's configuration"
        return f"per image: the {family.model} list price of {card.as_of}"

