"""One run at a time per destination: the lease under state/, on a real SeaweedFS."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import pytest
from conftest import cli_command, cli_env, run_refresh, write_catalog

import catalog_images.destination.lease as dest_lease
from catalog_images.destination.lease import DestinationBusy, Holder, Lease, process_started
from catalog_images.destination.storage import S3Location, S3Settings

log = logging.getLogger("test")


def _lease(dest: str, run_id: str, ttl_s: float = 120.0, **holder) -> Lease:
    holder = Holder(**{**asdict(Holder.me(run_id)), **holder})
    return Lease(S3Settings.from_environment().boto3_client(), S3Location.parse(dest), holder,
                 ttl_s)


@pytest.fixture
def s3(s3_env):
    """The session's SeaweedFS, with this process's AWS variables pointing at it."""
    return s3_env


def test_a_second_run_is_refused_naming_the_first_and_gets_the_lease_once_released(
    s3, dest, emulator, tmp_path, prefect_api
):
    first = _lease(dest, "run-one")  # held by this (live) test process
    first.acquire(log)
    second = _lease(dest, "run-two")
    holder = rf"refreshed by run run-one \(host {first.holder.host}, pid {os.getpid()}"
    with pytest.raises(DestinationBusy, match=holder):
        second.acquire(log)
    # From the command line: exit 2, the holder named, no provider request.
    refused = subprocess.run(
        cli_command("run", write_catalog(tmp_path / "c.csv", 3), dest, "--no-progress"),
        env=cli_env(s3, emulator, prefect_api), capture_output=True, text=True, timeout=120)
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 2, message[-2000:]
    assert re.search(holder, message)
    assert "Wait for it to end" in message and emulator.ledger()["images"] == 0
    first.release()
    second.acquire(log)
    assert json.loads(s3.client().get_object(Bucket=second.bucket, Key=second.key)[
        "Body"].read())["run_id"] == "run-two"
    second.release()


def test_a_lease_left_by_a_dead_process_of_this_host_is_taken_over_at_once(s3, dest):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _lease(dest, "killed-run", pid=child.pid,
                      pid_started=process_started(child.pid))
        dead.acquire(log)
        with pytest.raises(DestinationBusy):  # alive: its lease holds
            _lease(dest, "too-early").acquire(log)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    after = _lease(dest, "re-run")
    after.acquire(log)  # no wait for the TTL
    assert not dead.renew()  # the killed run's lease is gone
    after.release()


def test_a_lease_from_another_host_is_watched_kept_while_renewed_and_taken_once_not(
    s3, dest
):
    # Ages come from the store's clock (Date and Last-Modified headers, whole seconds).
    remote = _lease(dest, "remote-run", ttl_s=4.0, host="other-host", pid=1,
                    pid_space="another-machine")
    remote.acquire(log)
    renewing = threading.Event()
    renewing.set()

    def keep_renewing() -> None:  # what the remote run's keeper does
        while renewing.is_set():
            time.sleep(1.0)
            if renewing.is_set():
                remote.renew()

    keeper = threading.Thread(target=keep_renewing, daemon=True)
    keeper.start()
    started = time.monotonic()
    with pytest.raises(DestinationBusy, match="refreshed by run remote-run"):
        _lease(dest, "local", ttl_s=4.0).acquire(log)
    assert time.monotonic() - started < 3.5  # known alive at its next renewal, not the TTL
    renewing.clear()  # the remote run dies (or hangs)
    keeper.join()
    started = time.monotonic()
    local = _lease(dest, "local", ttl_s=4.0)
    local.acquire(log)  # waits until the lease is 4 s old, then takes it
    assert 2.0 <= time.monotonic() - started < 8.0
    assert not remote.renew()  # taken over: the remote run learns it and stops
    local.release()
    assert s3.client().list_objects_v2(Bucket=local.bucket, Prefix=local.key)["KeyCount"] == 0


@pytest.mark.scenario
def test_two_runs_on_one_destination_never_buy_the_same_image(
    emulator, local_s3, dest, tmp_path, prefect_api, s3_env
):
    # Slow while the second run is tried (its in-process start can take many seconds on a
    # loaded machine), then fast: the first run must still be paying when it is refused.
    emulator.configure(latency_s=2.0)
    catalog = write_catalog(tmp_path / "c.csv", 16)
    env = cli_env(local_s3, emulator, prefect_api)
    command = cli_command("run", catalog, dest, "--concurrency", "2", "--no-progress")
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while emulator.ledger()["images"] < 2:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        state, outcome = run_refresh(catalog=str(catalog), dest=dest, concurrency=8)
        assert first.poll() is None, "the first run ended before the second was refused"
        emulator.configure(latency_s=0.0)
    finally:
        _, stderr = first.communicate(timeout=180)
    assert state.is_failed() and outcome is None  # refused before planning any row
    assert "is being refreshed by run" in state.message
    assert first.returncode == 0, stderr[-2000:]
    assert emulator.duplicates() == {} and emulator.ledger()["images"] == 16
    location = S3Location.parse(dest)
    assert local_s3.client().list_objects_v2(  # the first run released its lease
        Bucket=location.bucket, Prefix=location.key("state", "lease.json"))["KeyCount"] == 0


def test_two_runs_in_one_process_share_no_lease_and_a_leftover_one_is_taken_over(s3, dest):
    first = _lease(dest, "in-process-one")
    first.acquire(log)
    with pytest.raises(DestinationBusy):  # same host and PID, but that run is live
        _lease(dest, "in-process-two").acquire(log)
    first.release()
    # What a run of this process that ended without releasing (a crash) would leave.
    client = S3Settings.from_environment().boto3_client()
    client.put_object(Bucket=first.bucket, Key=first.key, Body=first.holder.body(time.time_ns()))
    after = _lease(dest, "in-process-three")
    after.acquire(log)
    after.release()


def test_a_run_whose_lease_is_taken_over_stops_starting_requests(
    emulator, dest, tmp_path, s3_env, monkeypatch
):
    monkeypatch.setattr(dest_lease, "RENEW_EVERY_S", 0.3)
    emulator.configure(latency_s=0.2)
    catalog = write_catalog(tmp_path / "c.csv", 60)
    location = S3Location.parse(dest)
    client = S3Settings.from_environment().boto3_client()

    def intruder() -> None:
        deadline = time.monotonic() + 60
        while emulator.ledger()["images"] < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # What a run that found this one's lease stale writes over it.
        client.put_object(Bucket=location.bucket, Key=location.key("state", "lease.json"),
                          Body=Holder.me("intruder").body(time.time_ns()))

    thread = threading.Thread(target=intruder, daemon=True)
    thread.start()
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, concurrency=2)
    thread.join(timeout=60)
    assert state.is_failed() and "lost destination lease" in state.message
    totals = outcome["totals"]
    assert totals["skipped"] > 0 and totals["succeeded"] + totals["skipped"] == 60
    assert emulator.ledger()["images"] == totals["succeeded"] < 60
    # The run did not delete the lease it no longer held.
    held = json.loads(client.get_object(Bucket=location.bucket,
                                        Key=location.key("state", "lease.json"))["Body"].read())
    assert held["run_id"] == "intruder"


class _AnswerLostThenRetried:
    """A client whose PUT lands but whose answer is lost, so it is sent again (botocore's
    retry): what a dropped connection does, which a loopback server cannot be made to do."""

    def __init__(self, client) -> None:
        self.client = client

    def put_object(self, **request):
        self.client.put_object(**request)
        return self.client.put_object(**request)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_a_renewal_whose_answer_was_lost_is_not_taken_for_a_lost_lease(s3, dest):
    lease = _lease(dest, "flaky-network")
    lease.acquire(log)
    lease.client = _AnswerLostThenRetried(lease.client)
    assert lease.renew()  # the retry got 412, but the lease holds this run's own write
    lease.client = lease.client.client
    assert lease.renew()  # and the ETag it kept is the current one
    lease.release()


def test_a_run_that_cannot_renew_stops_itself_before_its_lease_may_be_taken(s3, dest):
    from catalog_images.devtools.prefect_server import free_port

    lease = _lease(dest, "cut-off", ttl_s=1.5)
    lease.acquire(log)
    unreachable = S3Settings(endpoint_url=f"http://127.0.0.1:{free_port()}",
                             addressing_style="path", access_key_id="x",
                             secret_access_key="y")
    lease.client = unreachable.boto3_client(read_timeout=1, max_attempts=1)
    lost = threading.Event()
    keeper = dest_lease._Keeper(lease, 0.2, log, lost.set)
    started = time.monotonic()
    keeper.start()
    assert lost.wait(15)
    assert time.monotonic() - started < 1.5 + 2.0  # before another run could take it over
    keeper.stopping.set()
