"""The catalog's model column, checked at plan time, and what estimate says it costs."""

from __future__ import annotations

from catalog_images.catalog.estimate import estimate
from catalog_images.catalog.fingerprint import fingerprint
from catalog_images.catalog.plan import PlanSummary
from catalog_images.catalog.read import ROW_NUMBER
from catalog_images.catalog.validate import Rejection, RowValidator
from catalog_images.providers.config import get_provider

GOOGLE = get_provider("google")


def check(validator: RowValidator, number: int, **cells):
    return validator.check({ROW_NUMBER: number, "sku": f"S-{number}", "prompt": "a mug",
                            **cells})


def test_a_row_may_name_a_known_model_and_an_unknown_one_is_rejected_with_the_choices():
    validator = RowValidator(None, "/tmp", None, provider=GOOGLE)
    flash = check(validator, 1, model="gemini-3.1-flash-image")
    default = check(validator, 2, model="")
    wrong = check(validator, 3, model="gemini-9-ultra")
    assert flash["model"] == "gemini-3.1-flash-image" and default["model"] is None
    assert isinstance(wrong, Rejection)
    assert "unknown model 'gemini-9-ultra'" in wrong.reason
    assert "gemini-3-pro-image" in wrong.reason and "gemini-3.1-flash-image" in wrong.reason
    retired = check(validator, 4, model="gemini-3-pro-image-preview")  # a relay may sell it
    assert retired["model"] == "gemini-3-pro-image-preview"


def test_the_fingerprint_follows_the_model_family_and_keeps_the_old_default():
    validator = RowValidator(None, "/tmp", None, provider=GOOGLE)
    default, flash, preview = (check(validator, n, model=m) for n, m in (
        (1, ""), (2, "gemini-3.1-flash-image"), (3, "gemini-3-pro-image-preview")))
    # Before the GA switch a row was fingerprinted with the preview ID: still the same.
    assert default["fingerprint"] == fingerprint("a mug", "2K", "1:1",
                                                 "gemini-3-pro-image-preview", None)
    assert preview["fingerprint"] == default["fingerprint"]
    assert flash["fingerprint"] != default["fingerprint"]


def test_the_runs_model_applies_to_rows_without_one():
    validator = RowValidator(None, "/tmp", None, provider=GOOGLE,
                             model="gemini-3.1-flash-image")
    assert check(validator, 1)["model"] == "gemini-3.1-flash-image"
    assert check(validator, 2, model="gemini-3-pro-image")["model"] == "gemini-3-pro-image"


def test_estimate_prices_each_model_at_its_list_price_and_states_the_basis():
    plan = PlanSummary("c.csv", "p", "s", rows=3, to_generate=3)
    for job in ({"priority": "normal", "resolution": "2K", "model": None},
                {"priority": "normal", "resolution": "2K", "model": "gemini-3.1-flash-image"},
                {"priority": "high", "resolution": "4K", "model": None}):
        plan._count(job)
    relay = get_provider("gemini-relay")
    projected = estimate(plan, {"bulk": [GOOGLE], "priority": [relay]}, 16)
    assert projected["cost_by_model"] == {"gemini-3-pro-image": 0.184,
                                          "gemini-3.1-flash-image": 0.101}
    assert projected["cost_by_provider"] == {"gemini-relay": 0.05, "google": 0.235}
    assert projected["cost_basis"]["google"].startswith("usage: usageMetadata tokens")
    assert projected["cost_basis"]["gemini-relay"].startswith("per image")
    assert plan.models == {None, "gemini-3.1-flash-image"}
    assert plan.list_cost(GOOGLE, batch=True) == 0.5 * (0.134 + 0.101 + 0.24)
