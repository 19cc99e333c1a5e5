"""Prefect events and automations against a real `prefect server`: every event of a run is
read back from the server's events API, and an installed automation notifies a real webhook
when a refresh fails."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import pytest
from conftest import cli_env, prefect_http, run_refresh, write_catalog

from catalog_images.destination.storage import StorageError
from catalog_images.providers.config import get_provider
from catalog_images.report import events

pytestmark = pytest.mark.usefixtures("s3_env")


def _events_since(api_url: str, since: datetime, dests: set[str], wanted: int,
                  timeout_s: float = 90) -> list:
    """catalog-images events about ``dests`` that occurred after ``since``, once at least
    ``wanted`` are in (the session's server also holds the events of other tests' runs)."""
    body = {"filter": {"occurred": {"since": since.isoformat()},
                       "event": {"prefix": ["catalog-images."]}, "order": "ASC"},
            "limit": 50}
    deadline = time.monotonic() + timeout_s
    with prefect_http(api_url) as api:
        while True:
            answer = api.post("/events/filter", json=body)
            answer.raise_for_status()
            page = answer.json()
            found = page["events"]
            while page.get("next_page"):
                page = api.get(page["next_page"]).json()
                found += page["events"]
            found = [e for e in found if e["payload"].get("destination") in dests]
            if len(found) >= wanted or time.monotonic() > deadline:
                return found
            time.sleep(1.0)


def _of(found: list, name: str, dest: str) -> list:
    return [e for e in found if e["event"] == name and e["payload"].get("destination") == dest]


@pytest.mark.timeout(600)
def test_each_event_of_a_run_reaches_the_server(
    emulator, local_s3, tmp_path, monkeypatch, prefect_api
):
    import catalog_images.report.publish as publish

    def put_down(settings, location, key, *args):
        raise StorageError(f"cannot write s3://{location.bucket}/{key}: connection refused")

    since = datetime.now(UTC) - timedelta(seconds=5)
    price = get_provider("emulator").image_price("1K")
    # The next five requests fail: five in a row open the breaker; its probe closes it again.
    emulator.script("Studio photo", ["503"] * 5)
    dest = f"s3://{local_s3.bucket}/ev-{uuid4().hex[:8]}"
    with monkeypatch.context() as patched:
        patched.setattr(publish, "put_file", put_down)
        state, outcome = run_refresh(
            catalog=str(write_catalog(tmp_path / "c.csv", 12, resolution="1K")), dest=dest,
            concurrency=1, breaker_cooldown_s=0.2, max_attempts=8, max_cost_usd=8.5 * price)
    assert state.is_failed() and "the report was not uploaded" in state.message
    assert outcome["totals"]["succeeded"] == 8 and outcome["totals"]["skipped"] == 4

    quota_dest = f"s3://{local_s3.bucket}/ev-{uuid4().hex[:8]}"
    providers = tmp_path / "p.toml"
    providers.write_text(f'[providers.daily]\nkind = "emulator"\nbase_url = '
                         f'"{emulator.base_url}"\nrequests_per_day = 2\n')
    state, outcome = run_refresh(
        catalog=str(write_catalog(tmp_path / "q.csv", 4, prefix="Q")), dest=quota_dest,
        provider="daily", providers_file=str(providers), concurrency=1)
    assert outcome["totals"]["succeeded"] == 2 and outcome["totals"]["skipped"] == 2

    found = _events_since(prefect_api, since, {dest, quota_dest}, wanted=7)
    (finished,) = _of(found, events.RUN_FINISHED, dest)
    assert finished["resource"]["prefect.resource.id"] == (
        f"catalog-images.destination.{dest.removeprefix('s3://')}")
    assert finished["resource"]["catalog-images.status"] == "failed"
    assert finished["payload"]["totals"]["succeeded"] == 8
    assert finished["payload"]["cost_usd"] == pytest.approx(8 * price)
    assert any(r["prefect.resource.id"].startswith("prefect.flow-run.")
               for r in finished["related"])  # Prefect ties it to the flow run
    (budget,) = _of(found, events.BUDGET_REACHED, dest)
    assert budget["payload"]["cap_usd"] == pytest.approx(8.5 * price)
    (opened,) = _of(found, events.BREAKER_OPENED, dest)
    (closed,) = _of(found, events.BREAKER_CLOSED, dest)
    assert opened["resource"]["prefect.resource.id"] == "catalog-images.provider.emulator"
    assert opened["occurred"] < closed["occurred"]
    (unuploaded,) = _of(found, events.REPORT_NOT_UPLOADED, dest)
    assert "connection refused" in unuploaded["payload"]["error"]
    (quota,) = _of(found, events.QUOTA_EXHAUSTED, quota_dest)
    assert quota["resource"]["prefect.resource.id"] == "catalog-images.provider.daily"
    (quota_run,) = _of(found, events.RUN_FINISHED, quota_dest)
    assert quota_run["resource"]["catalog-images.status"] == "completed"


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    """A local HTTP endpoint recording the JSON bodies POSTed to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(600)
@pytest.mark.scenario
def test_an_installed_automation_notifies_when_a_refresh_fails(
    webhook, emulator, local_s3, dest, tmp_path, prefect_api
):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    url, received = webhook
    block = f"alerts-{uuid4().hex[:8]}"
    CustomWebhookNotificationBlock(
        name=block, url=url, allow_private_urls=True,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
    ).save(block)
    done = subprocess.run(
        [*cli_command_prefix(), "automations", "install", "--notify-block",
         f"custom-webhook/{block}"],
        env=cli_env(local_s3, emulator, prefect_api), capture_output=True, text=True,
        timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "installed 'catalog-images: refresh failed'" in done.stderr
    try:
        catalog = tmp_path / "nosku.csv"
        catalog.write_text("id,prompt\nA,a mug\n")
        state, _ = run_refresh(catalog=str(catalog), dest=dest)
        assert state.is_failed()
        # The automation notifies for every failed refresh on the session's server, other
        # tests' runs too (CI once got a stopped run's note first): find this run's.
        deadline = time.monotonic() + 120
        while not (ours := [n for n in list(received) if str(catalog) in n["body"]]):
            assert time.monotonic() < deadline, f"no notification of this run: {received}"
            time.sleep(1.0)
        note = ours[0]
        assert note["subject"].startswith("catalog refresh failed: ")
        assert "has no 'sku' column" in note["body"]
    finally:
        _delete_installed(prefect_api)


def cli_command_prefix() -> list[str]:
    import sys

    return [sys.executable, "-m", "catalog_images.cli"]


def _delete_installed(api_url: str) -> None:
    """Remove the installed automations so that other tests' runs notify nobody."""
    with prefect_http(api_url) as api:
        for automation in api.post("/automations/filter", json={}).json():
            if automation["name"].startswith("catalog-images: "):
                api.delete(f"/automations/{automation['id']}")
