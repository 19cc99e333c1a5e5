"""Scale-out: a run split into shards that two process workers pick up, sharing the
provider's rate limit through a Prefect global concurrency limit, merged into one report."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_refresh, write_catalog
from test_routing_flow import providers_file

from catalog_images.devtools.emulator import Emulator, EmulatorConfig
from catalog_images.report.outcome import expected_error_of
from catalog_images.scale.shards import shared_rate_limit, split_jobs

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")

PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]
RPM, WINDOW_S = 24, 4.0  # the emulator's quota: 6 requests/s on average


def _prefect(args: list[str], env: dict) -> None:
    done = subprocess.run([*PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop processes by their PIDs (never by name): SIGTERM, then SIGKILL their groups."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.fixture
def paced_emulator():
    emu = Emulator(EmulatorConfig(latency_s=0.3, rpm=RPM, quota_window_s=WINDOW_S)).start()
    yield emu
    emu.stop()


@pytest.fixture
def workers(work_pool, prefect_api, local_s3, tmp_path):
    """Two process workers on the project's work pool, one flow run at a time each."""
    env = {**os.environ, **local_s3.env(), "PREFECT_API_URL": prefect_api, "PWD": str(REPO),
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "worker-spool"),
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "2",
           # shard runs come from a deployment: the worker must allow the run's providers file
           "CATALOG_IMAGES_ALLOWED_PROVIDERS_FILES": str(tmp_path / "providers.toml")}
    _prefect(["work-pool", "create", work_pool, "--type", "process", "--overwrite"], env)
    _prefect(["deploy", "--all", "--prefect-file", "deployments/prefect.yaml"], env)
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    procs = []
    for n, log in enumerate(logs):
        with log.open("wb") as out:
            procs.append(subprocess.Popen(
                [*PREFECT, "worker", "start", "--pool", work_pool, "--limit", "1",
                 "--name", f"test-worker-{n}"],
                env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
    yield logs
    _stop(procs)


@pytest.mark.scenario
def test_sharded_run_on_two_workers_equals_the_unsharded_run(
    paced_emulator, workers, dest, tmp_path
):
    from prefect.client.orchestration import get_client

    config = providers_file(tmp_path / "providers.toml", paced={
        "kind": "emulator", "base_url": paced_emulator.base_url, "requests_per_window": RPM,
        "window_s": WINDOW_S})
    catalog = write_catalog(tmp_path / "c.csv", 48)
    params = {"catalog": str(catalog), "provider": "paced", "providers_file": config,
              "concurrency": 8}

    state, single = run_refresh(dest=dest + "-single", **params)
    assert state.is_completed(), state.message
    billed_single = paced_emulator.ledger()["usd"]

    quota_429_before = paced_emulator.stats()["quota_429"]
    started = time.monotonic()
    state, sharded = run_refresh(dest=dest, shards=2, **params)
    elapsed = time.monotonic() - started
    assert state.is_completed(), state.message

    # One merged report, equal in counts and cost to the run in one process.
    for key in ("rows", "accepted", "succeeded", "failed", "rejected", "skipped", "cost_usd",
                "cost_by_provider", "cost_by_resolution", "images_by_provider"):
        assert sharded["totals"][key] == single["totals"][key], key
    assert sharded["totals"]["succeeded"] == 48
    assert paced_emulator.ledger()["usd"] == pytest.approx(2 * billed_single)
    assert sharded["totals"]["providers"]["paced"]["requests"] == 48

    # Both workers ran a shard, and together they never went over the provider's quota.
    ran = [log.read_text() for log in workers]
    assert all("catalog-refresh-shard" in text or "shard" in text for text in ran), ran
    # (The single run's own count is not asserted: CI once saw it get one 429 when the
    # emulator, a thread of this busy process, handled a request late; that run retried it.)
    assert paced_emulator.stats()["quota_429"] == quota_429_before
    assert elapsed >= 48 / RPM * WINDOW_S * 0.8  # paced, not bursting

    async def limit():
        async with get_client() as client:
            return await client.read_global_concurrency_limit_by_name("catalog-images-paced")

    created = asyncio.run(limit())
    assert (created.limit, created.slot_decay_per_second) == pytest.approx(
        shared_rate_limit(RPM, WINDOW_S))


@pytest.fixture
def dask_cluster(prefect_api, local_s3, tmp_path):
    """A real dask.distributed scheduler and two single-threaded workers on loopback."""
    from catalog_images.devtools.prefect_server import free_port

    port = free_port()
    env = {**os.environ, **local_s3.env(), "PREFECT_API_URL": prefect_api,
           "PYTHONPATH": str(REPO), "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "dask-spool")}
    address = f"tcp://127.0.0.1:{port}"
    logs = [tmp_path / name for name in ("scheduler.log", "dask-0.log", "dask-1.log")]
    commands = [
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard"],
        *[[sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
           "--no-dashboard", "--host", "127.0.0.1", "--name", f"dask-{n}"] for n in range(2)],
    ]
    procs = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("wb") as out:
            procs.append(subprocess.Popen(command, env=env, cwd=REPO, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        if not procs[1:]:
            time.sleep(2)  # the scheduler first
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    yield address, logs[1:]
    _stop(procs[::-1])


@pytest.mark.scenario
def test_shards_on_a_dask_cluster_share_the_quota_and_merge_into_one_report(
    paced_emulator, dask_cluster, dest, tmp_path
):
    address, worker_logs = dask_cluster
    config = providers_file(tmp_path / "providers.toml", paced={
        "kind": "emulator", "base_url": paced_emulator.base_url, "requests_per_window": RPM,
        "window_s": WINDOW_S})
    catalog = write_catalog(tmp_path / "c.csv", 36)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, provider="paced",
                                 providers_file=config, concurrency=8, shards=2,
                                 dask_address=address)
    ran = [log.read_text() for log in worker_logs]
    assert state.is_completed(), (state.message, ran)
    totals = outcome["totals"]
    assert (totals["rows"], totals["succeeded"], totals["failed"]) == (36, 36, 0)
    assert totals["cost_usd"] == pytest.approx(paced_emulator.ledger()["usd"])
    assert totals["providers"]["paced"]["requests"] == 36
    assert paced_emulator.stats()["quota_429"] == 0
    assert all("shard" in text for text in ran), ran  # both workers ran one shard


def test_dask_address_needs_shards(dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 4)
    state, _ = run_refresh(catalog=str(catalog), dest=dest, dask_address="tcp://127.0.0.1:1")
    assert state.is_failed()
    assert "dask_address: the Dask cluster runs shards" in expected_error_of(state)


def test_shards_without_their_deployment_stop_before_any_request(emulator, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 4)
    state, _ = run_refresh(catalog=str(catalog), dest=dest, shards=2,
                           shard_deployment="no-such-flow/no-such-deployment")
    assert state.is_failed()
    assert re.search("no-such-deployment.*not found", expected_error_of(state))
    assert emulator.stats()["requests"] == 0


def test_batch_mode_cannot_be_sharded(dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 4)
    state, _ = run_refresh(catalog=str(catalog), dest=dest, shards=2, mode="batch")
    refused = "invalid run settings: shards: batch mode runs in one flow"
    assert state.is_failed() and refused in expected_error_of(state)


def test_split_jobs_keeps_every_row_once_in_order(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "plan.parquet"
    pq.write_table(pa.table({"row": list(range(1, 1002))}), source, row_group_size=300)
    files = split_jobs(str(source), 4, tmp_path / "out")
    assert [rows for _, rows in files] == [251, 251, 251, 248]
    rows = [r for path, _ in files for r in pq.read_table(path)["row"].to_pylist()]
    assert rows == list(range(1, 1002))


def test_the_shared_rate_limit_never_admits_more_than_the_quota_in_a_window():
    for rpm, window in [(24, 4.0), (60, 60.0), (1000, 60.0), (1, 60.0), (5, 1.0)]:
        burst, decay = shared_rate_limit(rpm, window)
        assert burst >= 1
        assert burst + int(decay * window) <= rpm
        assert decay * window >= 0.4 * max(rpm - burst, 1)  # still uses most of the quota
