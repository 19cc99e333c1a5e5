"""The spend approval gate: a run projected above ``approve_above_usd`` waits for a person.

The flow run pauses for an ``ApprovalInput`` (the Prefect UI shows the plan, rows and cost by
model and resolution, and a form): approved, optionally with a lower budget, the run goes on
with that budget as its ``max_cost_usd``. Declined, cancelled, unanswered within
``approval_timeout_s`` or stopped by a signal, it sends no paid request: its rows end skipped
(reason ``stopped``) and its report says why. The CLI asks before the flow starts instead
(cli/spend.py), so a CLI run never pauses.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import asdict, dataclass, replace

from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from prefect.states import Cancelled, Running, State
from pydantic import Field

from catalog_images.catalog.plan import PlanSummary
from catalog_images.generation.stop import StopRequest, stop_on_signals
from catalog_images.run_setup import RunSetup
from catalog_images.secrets import redact

POLL_S = 2  # how often the paused run asks the API whether it was resumed or cancelled
PAUSE_GRACE_S = 60  # Prefect's pause outlives ours, so a run we give up on can still report
PAUSE_KEY = "spend-approval"
ENDS_CANCELLED = ("declined", "cancelled")  # the approver said no: the run ends Cancelled


class ApprovalInput(RunInput):
    """Approve the spend of a catalog-images run (the plan is shown above the form)."""

    approve: bool = Field(
        False, description="tick to let the run spend; unticked, the run ends with $0 spent")
    max_cost_usd: float | None = Field(
        None, ge=0, description="optional: a lower budget in USD for this run")


@dataclass(frozen=True)
class Approval:
    """What the gate decided, as the report records it."""

    decision: str  # approved, declined, cancelled, timed out, stopped, failed
    threshold_usd: float
    projected_cost_usd: float
    budget_usd: float | None  # the run's max_cost_usd from here on (0 when not approved)
    note: str = ""

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    @property
    def reason(self) -> str:
        """One phrase: the decision and its note."""
        return f"{self.decision}: {self.note}" if self.note else self.decision


def needs_approval(projected_cost_usd: float, threshold_usd: float | None) -> bool:
    """Whether a run projected at ``projected_cost_usd`` waits for approval."""
    return threshold_usd is not None and projected_cost_usd > threshold_usd + 1e-9


def approved_budget(answer: ApprovalInput, run_cap_usd: float | None) -> float | None:
    """The approved run's cap: the approver's lower budget, never above the run's own cap."""
    caps = [cap for cap in (answer.max_cost_usd, run_cap_usd) if cap is not None]
    return min(caps) if caps else None


def decide(answer: ApprovalInput | tuple[str, str], projected_cost_usd: float,
           threshold_usd: float, run_cap_usd: float | None) -> Approval:
    """The approval of an answer, or of ``(decision, note)`` when none came."""
    base = {"threshold_usd": threshold_usd, "projected_cost_usd": projected_cost_usd}
    if isinstance(answer, tuple):
        return Approval(answer[0], budget_usd=0.0, note=answer[1], **base)
    if not answer.approve:
        return Approval("declined", budget_usd=0.0, **base)
    return Approval("approved", budget_usd=approved_budget(answer, run_cap_usd), **base)


def cost_by_model_resolution(plan: PlanSummary, run: RunSetup) -> dict[tuple[str, str], list]:
    """(model, resolution) -> [rows, USD] of the rows to generate, priced as the plan is."""
    config, batch = run.provider_config, run.settings.mode == "batch"
    cells: dict[tuple[str, str], list] = {}
    for by_model in plan.by_priority_model.values():
        for model, by_resolution in by_model.items():
            for resolution, rows in by_resolution.items():
                cell = cells.setdefault((config.model_for(model or None), resolution), [0, 0.0])
                cell[0] += rows
                cell[1] += rows * config.image_price(resolution, model or None, batch)
    return dict(sorted(cells.items()))


def plan_markdown(plan: PlanSummary, run: RunSetup) -> str:
    """What the approver reads: the plan's rows and projected cost by model and resolution."""
    settings = run.settings
    cap = "none" if settings.max_cost_usd is None else f"${settings.max_cost_usd:.2f}"
    lines = [
        f"### Spend approval: run {run.run_id}",
        f"Projected cost **${plan.projected_cost_usd:.2f}** is above `approve_above_usd` "
        f"**${settings.approve_above_usd:.2f}**.",
        f"{plan.to_generate} rows to generate of {plan.rows} ({plan.unchanged} unchanged, "
        f"{plan.rejected} rejected); provider {run.provider_config.name}, mode "
        f"{settings.mode}, budget (`max_cost_usd`) {cap}; catalog {settings.catalog} → "
        f"{settings.dest}.",
        "", "| model | resolution | rows | cost |", "| --- | --- | ---: | ---: |",
        *(f"| {model} | {resolution} | {rows} | ${cost:.2f} |"
          for (model, resolution), (rows, cost) in cost_by_model_resolution(plan, run).items()),
        "",
        "Tick **approve** to let it spend, within a lower **max_cost_usd** if you give one; "
        "leave it unticked (or cancel the run) to end it with nothing spent. Unanswered after "
        f"{settings.approval_timeout_s:.0f} s, the run ends with nothing spent.",
    ]
    return "\n".join(lines)


