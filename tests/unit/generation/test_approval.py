"""The spend approval gate's decisions, without a Prefect server (the pause is replaced)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from types import SimpleNamespace
from uuid import uuid4

import pytest
from prefect.states import Failed

from catalog_images.catalog.plan import PlanSummary
from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.generation import approval
from catalog_images.generation.approval import (
    Approval,
    ApprovalInput,
    approval_end,
    approve_spend,
    approved_budget,
    decide,
    needs_approval,
    plan_markdown,
)
from catalog_images.generation.stop import StopRequest
from catalog_images.providers.config import get_provider
from catalog_images.run_setup import RunSetup
from catalog_images.settings import RunSettings


def _run(**settings) -> RunSetup:
    """A run's setup as prepare_run leaves it (no bucket, no key needed here)."""
    return RunSetup(RunSettings(catalog="c.csv", dest="s3://b/p", **settings),
                    "20260101T000000Z-abc123", S3Location.parse("s3://b/p"), S3Settings(),
                    [get_provider("emulator", None)], "2026-01-01T00:00:00+00:00", 0.0)


def _plan() -> PlanSummary:
    plan = PlanSummary("c.csv", "plan.parquet", "settled.parquet", rows=7, to_generate=5,
                       unchanged=1, rejected=1)
    plan.by_priority_model = {"normal": {"": {"1K": 3, "4K": 1}},
                              "high": {"gemini-3.1-flash-image": {"1K": 1}}}
    plan.projected_cost_usd = plan.list_cost(get_provider("emulator", None))
    return plan


def test_only_a_projected_cost_above_the_threshold_needs_approval():
    assert not needs_approval(12.0, None)
    assert not needs_approval(5.0, 5.0)
    assert needs_approval(5.01, 5.0)
    assert needs_approval(0.01, 0.0)


@pytest.mark.parametrize(("answer", "run_cap", "budget"), [
    (None, None, None), (2.0, None, 2.0), (2.0, 3.0, 2.0), (None, 3.0, 3.0),
    (9.0, 3.0, 3.0),  # approval never raises the run's own cap
])
def test_the_approved_budget_is_the_lower_of_the_answer_and_the_run_cap(answer, run_cap, budget):
    assert approved_budget(ApprovalInput(approve=True, max_cost_usd=answer), run_cap) == budget


def test_anything_but_an_approval_leaves_a_budget_of_zero():
    declined = decide(ApprovalInput(approve=False, max_cost_usd=4.0), 9.0, 5.0, None)
    assert (declined.decision, declined.budget_usd, declined.approved) == ("declined", 0.0, False)
    timed_out = decide(("timed out", "no answer within 60 s"), 9.0, 5.0, 20.0)
    assert (timed_out.budget_usd, timed_out.reason) == (0.0, "timed out: no answer within 60 s")
    approved = decide(ApprovalInput(approve=True, max_cost_usd=6.0), 9.0, 5.0, 20.0)
    assert (approved.decision, approved.budget_usd, approved.approved) == ("approved", 6.0, True)


def test_the_form_refuses_a_negative_budget():
    with pytest.raises(ValueError, match="max_cost_usd"):
        ApprovalInput(approve=True, max_cost_usd=-1)


def test_the_description_shows_rows_and_cost_by_model_and_resolution():
    plan, run = _plan(), _run(approve_above_usd=0.25, max_cost_usd=2.0)
    text = plan_markdown(plan, run)
    assert f"Projected cost **${plan.projected_cost_usd:.2f}**" in text
    assert "**$0.25**" in text and "5 rows to generate of 7 (1 unchanged, 1 rejected)" in text
    assert "budget (`max_cost_usd`) $2.00" in text
    config = run.provider_config
    pro_1k = 3 * config.image_price("1K", None)
    flash_1k = config.image_price("1K", "gemini-3.1-flash-image")
    assert f"| gemini-3-pro-image | 1K | 3 | ${pro_1k:.2f} |" in text
    assert f"| gemini-3-pro-image | 4K | 1 | ${config.image_price('4K', None):.2f} |" in text
    assert f"| {config.model_for('gemini-3.1-flash-image')} | 1K | 1 | ${flash_1k:.2f} |" in text


def test_a_run_not_above_the_threshold_goes_on_unchanged_without_pausing(monkeypatch):
    async def no_pause(**_):
        raise AssertionError("paused")

    monkeypatch.setattr(approval, "apause_flow_run", no_pause)
    plan = _plan()
    for run in (_run(), _run(approve_above_usd=plan.projected_cost_usd)):
        assert asyncio.run(approve_spend(run, plan, StopRequest(), _Logger())) is run


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message, *args):
        self.lines.append(message % args)

    warning = info


