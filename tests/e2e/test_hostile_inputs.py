"""Hostile catalogs, run parameters and bucket state, on real parts (emulator, SeaweedFS,
Prefect): refused before any request, or skipped with a warning, never the run's end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_refresh, write_catalog
from PIL import Image

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.ledger import read_history
from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.run_sections import grouped_parameters
from catalog_images.worker_policy import PROVIDERS_FILES_ENV, UNTRUSTED_ENV

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def _providers_file(path: Path, base_url: str, key_env: str) -> Path:
    path.write_text(f'[providers.evil]\nkind = "gemini"\nbase_url = "{base_url}"\n'
                    f'auth = "bearer"\napi_key_env = "{key_env}"\n')
    return path


def _objects(local_s3, dest: str) -> list[str]:
    location = S3Location.parse(dest)
    answer = local_s3.client().list_objects_v2(Bucket=location.bucket, Prefix=location.prefix)
    return [item["Key"] for item in answer.get("Contents", [])]


def _hostile_parameters(emulator, tmp_path: Path) -> list[tuple[dict, str]]:
    evil = _providers_file(tmp_path / "evil.toml", emulator.base_url, "AWS_SECRET_ACCESS_KEY")
    return [
        ({"providers_file": str(evil), "provider": "evil"}, "providers_file"),
        ({"report_path": str(tmp_path / "reports" / "cron.json")}, "report_path"),
        ({"dask_address": "tcp://127.0.0.1:9", "shards": 2}, "dask_address"),
        ({"aws_credentials_block": "someone-elses-block"}, "aws_credentials_block"),
        ({"shard_deployment": "other-flow/other", "shards": 2}, "shard_deployment"),
    ]


def test_each_route_into_the_worker_is_refused_before_any_request(
        emulator, local_s3, dest, tmp_path, monkeypatch):
    monkeypatch.setenv(UNTRUSTED_ENV, "1")  # as in a deployment run
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-secret-0123456789")
    catalog = write_catalog(tmp_path / "c.csv", 3)
    for extra, named in _hostile_parameters(emulator, tmp_path):
        state, _ = run_refresh(catalog=str(catalog), dest=dest, **extra)
        assert state.is_failed() and named in state.message, state.message
    # Even a providers file the operator listed may not send a credential, nor a preset's key
    # to another host.
    monkeypatch.setenv(PROVIDERS_FILES_ENV, os.pathsep.join(
        str(tmp_path / name) for name in ("evil.toml", "stolen.toml")))
    _providers_file(tmp_path / "stolen.toml", emulator.base_url, "GEMINI_API_KEY")
    for name, problem in (("evil.toml", "credential"), ("stolen.toml", "another host")):
        state, _ = run_refresh(catalog=str(catalog), dest=dest, provider="evil",
                               providers_file=str(tmp_path / name))
        assert state.is_failed() and problem in state.message, state.message
        assert "canary-aws-secret" not in state.message
    assert emulator.stats()["requests"] == 0
    assert not (tmp_path / "reports").exists()
    assert _objects(local_s3, dest) == []  # not even a lease was written


@pytest.mark.timeout(900)  # prefect deploy and a worker process, on a busy 2-core machine
@pytest.mark.scenario
def test_a_deployment_run_with_hostile_parameters_is_refused(
        work_pool, emulator, local_s3, dest, tmp_path, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    env = {**os.environ, **local_s3.env(), "PREFECT_API_URL": prefect_api,
           "CATALOG_IMAGES_EMULATOR_URL": emulator.base_url,
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool"), "PWD": str(REPO)}
    env.pop(UNTRUSTED_ENV, None)  # the deployment alone makes its parameters untrusted
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    for args in (["work-pool", "create", work_pool, "--type", "process", "--overwrite"],
                 ["deploy", "--name", "on-demand", "--prefect-file", "deployments/prefect.yaml"]):
        done = subprocess.run([*prefect, *args], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    catalog = write_catalog(tmp_path / "c.csv", 3)
    hostile = _hostile_parameters(emulator, tmp_path)[:2]
    runs = [run_deployment("catalog-refresh/on-demand", timeout=0, parameters=grouped_parameters(
        {"catalog": str(catalog), "dest": dest, **extra})) for extra, _ in hostile]
    worker = subprocess.run([*prefect, "worker", "start", "--pool", work_pool, "--run-once"],
                            env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=300)

    async def states():
        async with get_client() as client:
            return [(await client.read_flow_run(run.id)).state for run in runs]

    for state, (_, named) in zip(asyncio.run(states()), hostile, strict=True):
        assert state.is_failed() and named in (state.message or ""), (
            state, worker.stdout[-3000:], worker.stderr[-3000:])
    assert emulator.stats()["requests"] == 0
    assert not (tmp_path / "reports").exists()


def _png(path: Path) -> Path:
    Image.new("RGB", (16, 16), "green").save(path, "PNG")
    return path


def test_references_outside_the_catalog_are_rejected_alike_and_never_sent(
        emulator, local_s3, dest, tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    _png(folder / "ok.png")
    secret = _png(tmp_path / "secret.png")
    (folder / "link.png").symlink_to(secret)
    rows = {"OK": "ok.png", "UP": "../secret.png", "ABS": str(secret), "LINK": "link.png",
            "GONE": "../missing.png", "S3": "s3://some-other-bucket/secret.png"}
    catalog = folder / "c.csv"
    catalog.write_text("sku,prompt,reference_image\n" + "".join(
        f"{sku},Studio photo {sku},{ref}\n" for sku, ref in rows.items()))
    state, outcome = run_refresh(catalog=str(catalog), dest=dest)
    assert outcome["totals"]["succeeded"] == 1 and outcome["totals"]["rejected"] == 5
    assert emulator.stats()["requests"] == 1
    report = json.loads(local_s3.client().get_object(
        Bucket=S3Location.parse(dest).bucket,
        Key=outcome["report_uri"].split("/", 3)[3])["Body"].read())
    reasons = {row["sku"]: row["reason"] for row in report["rows"]}
    for sku, ref in rows.items():
        if sku != "OK":
            assert reasons[sku].startswith(f"unreadable reference image {ref}: not a file "
                                           "this run may read"), reasons[sku]
    assert not any("no such file" in (reason or "") for reason in reasons.values())


def test_a_malformed_ledger_row_or_index_part_does_not_stop_the_next_run(
        emulator, local_s3, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 3)
    state, _ = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed()
    location = S3Location.parse(dest)
    layout = DestinationLayout(location)
    client = local_s3.client()
    bad = {
        layout.run_key("20990101T000000Z-aaaaaa", "summary.json"): b"{not json",
        layout.run_key("20990101T000001Z-bbbbbb", "summary.json"): b"[1, 2]",
        layout.run_key("20990101T000002Z-cccccc", "summary.json"): json.dumps(
            {"run_id": "x", "cost_usd": "lots"}).encode(),
        layout.run_key("20990101T000003Z-dddddd", "summary.json"): b"[" * 200_000,
        layout.index_part_key("20990101T000004Z-eeeeee", 0): b"PAR1 not parquet",
        layout.snapshot_key("20990101T000005Z-ffffff"): b"garbage",
    }
    for key, body in bad.items():
        client.put_object(Bucket=location.bucket, Key=key, Body=body)
    client.put_object(Bucket=location.bucket,
                      Key=layout.snapshot_runs_key(layout.snapshot_key(
                          "20990101T000005Z-ffffff")), Body=b'{"runs": 5}')
    history = read_history(S3Settings.from_environment(), location)
    assert len(history) == 1  # the good row only
    write_catalog(tmp_path / "c.csv", 4)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest)
    assert state.is_completed(), state.message
    assert outcome["report_uri"] is not None and outcome["totals"]["succeeded"] == 1
    assert outcome["totals"]["skipped"] == 3  # the index still works
    assert emulator.stats()["requests"] == 4



def test_bad_batch_records_are_left_in_place_and_the_good_ones_read(
        local_s3, dest, monkeypatch):
    from types import SimpleNamespace

    from catalog_images.destination import batch_records

    location = S3Location.parse(dest)
    layout = DestinationLayout(location)
    good = {"display_name": "good", "name": "batches/1", "run_id": "r", "provider": "emulator",
            "jobs": [{"sku": "A", "prompt": "p", "resolution": "1K", "aspect_ratio": "1:1",
                      "reference_image": None, "priority": "normal", "row": 1,
                      "fingerprint": "f"}]}
    bodies = {"good": json.dumps(good).encode(), "deep": b"[" * 100_000,
              "shape": json.dumps({**good, "jobs": [7]}).encode(),
              "big": json.dumps({**good, "display_name": "x" * 5000}).encode()}
    client = local_s3.client()
    for name, body in bodies.items():
        client.put_object(Bucket=location.bucket, Key=layout.batch_record_key(name), Body=body)
    monkeypatch.setattr(batch_records, "MAX_RECORD_BYTES", 4096)

    async def load():
        async with S3Settings.from_environment().aio_client_context(4) as s3_client:
            ctx = SimpleNamespace(run_id="r2", location=location, s3_client=s3_client)
            return await batch_records.load_all(ctx)

    records = asyncio.run(load())
    assert [r.display_name for r in records] == ["good"]
    assert len(_objects(local_s3, dest)) == 4  # the bad ones stay, for a person to look at
