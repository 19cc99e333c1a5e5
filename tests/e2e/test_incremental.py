"""Incremental refresh, exactly-once billing and the budget cap, on real parts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from conftest import cli_command, cli_env, run_refresh, write_catalog

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.devtools.local_s3 import LocalS3

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def test_unchanged_rows_cost_nothing_and_a_changed_row_alone_is_redone(
    emulator, local_s3, dest, tmp_path
):
    catalog = write_catalog(tmp_path / "c.csv", 30)
    state, first = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed() and first["totals"]["succeeded"] == 30
    requests_after_first = emulator.stats()["requests"]

    state, second = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed()
    assert emulator.stats()["requests"] == requests_after_first  # zero provider requests
    totals = second["totals"]
    assert (totals["skipped"], totals["succeeded"], totals["cost_usd"]) == (30, 0, 0.0)

    frame = pd.read_csv(catalog)
    frame.loc[7, "prompt"] = "A brand new prompt for row seven"
    frame = frame.drop(index=[20, 21])
    frame.to_csv(catalog, index=False)
    state, third = run_refresh(catalog=str(catalog), dest=dest, force_skus=["SKU-00003"])
    assert state.is_completed()
    assert third["totals"]["succeeded"] == 2 and third["totals"]["skipped"] == 26
    billed = emulator.ledger()["by_prompt"]
    assert billed[sha256_hex("A brand new prompt for row seven")] == 1
    assert billed[sha256_hex("Studio photo of product SKU number 3")] == 2  # forced
    report = json.loads(local_s3.client().get_object(
        Bucket=dest[5:].split("/")[0], Key=third["report_uri"].split("/", 3)[3])["Body"].read())
    assert report["removed"]["count"] == 2
    assert report["removed"]["skus"] == ["SKU-00020", "SKU-00021"]


def test_a_lost_index_costs_head_requests_never_images(emulator, local_s3, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 12)
    run_refresh(catalog=str(catalog), dest=dest)
    bucket, prefix = dest[5:].split("/", 1)
    client = local_s3.client()
    for item in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/state/")["Contents"]:
        client.delete_object(Bucket=bucket, Key=item["Key"])
    billed = emulator.ledger()["images"]
    state, outcome = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed()
    assert emulator.ledger()["images"] == billed and not emulator.duplicates()
    assert outcome["totals"]["skipped"] == 12
    state, outcome = run_refresh(catalog=str(catalog), dest=dest)  # index rebuilt from HEADs
    assert outcome["totals"]["skipped"] == 12


def test_budget_cap_is_never_exceeded(emulator, dest, tmp_path):
    emulator.configure(latency_s=0.05)
    catalog = write_catalog(tmp_path / "c.csv", 40, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, max_cost_usd=1.0,
                                 concurrency=8)
    totals = outcome["totals"]
    assert totals["cost_usd"] <= 1.0 and emulator.ledger()["usd"] <= 1.0
    assert totals["succeeded"] == 7  # 7 × $0.134 = $0.938; an 8th could reach $1.072
    assert totals["skipped"] == 33
    assert state.is_completed()  # skipped is not failed


def test_an_s3_outage_mid_run_loses_nothing_and_pays_nothing_twice(emulator, tmp_path,
                                                                    monkeypatch):
    with LocalS3(data_dir=tmp_path / "s3").start() as s3:
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        dest = f"s3://{s3.bucket}/outage"
        emulator.configure(latency_s=0.05)
        catalog = write_catalog(tmp_path / "c.csv", 60)

        def outage():
            while emulator.ledger()["images"] < 10:
                time.sleep(0.01)
            s3.restart(down_s=2.0)

        thread = threading.Thread(target=outage, daemon=True)
        thread.start()
        state, first = run_refresh(catalog=str(catalog), dest=dest, concurrency=4)
        thread.join(timeout=60)
        state, second = run_refresh(catalog=str(catalog), dest=dest, concurrency=4)
        assert state.is_completed(), state.message
        assert not emulator.duplicates() and emulator.ledger()["images"] == 60
        bucket, prefix = dest[5:].split("/", 1)
        keys = {i["Key"] for i in s3.client().list_objects_v2(
            Bucket=bucket, Prefix=f"{prefix}/images/")["Contents"]}
        assert len(keys) == 60


@pytest.mark.scenario
def test_sigkill_mid_run_then_rerun_completes_and_bills_no_prompt_twice(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    emulator.configure(latency_s=0.2, latency_jitter_s=0.2)
    catalog = write_catalog(tmp_path / "c.csv", 80)
    env = cli_env(local_s3, emulator, prefect_api)
    command = cli_command("run", catalog, dest, "--concurrency", "8", "--no-progress")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while emulator.ledger()["images"] < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = emulator.ledger()["images"]
    assert 25 <= killed_at < 80
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    # Every image that reached the spool before the kill is uploaded, not bought again. What
    # no client can save is an answer the provider had sent (and billed) in the instant
    # before the kill, not yet read: at most one per request in flight (concurrency 8).
    duplicates = emulator.duplicates()
    assert all(count == 2 for count in duplicates.values())
    assert len(duplicates) <= 8
    assert len(emulator.ledger()["by_prompt"]) == 80


def test_estimate_and_history_commands(emulator, local_s3, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 10, resolution="4K")
    env = cli_env(local_s3, emulator)
    estimate = cli_command("estimate", catalog, dest, "--concurrency", "8")
    before = json.loads(subprocess.run(estimate, env=env, capture_output=True, text=True,
                                       timeout=120, check=True).stdout)
    assert before["to_generate"] == 10 and before["cost_usd"] == pytest.approx(2.4)
    assert before["cost_by_resolution"] == {"4K": 2.4}
    assert before["duration_s"] == pytest.approx(10 / (8 / 0.5), abs=0.1)
    in_batch = json.loads(subprocess.run(estimate + ["--mode", "batch"], env=env,
                                         capture_output=True, text=True, timeout=120,
                                         check=True).stdout)
    assert in_batch["mode"] == "batch" and in_batch["cost_usd"] == pytest.approx(1.2)
    assert in_batch["duration_s"] is None and "24 h" in in_batch["duration_note"]
    assert emulator.stats()["requests"] == 0
    state, outcome = run_refresh(catalog=str(catalog), dest=dest)
    after = json.loads(subprocess.run(estimate, env=env, capture_output=True, text=True,
                                      timeout=120, check=True).stdout)
    assert after["to_generate"] == 0 and after["unchanged"] == 10 and after["cost_usd"] == 0
    listing = subprocess.run([sys.executable, "-m", "catalog_images.cli", "history", "--dest",
                              dest], env={**env, "COLUMNS": "250"}, capture_output=True,
                             text=True, timeout=120, check=True)
    assert outcome["run_id"] in listing.stdout + listing.stderr
    assert "$2.40" in listing.stdout + listing.stderr


def test_batch_mode_completes_a_catalog_at_the_batch_price(emulator, dest, tmp_path):
    emulator.configure(batch_delay_s=0.5)
    catalog = write_catalog(tmp_path / "c.csv", 25, resolution="1K")
    frame = pd.read_csv(catalog)
    frame.loc[3, "resolution"] = "4K"
    frame.to_csv(catalog, index=False)
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch", batch_rows=10,
                                 batch_poll_s=0.2, report_path=str(report))
    assert state.is_completed(), state.message
    totals = outcome["totals"]
    assert totals["succeeded"] == 25
    projected = json.loads(report.read_text())["plan"]["projected_cost_usd"]
    assert projected == pytest.approx(totals["cost_usd"])  # projected at batch prices
    ledger = emulator.ledger()
    assert ledger["by_mode"] == {"batch": 25} or ledger["by_mode"].get("batch") == 25
    assert totals["cost_usd"] == pytest.approx(24 * 0.067 + 0.12)
    assert totals["cost_usd"] == pytest.approx(ledger["usd"])


def test_an_expired_batch_returns_its_rows_to_the_queue(emulator, dest, tmp_path):
    emulator.configure(batch_delay_s=0.3, batch_outcome="EXPIRED")
    catalog = write_catalog(tmp_path / "c.csv", 6, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                 batch_poll_s=0.1)
    assert outcome["totals"]["skipped"] == 6 and emulator.ledger()["images"] == 0
    assert "queued for the next run" in outcome["summary"] or state.is_completed()
    emulator.configure(batch_outcome="SUCCEEDED")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                 batch_poll_s=0.1)
    assert outcome["totals"]["succeeded"] == 6
    assert emulator.ledger()["images"] == 6 and not emulator.duplicates()


def test_a_batch_still_running_at_the_deadline_is_collected_by_the_next_run(
    emulator, dest, tmp_path
):
    emulator.configure(batch_delay_s=15.0)
    catalog = write_catalog(tmp_path / "c.csv", 5, resolution="1K")
    state, first = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                               batch_poll_s=0.1, batch_deadline_s=0.5)
    assert first["totals"]["skipped"] == 5 and emulator.ledger()["images"] == 0
    time.sleep(15.0)
    state, second = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                batch_poll_s=0.1)
    assert state.is_completed(), state.message
    assert emulator.ledger()["images"] == 5 and not emulator.duplicates()
    assert second["totals"]["succeeded"] == 5 and second["totals"]["rows"] == 5


def _batches(emulator) -> list[dict]:
    """Every batch job the emulator holds, newest first (the provider's own list)."""
    import httpx

    return httpx.get(f"{emulator.base_url}/v1beta/batches",
                     params={"pageSize": 1000}).json().get("operations", [])


def _wait(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.scenario
def test_sigkill_in_batch_mode_at_any_stage_then_rerun_bills_no_prompt_twice(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    """Killed while a create call had not answered, then while jobs ran: each job is created
    once, and the ledger shows every prompt billed exactly once."""
    catalog = write_catalog(tmp_path / "c.csv", 30, resolution="1K")
    env = cli_env(local_s3, emulator, prefect_api)
    command = cli_command("run", catalog, dest, "--mode", "batch", "--batch-rows", "10",
                          "--batch-poll", "0.2", "--no-progress")

    def run_until(condition) -> None:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait(condition)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    # 1. The first job exists (and completes, and is billed) but its create call never
    #    answers before the kill: the client never learns its name.
    emulator.configure(batch_create_latency_s=60.0, batch_delay_s=0.3)
    run_until(lambda: len(_batches(emulator)) == 1)
    _wait(lambda: emulator.ledger()["images"] == 10)
    # 2. The re-run must find that job by its display name, not create it again; it is
    #    killed while its own two jobs are running.
    emulator.configure(batch_create_latency_s=0.0, batch_delay_s=2.5)
    run_until(lambda: len(_batches(emulator)) == 3)
    # 3. The last run collects what is left and ends complete.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(_batches(emulator)) == 3  # no job was created twice
    assert not emulator.duplicates()
    assert emulator.ledger()["images"] == 30 and len(emulator.ledger()["by_prompt"]) == 30
    bucket, prefix = dest[5:].split("/", 1)
    s3 = local_s3.client()
    images = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/").get("Contents", [])
    assert len(images) == 30
    records = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/state/batches/")
    assert records.get("KeyCount", 0) == 0  # every job settled, no record left behind


def test_batch_mode_keeps_the_budget(emulator, dest, tmp_path):
    emulator.configure(batch_delay_s=0.2)
    catalog = write_catalog(tmp_path / "c.csv", 40, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch", batch_rows=8,
                                 batch_poll_s=0.1, max_cost_usd=1.0)
    totals = outcome["totals"]
    assert totals["succeeded"] == 14  # 14 × $0.067 = $0.938; a 15th could reach $1.005
    assert totals["skipped"] == 26 and totals["cost_usd"] <= 1.0
    assert emulator.ledger()["usd"] == pytest.approx(totals["cost_usd"])


def test_batch_mode_uploads_a_spooled_image_instead_of_buying_it_again(
    emulator, local_s3, dest, tmp_path
):
    from catalog_images.destination.spool import Spool, default_spool_root

    emulator.configure(batch_delay_s=0.2)
    catalog = write_catalog(tmp_path / "c.csv", 5, resolution="1K")
    first_dest = dest + "-first"
    run_refresh(catalog=str(catalog), dest=first_dest, mode="batch", batch_poll_s=0.1)
    bucket, prefix = first_dest[5:].split("/", 1)
    s3 = local_s3.client()
    paid = s3.get_object(Bucket=bucket, Key=f"{prefix}/images/SKU-00000.png")
    data, fp = paid["Body"].read(), paid["Metadata"]["fingerprint"]
    # What an upload that failed leaves behind: the paid image in the spool.
    spool = Spool(default_spool_root(), dest)
    spool.write("SKU-00000", fp, data, {
        "mime_type": "image/png", "width": 1024, "height": 1024, "run_id": "earlier",
        "provider": "emulator", "model": "gemini-3-pro-image-preview"})
    spool.make_durable("SKU-00000", fp)
    billed = emulator.ledger()["images"]
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                 batch_poll_s=0.1)
    assert state.is_completed(), state.message
    assert emulator.ledger()["images"] == billed + 4 and all(
        count == 2 for count in emulator.duplicates().values())
    assert outcome["totals"]["succeeded"] == 5
    bucket, prefix = dest[5:].split("/", 1)
    assert s3.get_object(Bucket=bucket, Key=f"{prefix}/images/SKU-00000.png")[
        "Body"].read() == data


@pytest.mark.scenario
def test_sigterm_or_ctrl_c_stops_without_losing_a_paid_image(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    """A stop by signal lets requests in flight finish and uploads them: across two stops and
    a last run, every prompt is billed exactly once (only SIGKILL can lose an answer)."""
    emulator.configure(latency_s=0.25, latency_jitter_s=0.15)
    catalog = write_catalog(tmp_path / "c.csv", 48)
    report = tmp_path / "r.json"
    env = cli_env(local_s3, emulator, prefect_api)
    command = cli_command("run", catalog, dest, "--concurrency", "8", "--no-progress",
                          "--report", str(report))
    bucket, prefix = dest[5:].split("/", 1)
    s3 = local_s3.client()

    def images_in_s3() -> int:
        return s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/images/").get("KeyCount", 0)

    for number, billed_before_stop in ((signal.SIGTERM, 10), (signal.SIGINT, 26)):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        _wait(lambda: emulator.ledger()["images"] >= billed_before_stop)  # noqa: B023
        proc.send_signal(number)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr[-2000:]
        rows = json.loads(report.read_text())["rows"]
        stopped = [row for row in rows if row["reason"] == "stopped"]
        assert stopped and all(row["status"] == "skipped" for row in stopped)
        assert "stopped by SIG" in stderr
        # Every answer billed so far is an image at the destination: none paid and lost.
        assert images_in_s3() == emulator.ledger()["images"] < 48
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert emulator.duplicates() == {} and emulator.ledger()["images"] == 48
    assert images_in_s3() == 48


def test_a_recorded_batch_the_provider_no_longer_knows_sends_its_rows_back(
    emulator, dest, tmp_path, monkeypatch
):
    from catalog_images.devtools.emulator import Emulator, EmulatorConfig

    emulator.configure(batch_delay_s=60.0)
    catalog = write_catalog(tmp_path / "c.csv", 4, resolution="1K")
    state, first = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                               batch_poll_s=0.1, batch_deadline_s=0.3)
    assert first["totals"]["skipped"] == 4  # still running: its record stays
    with Emulator(EmulatorConfig(latency_s=0.02, batch_delay_s=0.2)).start() as other:
        monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_URL", other.base_url)  # job unknown here
        state, second = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                    batch_poll_s=0.1)
        assert second["totals"]["skipped"] == 4  # queued again, not a crash
        state, third = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                   batch_poll_s=0.1)
        assert state.is_completed(), state.message
        assert third["totals"]["succeeded"] == 4 and other.ledger()["images"] == 4
