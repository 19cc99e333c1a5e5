"""How a run ends: its outcome dict, and Failed when the outcome shows a problem."""

from __future__ import annotations

from prefect.states import Failed, State

from catalog_images.errors import explain, kind_of
from catalog_images.report.events import RunEvents

# The gate's decisions that end a run before any paid request -> its run.finished status.
NOT_APPROVED = {"declined": "declined", "cancelled": "cancelled",
                "timed out": "approval timed out"}


def run_outcome(outcome: dict, stopped_by: str | None, logger,
                events: RunEvents | None = None, approval: dict | None = None) -> dict | State:
    """The outcome, or Failed carrying it when rows lack images, the run was stopped early,
    a provider went out (quota, spend cap, configuration) with rows left, or the report was
    not uploaded; the message says why and where the report is.
    ``events``: the run's events (report not uploaded, run finished) are emitted there; a run
    whose spend was not approved (``approval``: the gate's decision) finishes ``declined``,
    ``cancelled`` or ``approval timed out`` there, not ``failed``.
    Quarantined rows (an image of the wrong shape) fail the run too, for someone to review."""
    problems = []
    if stopped_by:
        outcome = {**outcome, "stopped_by": stopped_by}  # the CLI exits at once (cli/execute)
        problems.append(f"stopped by {stopped_by}: rows not started are skipped "
                        f"(reason 'stopped'); run again to finish them")
    totals = outcome["totals"]
    if totals["failed"]:
        problems.append(f"{totals['failed']} of {totals['accepted']} accepted rows have no image")
    for provider in (totals.get("providers") or {}).values():
        if provider.get("out") and provider.get("rows_left"):
            problems.append(f"{provider['rows_left']} rows left because provider "
                            f"{provider['out']}")
    if totals.get("quarantined"):
        problems.append(f"{totals['quarantined']} rows got an image of the wrong shape, kept "
                        "under quarantine/ and not paid for again: review them, or force those "
                        "skus to regenerate")
    if outcome["report_upload_error"]:
        logger.error("report not uploaded: %s", outcome["report_upload_error"])
        problems.append(f"the report was not uploaded ({outcome['report_upload_error']})")
        if events is not None:
            events.report_not_uploaded(outcome["report_upload_error"], outcome["report_path"])
    where = outcome["report_uri"] or outcome["report_path"] or "the summary above"
    message = f"{'; '.join(problems)}; see {where}" if problems else None
    if events is not None:
        status = NOT_APPROVED.get((approval or {}).get("decision"))
        events.run_finished(status or ("failed" if problems else "completed"), totals,
                            outcome["report_uri"], message)
    return Failed(message=message, data=outcome) if message else outcome


def expected_failure(exc: BaseException, logger, events: RunEvents | None = None) -> State:
    """The end of a run stopped by an expected error: one logged message (what is wrong,
    what to do), no traceback, a Failed state the CLI reads with ``expected_error_of``."""
    message = explain(exc)
    logger.error("%s", message)
    if events is not None:
        events.run_finished("failed", message=message, error_kind=kind_of(exc))
    return Failed(message=message.replace("\n", " - "),
                  data={"expected_error": message, "kind": kind_of(exc)})


def expected_error_of(state) -> str | None:
    """The message of a run that ended on an expected error, else None."""
    if not state.is_failed():
        return None
    data = getattr(state.data, "result", state.data)
    return data.get("expected_error") if isinstance(data, dict) else None


def outcome_of(state) -> dict | None:
    """The outcome dict of a finished run (Completed or Failed with rows), else None."""
    if state.is_completed():
        data = state.result(raise_on_failure=False)
    else:
        data = getattr(state.data, "result", state.data)
    return data if isinstance(data, dict) and "totals" in data else None
