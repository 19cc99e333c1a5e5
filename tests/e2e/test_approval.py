"""The spend approval gate on real parts: a real Prefect server pauses the run for input, the
real emulator counts what was sent, SeaweedFS holds the report."""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import threading
import time

import pytest
from conftest import cli_command, cli_env, run_refresh, write_catalog

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")

PRICE = 0.134  # the emulator preset's price of a 2K image (the default resolution)


def _paused_run_of(dest: str, timeout_s: float = 60.0):
    """The id of the paused catalog-refresh flow run writing to ``dest``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [r for r in asyncio.run(read()) if r.parameters.get("dest") == dest]
        if runs:
            return runs[0].id
        time.sleep(0.5)
    raise AssertionError(f"no paused run for {dest} within {timeout_s} s")


def _in_thread(**params):
    """Start the flow in a thread (with this thread's Prefect settings: the session API);
    the returned dict gets its (state, outcome)."""
    ended: dict = {}
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(lambda: ended.update(result=run_refresh(**params)),),
        daemon=True)
    thread.start()
    return thread, ended


def _run_input(flow_run_id) -> str:
    """The approval form's description saved for the UI, as the API holds it."""
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            keyset = run.state.state_details.run_input_keyset
            return json.loads(await client.read_flow_run_input(flow_run_id,
                                                               keyset["description"]))

    return asyncio.run(read())


def test_a_run_above_the_threshold_spends_nothing_until_approved_then_keeps_the_budget(
    emulator, dest, tmp_path
):
    from prefect.flow_runs import resume_flow_run

    catalog = write_catalog(tmp_path / "c.csv", 4)
    report_path = tmp_path / "report.json"
    thread, ended = _in_thread(catalog=str(catalog), dest=dest, concurrency=4,
                               approve_above_usd=0.10, approval_timeout_s=120,
                               report_path=str(report_path))
    flow_run_id = _paused_run_of(dest)
    description = _run_input(flow_run_id)
    assert "Projected cost **$0.54**" in description
    assert "| gemini-3-pro-image | 2K | 4 | $0.54 |" in description
    time.sleep(2.5)  # paused: nothing may be sent however long it waits
    assert emulator.stats()["requests"] == 0 and emulator.ledger()["usd"] == 0
    budget = 2 * PRICE + 0.05  # two of the four rows
    resume_flow_run(flow_run_id, run_input={"approve": True, "max_cost_usd": budget})
    thread.join(timeout=120)
    assert not thread.is_alive()
    state, outcome = ended["result"]
    billed = emulator.ledger()["usd"]
    assert 0 < billed <= budget
    assert outcome["totals"]["cost_usd"] == pytest.approx(billed)
    assert outcome["totals"]["succeeded"] == 2 and outcome["totals"]["skipped"] == 2
    report = json.loads(report_path.read_text())
    assert report["approval"]["decision"] == "approved"
    assert report["approval"]["budget_usd"] == pytest.approx(budget)
    assert report["plan"]["max_cost_usd"] == pytest.approx(budget)
    assert state.is_completed()  # rows held back by a budget are skipped, not failed


def test_a_gate_left_unanswered_ends_the_run_by_itself_with_nothing_spent(
    emulator, dest, tmp_path
):
    catalog = write_catalog(tmp_path / "c.csv", 3)
    report_path = tmp_path / "report.json"
    started = time.monotonic()
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, approve_above_usd=0.10,
                                 approval_timeout_s=3, report_path=str(report_path))
    assert time.monotonic() - started < 60
    assert emulator.stats()["requests"] == 0 and emulator.ledger()["usd"] == 0
    assert state.is_failed() and "no spend approval (timed out" in state.message
    assert "Traceback" not in state.message
    assert outcome["totals"]["cost_usd"] == 0 and outcome["totals"]["skipped"] == 3
    report = json.loads(report_path.read_text())
    assert report["approval"]["decision"] == "timed out"
    assert report["approval"]["budget_usd"] == 0
    assert report["stopped_by"].startswith("no spend approval (timed out")


