"""How a run ends: the failure policy on an outcome dict, and reading it back from a state."""

from __future__ import annotations

import logging

from prefect.states import Completed

from catalog_images.report.outcome import outcome_of, run_outcome


def _outcome(failed: int = 0, upload_error: str | None = None) -> dict:
    return {"run_id": "r1", "flow_run_id": None,
            "totals": {"failed": failed, "accepted": 10, "succeeded": 10 - failed},
            "report_uri": None if upload_error else "s3://b/p/runs/r1/report.json",
            "summary": "| ... |", "report_path": None, "report_upload_error": upload_error}


def test_a_clean_run_ends_with_its_outcome():
    outcome = _outcome()
    assert run_outcome(outcome, None, logging.getLogger("t")) is outcome


def test_rows_without_image_fail_the_run_with_the_outcome_attached():
    state = run_outcome(_outcome(failed=3), None, logging.getLogger("t"))
    assert state.is_failed()
    assert state.message == ("3 of 10 accepted rows have no image; "
                             "see s3://b/p/runs/r1/report.json")
    assert outcome_of(state)["totals"]["failed"] == 3


def test_a_stop_and_an_unuploaded_report_are_both_named(caplog):
    with caplog.at_level(logging.ERROR):
        state = run_outcome(_outcome(upload_error="connection refused"), "SIGTERM",
                            logging.getLogger("t"))
    assert state.message.startswith("stopped by SIGTERM: rows not started are skipped")
    assert "the report was not uploaded (connection refused); see the summary above" in (
        state.message)
    assert "report not uploaded: connection refused" in caplog.text


def test_outcome_of_reads_completed_states_and_ignores_others():
    assert outcome_of(Completed(data=_outcome()))["run_id"] == "r1"
    assert outcome_of(Completed(data={"no": "totals"})) is None


def test_an_expected_error_ends_the_run_failed_with_its_two_lines(caplog):
    from catalog_images.catalog.read import CatalogError
    from catalog_images.report.outcome import expected_error_of, expected_failure

    with caplog.at_level(logging.ERROR):
        state = expected_failure(CatalogError("catalog c.csv: empty file"),
                                 logging.getLogger("t"))
    assert state.is_failed() and outcome_of(state) is None
    assert expected_error_of(state) == ("catalog c.csv: empty file\n"
                                        "Fix the catalog file and run again; nothing was sent "
                                        "or spent.")
    assert state.message.startswith("catalog c.csv: empty file - Fix the catalog file")
    assert "Traceback" not in caplog.text and "empty file" in caplog.text
    assert expected_error_of(Completed()) is None


def test_the_outcome_is_told_to_the_run_events():
    class Heard:
        def __init__(self):
            self.calls = []

        def run_finished(self, *args):
            self.calls.append(("finished", *args))

        def report_not_uploaded(self, *args):
            self.calls.append(("not uploaded", *args))

    heard = Heard()
    run_outcome(_outcome(upload_error="denied"), None, logging.getLogger("t"), heard)
    assert [c[0] for c in heard.calls] == ["not uploaded", "finished"]
    assert heard.calls[1][1] == "failed" and heard.calls[1][2]["accepted"] == 10
    heard.calls.clear()
    run_outcome(_outcome(), None, logging.getLogger("t"), heard)
    assert heard.calls[0][1] == "completed"


def test_rows_left_by_an_out_provider_fail_the_run_naming_the_cause():
    outcome = _outcome()
    out = "google: spend cap, prepay balance or billing tier (monthly cap); raise the spend cap"
    outcome["totals"]["providers"] = {"google": {"out": out, "rows_left": 7},
                                      "relay": {"out": None, "rows_left": 0}}
    state = run_outcome(outcome, None, logging.getLogger("t"))
    assert state.is_failed()
    assert state.message.startswith(f"7 rows left because provider {out}; see s3://")
    outcome["totals"]["providers"]["google"]["rows_left"] = 0  # the fallback did every row
    assert run_outcome(outcome, None, logging.getLogger("t")) is outcome


def test_a_run_not_approved_finishes_declined_or_timed_out_with_nothing_spent():
    class Heard:
        def __init__(self):
            self.finished = []

        def run_finished(self, status, totals, *rest):
            self.finished.append((status, totals["cost_usd"]))

    skipped = {**_outcome(), "totals": {"failed": 0, "accepted": 10, "succeeded": 0,
                                        "skipped": 10, "cost_usd": 0.0}}
    stop = "no spend approval (declined)"
    for decision, status in (("declined", "declined"), ("timed out", "approval timed out"),
                             ("cancelled", "cancelled"), ("stopped", "failed"),
                             ("approved", "completed")):
        heard = Heard()
        stopped_by = None if decision == "approved" else stop
        run_outcome(skipped, stopped_by, logging.getLogger("t"), heard,
                    {"decision": decision, "budget_usd": 0.0})
        assert heard.finished == [(status, 0.0)], decision
    heard = Heard()
    run_outcome(skipped, stop, logging.getLogger("t"), heard)  # no gate: a stop fails the run
    assert heard.finished == [("failed", 0.0)]
