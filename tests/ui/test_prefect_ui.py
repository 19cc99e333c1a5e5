"""The Prefect UI in a real browser: the deployment's grouped run form filled and submitted
in Chromium (catalog, dest and the budget section's approve_above_usd), the run paused at the
spend gate until approved in the UI's resume form, then done by a process worker; its summary
artifact shows the counts and the contact sheet image (fetched through its presigned link
from SeaweedFS).

Real parts only: `prefect server start` with its UI, `prefect deploy`, `prefect worker start`,
the emulator, SeaweedFS, and the system Chromium driven by Playwright (`make ui-test`). The
screenshots it takes are the README's (docs/images/ui-run-form.png, ui-approval.png,
ui-run-summary.png).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO

playwright_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright is not installed, the Prefect UI was NOT tested: run `make ui-test` "
    "(it syncs the `ui` dependency group)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="no Chromium on this machine, the Prefect UI was NOT tested "
        "(`apt-get install -y chromium`; Playwright's own browser download is not used)"),
    pytest.mark.timeout(1800),  # a server, a deploy, a worker and a browser on a busy machine
]

PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]
SCREENSHOTS = Path(os.environ.get("CATALOG_IMAGES_UI_SCREENSHOTS", REPO / "docs" / "images"))
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SAMPLE_COUNTS = ["57", "50", "0", "7", "0"]  # rows, succeeded, failed, rejected, skipped
APPROVE_ABOVE = 0.05  # USD: the sample's 50 rows (about $7 at list price) wait for approval
BUDGET = 10.0  # USD the approver allows in the resume form


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """A `prefect server start` with its UI on, told its own API URL (PREFECT_UI_API_URL)."""
    from catalog_images.devtools.prefect_server import PrefectServer

    before = os.environ.get("PREFECT_UI_ENABLED")
    os.environ["PREFECT_UI_ENABLED"] = "true"  # tests/conftest.py turns it off for the others
    try:
        server = PrefectServer(tmp_path_factory.mktemp("prefect-ui-home")).start(timeout_s=400)
    finally:
        os.environ["PREFECT_UI_ENABLED"] = before or "false"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def worker_env(ui_server, local_s3, emulator, tmp_path) -> dict:
    return {**os.environ, **local_s3.env(), **ui_server.env(),
            "CATALOG_IMAGES_EMULATOR_URL": emulator.base_url,
            "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool"), "PWD": str(REPO)}


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def _prefect(args: list[str], env: dict, timeout: float = 300) -> None:
    done = subprocess.run([*PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _api(server, path: str, body: dict | None = None):
    """POST (a filter) or GET on the server's REST API."""
    url = f"{server.api_url}{path}"
    answer = httpx.post(url, json=body, timeout=30) if body is not None else httpx.get(
        url, timeout=30)
    answer.raise_for_status()
    return answer.json()


def _property(scope, name: str):
    """The property ``name`` of a Prefect schema form (the run form, the resume form) within
    ``scope``; its label names no id and says "(Optional)" after an optional one."""
    page = getattr(scope, "page", scope)  # a Locator's page, or the Page itself
    label = page.locator(".schema-form-property__label").filter(
        has_text=re.compile(rf"^{re.escape(name)}( \(Optional\))?$"))
    return scope.locator(".schema-form-property").filter(has=label).last


def _fill_number(prop, value: float) -> None:
    """Give an optional number (the form's float/None choice) a value."""
    prop.get_by_role("button", name="float").click()
    prop.locator("input").fill(str(value))


def _fill_the_grouped_form(page, server, catalog: Path, dest: str, approve_above: float) -> str:
    """Open the on-demand deployment's run form, fill catalog and dest, and the budget
    section's approve_above_usd; submit; the new flow run's id."""
    deployment = next(d for d in _api(server, "/deployments/filter", {})
                      if d["name"] == "on-demand")
    ui = server.api_url.removesuffix("/api")
    page.goto(f"{ui}/deployments/deployment/{deployment['id']}/run", timeout=120_000)
    for name, value in (("catalog", str(catalog)), ("dest", dest)):
        field = _property(page, name).locator("textarea").first
        field.wait_for(timeout=120_000)
        field.fill(value)
    budget = _property(page, "budget")
    for section in ("providers", "budget", "batch", "scale_out", "output"):  # the groups
        assert _property(page, section).locator(".schema-form-property").count() >= 3, section
    _fill_number(_property(budget, "approve_above_usd"), approve_above)
    _screenshot_whole(page, SCREENSHOTS / "ui-run-form.png")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r".*/deployments/deployment/[0-9a-f-]{36}(\?.*)?$"),
                      timeout=60_000)  # the UI goes back to the deployment's runs
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for run in _api(server, "/flow_runs/filter", {
                "deployments": {"id": {"any_": [deployment["id"]]}}}):
            if run["parameters"].get("dest") == dest:
                return run["id"]
        time.sleep(1)
    raise AssertionError(f"no flow run of the on-demand deployment writes to {dest}")


