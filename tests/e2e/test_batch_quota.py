"""Batch Mode meets a 429 that no retry fixes, on real parts (emulator, SeaweedFS, Prefect):
a per-day quota or a spend cap refusing a batch create ends the rows with the cause and
creates no further job, instead of one refused create per job."""

from __future__ import annotations

import json

import pytest
from conftest import run_refresh, write_catalog

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def _rows(path) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in json.loads(path.read_text())["rows"]:
        grouped.setdefault(row["status"], []).append(row)
    return grouped


def test_a_per_day_429_on_a_batch_create_skips_the_rest_without_more_creates(
    emulator, dest, tmp_path
):
    emulator.configure(batch_delay_s=0.3, rpd=1, rpd_retry_delay_s=39043.0)
    catalog = write_catalog(tmp_path / "c.csv", 20, resolution="1K")
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch", batch_rows=5,
                                 batch_poll_s=0.1, report_path=str(report))
    rows = _rows(report)
    assert len(rows["succeeded"]) == 5 and len(rows["skipped"]) == 15
    assert all(r["reason"].startswith("daily quota (resets 20") for r in rows["skipped"])
    assert emulator.stats()["daily_429"] == 1  # the one refused create; no create per job
    assert emulator.ledger()["images"] == 5
    assert state.is_failed() and "15 rows left because provider emulator: per-day quota" in (
        state.message)


def test_a_spend_cap_429_on_a_batch_create_says_what_to_do_and_sends_nothing_more(
    emulator, dest, tmp_path
):
    emulator.configure(batch_delay_s=0.3, spend_cap_after=0)
    catalog = write_catalog(tmp_path / "c.csv", 12, resolution="1K")
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch", batch_rows=4,
                                 batch_poll_s=0.1, report_path=str(report))
    rows = _rows(report)
    assert len(rows["skipped"]) == 12 and emulator.ledger()["images"] == 0
    assert {r["reason"] for r in rows["skipped"]} == {"spend cap (provider billing limit)"}
    assert emulator.stats()["requests"] <= 1
    assert "raise the spend cap, top up the prepaid balance" in state.message