async def _cancel_requested(flow_run_id) -> None:
    """Return once the flow run is Cancelling or Cancelled (a UI user cancelled it)."""
    async with get_client() as client:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                state = (await client.read_flow_run(flow_run_id)).state
            except Exception:  # a missed poll (the API busy, restarting): the next one asks again
                continue
            if state is not None and (state.is_cancelling() or state.is_cancelled()):
                return


async def wait_for_answer(description: str, timeout_s: float,
                          stop: StopRequest) -> ApprovalInput | tuple[str, str]:
    """Pause the flow run for an ApprovalInput; the answer, or (decision, note) without one."""
    flow_run_id = FlowRunContext.get().flow_run.id
    form = ApprovalInput.with_initial_data(description=description, approve=False)
    pause = asyncio.ensure_future(apause_flow_run(
        wait_for_input=form, timeout=math.ceil(timeout_s) + PAUSE_GRACE_S,
        poll_interval=POLL_S, key=PAUSE_KEY))
    cancel = asyncio.ensure_future(_cancel_requested(flow_run_id))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({pause, cancel, stopped}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (pause, cancel, stopped):
            waiter.cancel()
    if pause in done:
        if pause.exception() is None:
            return pause.result()
        error = pause.exception()
        return "failed", redact(f"the run could not wait for approval "
                                f"({type(error).__name__}: {error})")[:300]
    if cancel in done:
        return "cancelled", "the flow run was cancelled"
    if stopped in done:
        return "stopped", f"by {stop.signal_name}"
    return "timed out", f"no answer within {timeout_s:.0f} s"


async def _running_again(flow_run_id, logger) -> None:
    """Put a still-paused flow run back to Running, so it can write its report (a pause past
    its timeout could only end Failed, without the run's own outcome)."""
    try:
        async with get_client() as client:
            state = (await client.read_flow_run(flow_run_id)).state
            if state is not None and state.is_paused():
                await client.set_flow_run_state(
                    flow_run_id, Running(message="spend not approved: writing the report"),
                    force=True)
    except Exception as exc:  # the API unreachable: the report is still written
        logger.warning("could not end the flow run's pause: %s", redact(str(exc))[:300])


async def approve_spend(run: RunSetup, plan: PlanSummary, stop: StopRequest,
                        logger) -> RunSetup:
    """The run to go on with: unchanged when its projected cost is not above
    ``approve_above_usd``; else, approved, with the approved budget as its max_cost_usd, or
    not approved, with a budget of 0 and ``stop`` set, so that no paid request is sent."""
    settings = run.settings
    if not plan.to_generate or not needs_approval(plan.projected_cost_usd,
                                                  settings.approve_above_usd):
        return run
    logger.warning("spend approval needed: projected cost $%.2f is above approve_above_usd "
                   "$%.2f; the run waits up to %.0f s (Prefect UI: Resume, or Cancel)",
                   plan.projected_cost_usd, settings.approve_above_usd,
                   settings.approval_timeout_s)
    with stop_on_signals(stop, logger):
        answer = await wait_for_answer(plan_markdown(plan, run), settings.approval_timeout_s,
                                       stop)
    approval = decide(answer, plan.projected_cost_usd, settings.approve_above_usd,
                      settings.max_cost_usd)
    if approval.approved:
        cap = "none" if approval.budget_usd is None else f"${approval.budget_usd:.2f}"
        logger.info("spend approved; budget (max_cost_usd) %s", cap)
    else:
        if approval.decision != "cancelled":
            await _running_again(FlowRunContext.get().flow_run.id, logger)
        logger.warning("spend not approved (%s): no paid request is sent", approval.reason)
        stop.set(f"no spend approval ({approval.reason})")
    return replace(run, settings=settings.model_copy(update={"max_cost_usd": approval.budget_usd}),
                   approval=asdict(approval))


def approval_end(result: dict | State, run: RunSetup) -> dict | State:
    """A run whose spend the approver declined or cancelled ends Cancelled, its outcome and
    message kept; any other run ends as ``result`` says."""
    if not run.approval or run.approval["decision"] not in ENDS_CANCELLED:
        return result
    if isinstance(result, State):
        return Cancelled(message=result.message, data=result.data)
    return Cancelled(message=f"spend not approved ({run.approval['decision']})", data=result)
