"""Deployments as users run them: `prefect deploy` from deployments/prefect.yaml, a process
worker, a run triggered through the API with parameters, its artifacts read back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_catalog

PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]


def _prefect(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run([*PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture
def worker_env(prefect_api, local_s3, emulator, tmp_path) -> dict:
    return {**os.environ, **local_s3.env(), "PREFECT_API_URL": prefect_api,
            "CATALOG_IMAGES_EMULATOR_URL": emulator.base_url,
            "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool"), "PWD": str(REPO)}


@pytest.mark.scenario
def test_deploy_run_through_the_api_and_read_back_artifacts(
        work_pool, worker_env, dest, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment

    _prefect(["work-pool", "create", work_pool, "--type", "process", "--overwrite"], worker_env)
    _prefect(["deploy", "--all", "--prefect-file", "deployments/prefect.yaml"], worker_env)

    async def deployments():
        async with get_client() as client:
            return {d.name: d for d in await client.read_deployments()}

    deployed = asyncio.run(deployments())
    nightly = deployed["nightly-refresh"]
    assert nightly.schedules and nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert nightly.schedules[0].schedule.timezone == "Europe/Berlin"
    limit = nightly.global_concurrency_limit
    assert (limit.limit if limit else nightly.concurrency_limit) == 1
    assert nightly.concurrency_options.collision_strategy == "ENQUEUE"
    assert "on-demand" in deployed

    catalog = write_catalog(Path(tmp_path) / "c.csv", 8)
    flow_run = run_deployment(  # synchronous when called outside an event loop
        "catalog-refresh/on-demand", timeout=0,
        parameters={"catalog": str(catalog), "dest": dest, "providers": {"concurrency": 4}})
    _prefect(["worker", "start", "--pool", work_pool, "--run-once"], worker_env,
             timeout=300)

    async def finished():
        async with get_client() as client:
            run = await client.read_flow_run(flow_run.id)
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
            return run, artifacts

    run, artifacts = asyncio.run(finished())
    assert run.state.is_completed(), run.state.message
    by_key = {a.key: a for a in artifacts if a.key}
    progress = next(a for a in artifacts if a.type == "progress")
    assert progress.data == 100.0
    assert "| 8 | 8 | 0 | 0 | 0 |" in by_key["catalog-refresh-summary"].data
    assert "/runs/" in by_key["catalog-refresh-run-folder"].data


def test_every_flow_parameter_has_a_description_for_the_ui_form():
    from catalog_images.run_sections import SECTIONS, TOP_LEVEL
    from flows.catalog_refresh import catalog_refresh

    schema = catalog_refresh.parameters.model_dump_for_openapi()
    properties = schema["properties"]
    assert set(properties) == {*TOP_LEVEL, *SECTIONS}  # catalog, dest and the sections
    missing = [name for name, prop in properties.items() if not prop.get("description")]
    missing += [f"{model}.{name}" for model, definition in schema["definitions"].items()
                for name, prop in definition["properties"].items()
                if not prop.get("description")]
    assert missing == []
    assert schema["definitions"]["BatchOptions"]["properties"]["mode"]["enum"] == [
        "standard", "batch"]