@pytest.fixture
def paused(monkeypatch):
    """The gate's Prefect calls replaced: ``paused.answer`` is what the pause returns (an
    exception is raised; None waits forever); ``paused.cancelled`` ends the cancel watch."""
    state = SimpleNamespace(answer=None, cancelled=False, resumed=[])

    async def pause(wait_for_input, timeout, poll_interval, key):
        assert key == approval.PAUSE_KEY and timeout > 0
        assert "Spend approval" in wait_for_input._description
        while state.answer is None:
            await asyncio.sleep(0.01)
        if isinstance(state.answer, Exception):
            raise state.answer
        return state.answer

    async def cancel_requested(flow_run_id):
        while not state.cancelled:
            await asyncio.sleep(0.01)

    async def running_again(flow_run_id, logger):
        state.resumed.append(flow_run_id)

    flow_run = SimpleNamespace(flow_run=SimpleNamespace(id=uuid4()))
    monkeypatch.setattr(approval, "apause_flow_run", pause)
    monkeypatch.setattr(approval, "_cancel_requested", cancel_requested)
    monkeypatch.setattr(approval, "_running_again", running_again)
    monkeypatch.setattr(approval, "FlowRunContext", SimpleNamespace(get=lambda: flow_run))
    return state


def _gate(stop: StopRequest | None = None, timeout_s: float = 5.0, **settings):
    run = _run(approve_above_usd=0.1, approval_timeout_s=timeout_s, **settings)
    stop = stop or StopRequest()
    gated = asyncio.run(approve_spend(run, _plan(), stop, _Logger()))
    return gated, stop


def test_an_approval_with_a_lower_budget_becomes_the_runs_cap(paused):
    paused.answer = ApprovalInput(approve=True, max_cost_usd=0.3)
    gated, stop = _gate(max_cost_usd=5.0)
    assert gated.settings.max_cost_usd == 0.3 and not stop.requested
    assert gated.approval["decision"] == "approved" and not paused.resumed


def test_a_declined_gate_stops_the_run_with_nothing_to_spend(paused):
    paused.answer = ApprovalInput(approve=False)
    gated, stop = _gate()
    assert gated.settings.max_cost_usd == 0.0
    assert stop.signal_name == "no spend approval (declined)"


def test_an_unanswered_gate_ends_at_its_timeout_and_resumes_the_run_to_report(paused):
    gated, stop = _gate(timeout_s=0.2)
    assert gated.approval["decision"] == "timed out" and gated.settings.max_cost_usd == 0.0
    assert stop.signal_name.startswith("no spend approval (timed out: no answer within")
    assert len(paused.resumed) == 1


def test_a_cancelled_run_is_not_resumed(paused):
    paused.cancelled = True
    gated, stop = _gate()
    assert gated.approval["decision"] == "cancelled" and not paused.resumed
    assert stop.requested


def test_a_stop_while_waiting_ends_the_wait_at_once(paused):
    async def stop_soon(stop: StopRequest) -> None:
        await asyncio.sleep(0.1)
        stop.set("SIGTERM")

    async def gate():
        stop = StopRequest()
        stopping = asyncio.ensure_future(stop_soon(stop))
        run = _run(approve_above_usd=0.1, approval_timeout_s=60)
        gated = await approve_spend(run, _plan(), stop, _Logger())
        await stopping
        return gated

    gated = asyncio.run(asyncio.wait_for(gate(), 5))
    assert gated.approval["decision"] == "stopped" and gated.approval["note"] == "by SIGTERM"


def test_a_pause_that_fails_spends_nothing_and_says_why(paused):
    paused.answer = RuntimeError("Flow run cannot be paused: no API")
    gated, stop = _gate()
    assert gated.approval["decision"] == "failed" and gated.settings.max_cost_usd == 0.0
    assert "RuntimeError: Flow run cannot be paused" in gated.approval["note"]


def test_a_declined_or_cancelled_run_ends_cancelled_with_its_outcome():
    outcome = {"totals": {"cost_usd": 0.0}}
    for decision in ("declined", "cancelled"):
        run = SimpleNamespace(approval=asdict(Approval(decision, 1.0, 2.0, 0.0)))
        ended = approval_end(Failed(message="stopped by no spend approval", data=outcome), run)
        assert ended.is_cancelled() and ended.data == outcome
        assert ended.message == "stopped by no spend approval"
        assert approval_end(outcome, run).is_cancelled()
    for run in (SimpleNamespace(approval=None),
                SimpleNamespace(approval=asdict(Approval("timed out", 1.0, 2.0, 0.0)))):
        failed = Failed(message="x", data=outcome)
        assert approval_end(failed, run) is failed
        assert approval_end(outcome, run) is outcome