def _approve_in_the_ui(page, server, flow_run_id: str, budget_usd: float) -> None:
    """On the paused run's page: Resume, tick approve, give a budget, submit."""
    ui = server.api_url.removesuffix("/api")
    page.goto(f"{ui}/runs/flow-run/{flow_run_id}", timeout=120_000)
    page.get_by_role("button", name="Resume").click(timeout=120_000)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Spend approval").wait_for(timeout=60_000)  # the plan, above the form
    _property(dialog, "Approve").get_by_role("switch").click()
    _fill_number(_property(dialog, "Max Cost Usd"), budget_usd)
    page.screenshot(path=SCREENSHOTS / "ui-approval.png")
    dialog.get_by_role("button", name="Submit").click()
    dialog.wait_for(state="hidden", timeout=60_000)


def _wait_state(server, flow_run_id: str, states: set[str], timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = _api(server, f"/flow_runs/{flow_run_id}")
        if run["state_type"] in states:
            return run
        time.sleep(1)
    raise AssertionError(f"flow run {flow_run_id} not in {states} after {timeout_s:.0f} s")


def _summary_counts(page) -> list[str]:
    """The first row of the summary's counts table, as the browser renders it."""
    table = page.locator("table").first
    table.wait_for(timeout=60_000)
    cells = table.locator("tbody tr").first.locator("td")
    return [cell.strip() for cell in cells.all_inner_texts()]


def test_grouped_form_starts_a_run_approved_at_the_gate_whose_summary_shows_counts_and_sheet(
    ui_server, worker_env, browser, local_s3, emulator, sample_catalog, tmp_path
):
    from uuid import uuid4

    _prefect(["work-pool", "create", "catalog-images", "--type", "process", "--overwrite"],
             worker_env)
    _prefect(["deploy", "--name", "on-demand", "--prefect-file", "deployments/prefect.yaml"],
             worker_env)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    dest = f"s3://{local_s3.bucket}/ui-{uuid4().hex[:10]}"
    flow_run_id = _fill_the_grouped_form(page, ui_server, sample_catalog, dest, APPROVE_ABOVE)
    run = _api(ui_server, f"/flow_runs/{flow_run_id}")
    assert run["parameters"]["catalog"] == str(sample_catalog)
    assert run["parameters"]["dest"] == dest  # what was typed into the form
    assert run["parameters"]["budget"]["approve_above_usd"] == APPROVE_ABOVE  # in its section
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [*PREFECT, "worker", "start", "--pool", "catalog-images", "--run-once"],
            env=worker_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_state(ui_server, flow_run_id, {"PAUSED", *FINAL}, timeout_s=900)
        assert _api(ui_server, f"/flow_runs/{flow_run_id}")["state_type"] == "PAUSED"
        assert emulator.stats()["requests"] == 0  # waiting for approval: nothing sent
        _approve_in_the_ui(page, ui_server, flow_run_id, BUDGET)
        final = _wait_state(ui_server, flow_run_id, FINAL, timeout_s=600)
        assert final["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[-3000:]
        worker.wait(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()  # the worker this test started, by its PID
    assert 0 < emulator.ledger()["usd"] <= BUDGET  # spent after approval, within the budget

    summary = next(a for a in _api(ui_server, "/artifacts/filter", {
        "artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
        if a["key"] == "catalog-refresh-summary")
    ui = ui_server.api_url.removesuffix("/api")
    page.goto(f"{ui}/artifacts/artifact/{summary['id']}", timeout=120_000)
    assert _summary_counts(page)[:5] == SAMPLE_COUNTS
    sheet = page.locator('img[alt="contact sheet"]')
    sheet.scroll_into_view_if_needed(timeout=60_000)  # the image loads: its presigned URL works
    page.wait_for_function(
        "() => { const i = document.querySelector('img[alt=\"contact sheet\"]');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
    assert sheet.evaluate("i => i.naturalWidth") >= 400
    _screenshot_whole(page, SCREENSHOTS / "ui-run-summary.png")


def _screenshot_whole(page, path: Path) -> None:
    """A screenshot of the whole artifact: the UI scrolls inside a pane, so grow the window."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 900), 4000)})
    page.evaluate("() => document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
    page.wait_for_timeout(500)
    page.screenshot(path=path)
