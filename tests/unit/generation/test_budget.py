"""The run's spending cap."""

from __future__ import annotations

from catalog_images.generation.budget import Budget


def test_reservations_count_against_the_cap_until_settled():
    budget = Budget(1.0)
    assert budget.reserve(0.4) and budget.reserve(0.4)
    assert not budget.reserve(0.4)  # 1.2 could break the cap
    assert budget.reserved_usd == 0.8 and budget.spent_usd == 0.0
    budget.settle(0.4, billed=False)  # a failure the provider did not charge
    assert budget.reserve(0.2)
    assert abs(budget.reserved_usd - 0.6) < 1e-12


def test_billed_requests_become_spending_and_keep_the_cap_honest():
    budget = Budget(0.3)
    for _ in range(3):
        assert budget.reserve(0.1)
    for _ in range(3):
        budget.settle(0.1, billed=True)
    assert abs(budget.spent_usd - 0.3) < 1e-12 and abs(budget.reserved_usd) < 1e-12
    assert not budget.reserve(0.01)


def test_an_exact_fit_passes_despite_float_rounding():
    budget = Budget(0.3)
    assert budget.reserve(0.1) and budget.reserve(0.2)  # 0.1 + 0.2 > 0.3 in floats
    assert not budget.reserve(1e-6)


def test_without_a_cap_everything_is_reserved():
    budget = Budget(None)
    assert budget.reserve(1e9)
    budget.settle(1e9, billed=True)
    assert budget.spent_usd == 1e9 and budget.reserve(1.0)


def test_the_first_refusal_tells_on_reached_once():
    heard = []
    budget = Budget(0.5, on_reached=heard.append)
    assert budget.reserve(0.4) and not budget.reached
    assert not budget.reserve(0.4) and not budget.reserve(0.4)
    assert heard == [budget] and budget.reached
    assert Budget(None, on_reached=heard.append).reserve(1e9) and len(heard) == 1


def test_a_billed_request_counts_what_it_cost_not_what_was_held():
    budget = Budget(1.0)
    assert budget.reserve(0.16)  # the list price and a thinking allowance
    budget.settle(0.16, True, 0.1391)  # its usageMetadata said this
    assert budget.reserved_usd == 0 and budget.spent_usd == 0.1391
    assert budget.reserve(0.16)
    budget.settle(0.16, True)  # no usage known: the amount held
    assert budget.spent_usd == 0.1391 + 0.16
