"""How a run ends: its outcome dict, and Failed when the outcome shows a problem."""

from __future__ import annotations

from prefect.states import Failed, State


def run_outcome(outcome: dict, stopped_by: str | None, logger) -> dict | State:
    """The outcome, or Failed carrying it when rows lack images (or have quarantined ones),
    the run was stopped early, or the report was not uploaded; the message says why and
    where the report is."""
    problems = []
    if stopped_by:
        problems.append(f"stopped by {stopped_by}: rows not started are skipped "
                        f"(reason 'stopped'); run again to finish them")
    totals = outcome["totals"]
    if totals["failed"]:
        problems.append(f"{totals['failed']} of {totals['accepted']} accepted rows have no image")
    if totals.get("quarantined"):
        problems.append(f"{totals['quarantined']} rows got an image of the wrong shape, kept "
                        "under quarantine/ and not paid for again: review them, or force those "
                        "skus to regenerate")
    if outcome["report_upload_error"]:
        logger.error("report not uploaded: %s", outcome["report_upload_error"])
        problems.append(f"the report was not uploaded ({outcome['report_upload_error']})")
    if problems:
        where = outcome["report_uri"] or outcome["report_path"] or "the summary above"
        return Failed(message=f"{'; '.join(problems)}; see {where}", data=outcome)
    return outcome


def outcome_of(state) -> dict | None:
    """The outcome dict of a finished run (Completed or Failed with rows), else None."""
    if state.is_completed():
        data = state.result(raise_on_failure=False)
    else:
        data = getattr(state.data, "result", state.data)
    return data if isinstance(data, dict) and "totals" in data else None
