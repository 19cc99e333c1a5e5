"""Model families, dated rate cards and what an answer costs by its usageMetadata."""

from __future__ import annotations

import pytest

from catalog_images.providers.config import ProviderConfig, get_provider
from catalog_images.providers.model_catalog import (
    FAMILIES,
    family_of,
    known_models,
    retired,
)

PRO, FLASH_2 = FAMILIES["gemini-3-pro-image"], FAMILIES["gemini-3.1-flash-image"]


def usage(prompt_text: int, prompt_images: int = 0, image: int = 1120, thoughts: int = 0,
          text: int = 0) -> dict:
    """A usageMetadata as Google sends it, with per-modality details."""
    prompt = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_images:
        prompt.append({"modality": "IMAGE", "tokenCount": prompt_images})
    out = ([{"modality": "IMAGE", "tokenCount": image}] if image else []) + (
        [{"modality": "TEXT", "tokenCount": text}] if text else [])
    return {"promptTokenCount": prompt_text + prompt_images, "promptTokensDetails": prompt,
            "candidatesTokenCount": image + text, "candidatesTokensDetails": out,
            "thoughtsTokenCount": thoughts}


@pytest.mark.parametrize(("family", "prices"), [
    (PRO, {"1K": 0.134, "2K": 0.134, "4K": 0.24}),
    (FLASH_2, {"1K": 0.067, "2K": 0.101, "4K": 0.151}),
])
def test_each_family_has_its_own_list_prices_and_batch_is_half(family, prices):
    for resolution, price in prices.items():
        assert family.rate_card.list_price(resolution) == price
        assert family.rate_card.list_price(resolution, batch=True) == pytest.approx(price / 2)
    assert family.rate_card.as_of and "pricing" in family.rate_card.source


def test_usage_cost_counts_prompt_images_image_and_thinking_tokens_at_their_rates():
    # 40 text + 2 reference images (560 each) at $2/M, 1120 image tokens at $120/M,
    # 300 thinking tokens at $12/M.
    cost = PRO.rate_card.usage_cost(usage(40, 1120, 1120, 300), image=True)
    assert cost == pytest.approx((40 + 1120) * 2 / 1e6 + 1120 * 120 / 1e6 + 300 * 12 / 1e6)
    assert cost > PRO.rate_card.list_price("1K")  # the list price is a floor
    assert PRO.rate_card.usage_cost(usage(40, 1120, 1120, 300), image=True, batch=True) == (
        pytest.approx(cost / 2))


def test_a_blocked_answer_costs_its_prompt_and_thinking_tokens_only():
    cost = PRO.rate_card.usage_cost(usage(50, 0, 0, 400), image=False)
    assert cost == pytest.approx(50 * 2 / 1e6 + 400 * 12 / 1e6)


def test_usage_without_details_bills_candidates_as_image_tokens_when_an_image_came():
    bare = {"promptTokenCount": 10, "candidatesTokenCount": 1120, "thoughtsTokenCount": 5}
    assert PRO.rate_card.usage_cost(bare, image=True) == pytest.approx(
        (10 * 2 + 1120 * 120 + 5 * 12) / 1e6)
    assert PRO.rate_card.usage_cost(bare, image=False) == pytest.approx(
        (10 * 2 + 1125 * 12) / 1e6)


def test_retired_ids_name_their_replacement_and_stay_in_their_family():
    gone = retired("gemini-3-pro-image-preview")
    assert (gone.replacement, gone.shutdown) == ("gemini-3-pro-image", "2026-06-25")
    assert "gemini-3-pro-image" in gone.message() and "2026-06-25" in gone.message()
    assert retired("gemini-2.5-flash-image").replacement == "gemini-3.1-flash-image"
    assert retired("gemini-3-pro-image") is None
    assert family_of("gemini-3-pro-image-preview") is PRO
    assert family_of("gemini-3.1-flash-image-preview") is FLASH_2
    assert family_of("nano-banana-pro") is None
    assert known_models()[:2] == ["gemini-3-pro-image", "gemini-3.1-flash-image"]


def test_the_ga_model_keeps_the_preview_fingerprint_so_no_image_is_paid_again():
    google = get_provider("google")
    assert google.model == "gemini-3-pro-image"
    assert google.fingerprint_model(None) == "gemini-3-pro-image-preview"
    assert google.fingerprint_model("gemini-3-pro-image-preview") == "gemini-3-pro-image-preview"
    assert google.fingerprint_model("gemini-3.1-flash-image") != google.fingerprint_model(None)
    relay = get_provider("async-task-relay")  # its own name for the same model
    assert relay.fingerprint_model(None) == google.fingerprint_model(None)


def test_google_bills_usage_and_relays_bill_their_flat_price():
    google, relay = get_provider("google"), get_provider("gemini-relay")
    spent = usage(40, 0, 1120, 300)
    charge = google.charge("1K", None, spent, image=True)
    assert charge.basis == "usage" and charge.list_usd == 0.134
    assert charge.cost_usd == PRO.rate_card.usage_cost(spent, image=True)
    flat = relay.charge("1K", None, spent, image=True)
    assert (flat.basis, flat.cost_usd, flat.list_usd) == ("per_image", 0.05, 0.05)
    assert google.charge("1K", None, {}, image=True).cost_usd == 0.134  # no usage: list price
    assert google.charge("2K", "gemini-3.1-flash-image", None, image=True).list_usd == 0.101
    assert relay.charge("1K", None, spent, image=False).cost_usd == 0.0


def test_the_budget_holds_more_than_the_list_price_for_usage_billing():
    google, relay = get_provider("google"), get_provider("gemini-relay")
    assert google.reserve_price("1K", None, 200, 2) > google.image_price("1K")
    assert relay.reserve_price("1K", None, 200, 2) == relay.image_price("1K")


def test_a_provider_names_a_model_its_own_way():
    relay = get_provider("async-task-relay")
    assert relay.model_for(None) == "nano-banana-pro"
    assert relay.model_for("gemini-3-pro-image") == "nano-banana-pro"
    assert relay.model_for("gemini-3.1-flash-image") == "gemini-3.1-flash-image"
    custom = ProviderConfig(name="x", kind="gemini", base_url="https://x.test",
                            prices={"1K": 0.02, "2K": 0.03, "4K": 0.04})
    assert custom.image_price("2K", "gemini-3.1-flash-image") == 0.03  # flat price wins
    assert "usage" in google_basis() and "flat" in custom.cost_basis()


def google_basis() -> str:
    return get_provider("google").cost_basis()


def test_a_providers_file_can_change_a_rate_card_when_prices_change(tmp_path):
    from catalog_images.providers.config import ConfigError, load_providers

    path = tmp_path / "p.toml"
    path.write_text('[providers.google.rates."gemini-3-pro-image"]\n'
                    'output_text = 10.0\noutput_image = 100.0\nas_of = "2026-12-01"\n')
    google = load_providers(path)["google"]
    card = google.rate_card(None)
    assert (card.output_text, card.input_text, card.as_of) == (10.0, 2.0, "2026-12-01")
    assert google.image_price("1K") == 0.112  # 1,120 tokens at the new image rate
    assert google.rate_card("gemini-3.1-flash-image") is FLASH_2.rate_card  # untouched
    assert "2026-12-01" in google.cost_basis()
    path.write_text('[providers.google.rates."gemini-3-pro-image"]\noutput_txt = 1.0\n')
    with pytest.raises(ConfigError, match="unknown rate.*output_txt"):
        load_providers(path)