@pytest.mark.parametrize("answer", ["declined", "cancelled"])
def test_a_declined_or_cancelled_gate_ends_the_run_cancelled_with_its_report(
    emulator, dest, tmp_path, answer
):
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run
    from prefect.states import Cancelling

    catalog = write_catalog(tmp_path / "c.csv", 3)
    report_path = tmp_path / "report.json"
    thread, ended = _in_thread(catalog=str(catalog), dest=dest, approve_above_usd=0.10,
                               approval_timeout_s=120, report_path=str(report_path))
    flow_run_id = _paused_run_of(dest)
    if answer == "declined":
        resume_flow_run(flow_run_id, run_input={"approve": False})
    else:  # what the UI's Cancel button does to a paused run

        async def cancel():
            async with get_client() as client:
                await client.set_flow_run_state(flow_run_id, Cancelling())

        asyncio.run(cancel())
    thread.join(timeout=60)
    assert not thread.is_alive()
    state, outcome = ended["result"]
    assert state.is_cancelled(), state
    assert emulator.stats()["requests"] == 0 and emulator.ledger()["usd"] == 0
    assert outcome["totals"]["cost_usd"] == 0
    assert json.loads(report_path.read_text())["approval"]["decision"] == answer


def test_a_run_at_or_below_the_threshold_does_not_wait(emulator, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 2)
    report_path = tmp_path / "report.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, approve_above_usd=0.268,
                                 report_path=str(report_path))
    assert state.is_completed(), state.message
    assert outcome["totals"]["succeeded"] == 2
    assert json.loads(report_path.read_text())["approval"] is None


def test_the_cli_asks_before_the_flow_and_yes_approves(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    catalog = write_catalog(tmp_path / "c.csv", 3)
    env = {**cli_env(local_s3, emulator, prefect_api),
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool")}
    refused = subprocess.run(
        cli_command("run", catalog, dest, "--approve-above", "0.10", "--no-progress"),
        env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2, refused.stderr[-2000:]
    err = " ".join(refused.stderr.split())
    assert "Projected cost $0.40 is above --approve-above $0.10" in err
    assert "Pass --yes to approve the spend" in err and "Traceback" not in err
    assert emulator.stats()["requests"] == 0
    approved = subprocess.run(
        cli_command("run", catalog, dest, "--approve-above", "0.10", "--approval-timeout", "5",
                    "--yes", "--no-progress"),
        env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert approved.returncode == 0, approved.stderr[-2000:]
    assert "Pausing flow" not in approved.stderr  # the CLI asked already: no pause
    assert emulator.ledger()["images"] == 3


@pytest.mark.scenario
def test_a_stop_signal_while_waiting_ends_the_run_in_seconds_with_its_report(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    import signal
    import sys

    from conftest import REPO

    catalog = write_catalog(tmp_path / "c.csv", 3)
    report_path = tmp_path / "report.json"
    code = ("import asyncio, sys; from flows.catalog_refresh import catalog_refresh; "
            "asyncio.run(catalog_refresh(catalog=sys.argv[1], dest=sys.argv[2], "
            "budget={'approve_above_usd': 0.1, 'approval_timeout_s': 600}, "
            "output={'report_path': sys.argv[3]}))")
    env = {**cli_env(local_s3, emulator, prefect_api),
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool")}
    process = subprocess.Popen([sys.executable, "-c", code, str(catalog), dest,
                                str(report_path)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _paused_run_of(dest, timeout_s=180)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
        assert time.monotonic() - sent < 30, err[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert emulator.stats()["requests"] == 0 and emulator.ledger()["usd"] == 0
    report = json.loads(report_path.read_text())
    assert report["approval"]["decision"] == "stopped", err[-2000:]
    assert report["totals"]["cost_usd"] == 0 and report["totals"]["skipped"] == 3
