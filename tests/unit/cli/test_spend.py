"""The CLI's spend question: asked before the flow starts, from the estimate."""

from __future__ import annotations

import pytest
import typer

from catalog_images.cli import spend
from catalog_images.settings import RunSettings

ESTIMATE = {"rows": 10, "to_generate": 8, "unchanged": 1, "rejected": 1, "cost_usd": 1.072,
            "cost_by_model": {"gemini-3-pro-image": 1.072},
            "cost_by_resolution": {"1K": 0.536, "2K": 0.536}}


@pytest.fixture
def estimated(monkeypatch):
    """The estimate replaced by ESTIMATE; the list records each settings it was asked for."""
    asked: list[RunSettings] = []
    monkeypatch.setattr(spend, "project", lambda settings: asked.append(settings) or ESTIMATE)
    return asked


def _settings(**values) -> RunSettings:
    return RunSettings(catalog="c.csv", dest="s3://b/p", **values)


def test_no_threshold_or_yes_asks_nothing_and_plans_nothing(estimated, monkeypatch):
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: pytest.fail("asked"))
    spend.confirm_spend(_settings(), yes=False)
    spend.confirm_spend(_settings(approve_above_usd=0.5), yes=True)
    assert estimated == []


def test_an_estimate_not_above_the_threshold_goes_on(estimated, monkeypatch):
    monkeypatch.setattr(spend, "interactive", lambda: False)
    spend.confirm_spend(_settings(approve_above_usd=1.072), yes=False)
    assert len(estimated) == 1


def test_without_a_terminal_or_yes_the_run_stops_with_exit_2(estimated, monkeypatch, capsys):
    monkeypatch.setattr(spend, "interactive", lambda: False)
    with pytest.raises(typer.Exit) as stopped:
        spend.confirm_spend(_settings(approve_above_usd=0.5), yes=False)
    assert stopped.value.exit_code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Projected cost $1.07 is above --approve-above $0.50" in err
    assert "Pass --yes to approve the spend, or raise --approve-above" in err


@pytest.mark.parametrize("answer", [True, False])
def test_at_a_terminal_the_person_answers(estimated, monkeypatch, answer):
    questions = []

    def confirm(question, default, err):
        questions.append(question)
        assert default is False and err is True
        return answer

    monkeypatch.setattr(spend, "interactive", lambda: True)
    monkeypatch.setattr(typer, "confirm", confirm)
    settings = _settings(approve_above_usd=0.5, max_cost_usd=1.5)
    if answer:
        spend.confirm_spend(settings, yes=False)
    else:
        with pytest.raises(typer.Exit) as stopped:
            spend.confirm_spend(settings, yes=False)
        assert stopped.value.exit_code == 2
    assert questions[0].endswith("Spend up to $1.50 (--max-cost)?")
    assert "by model: gemini-3-pro-image $1.07" in questions[0]
    assert "by resolution: 1K $0.54, 2K $0.54" in questions[0]


def test_without_a_cap_the_question_names_the_projected_cost():
    question = spend.spend_question(ESTIMATE, _settings(approve_above_usd=0.5))
    assert question.splitlines()[0].startswith("Projected cost $1.07 is above")
    assert "8 rows to generate of 10 (1 unchanged, 1 rejected)" in question
    assert question.endswith("Spend about $1.07 (no --max-cost cap)?")
