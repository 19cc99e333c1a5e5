"""A run stopped by a signal writes its report first: report, manifest and ledger row go
out, the pictures (contact sheet, history chart) and the index snapshot are left to the next
run, which draws this run in its chart. The real CLI, emulator, SeaweedFS and Prefect API."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
from conftest import cli_command, cli_env, stop_while_paused, write_catalog
from PIL import Image

from catalog_images.destination.ledger import read_history
from catalog_images.destination.storage import S3Location, S3Settings

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def _keys(local_s3, dest: str, under: str) -> list[str]:
    bucket, prefix = dest[5:].split("/", 1)
    listed = local_s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{under}")
    return [item["Key"][len(prefix) + 1:] for item in listed.get("Contents", [])]


@pytest.mark.scenario  # SIGTERM to a CLI process, then a second run: make scenarios
@pytest.mark.timeout(600)  # two CLI runs (and the session's servers) on a busy 2-core machine
def test_a_stopped_run_publishes_its_report_first_and_the_next_run_draws_it(
    emulator, local_s3, dest, tmp_path, prefect_api
):
    emulator.configure(fault_retry_delay_s=3600.0, retry_after_header=True)
    emulator.script("product", ["ok"] * 6 + ["429"] * 8)
    catalog = write_catalog(tmp_path / "c.csv", 20)
    report = tmp_path / "r.json"
    command = cli_command("run", catalog, dest, "--concurrency", "4", "--no-progress",
                          "--max-retry-hint", "7200", "--report", str(report))
    env = cli_env(local_s3, emulator, prefect_api)
    code, stderr, took = stop_while_paused(emulator, command, env)
    assert code == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert took < 30, stderr[-3000:]  # against a pause of an hour; a loaded CI is slow
    first = json.loads(report.read_text())
    assert first["stopped_by"] == "SIGTERM" and len(first["rows"]) == 20
    assert "the next run's history chart includes it" in first["pictures_skipped"]
    said = " ".join(stderr.split())  # the summary, as the console wrapped it
    assert "No contact sheet or history chart: the run was stopped by SIGTERM" in said
    run_folder = sorted(_keys(local_s3, dest, f"runs/{first['run_id']}/"))
    assert [key.rsplit("/", 1)[1] for key in run_folder] == [
        "manifest.parquet", "report.json", "summary.json"]
    assert "index snapshot left to the next run (stopped by SIGTERM)" in stderr
    assert not _keys(local_s3, dest, "state/snapshots/")

    emulator.clear_scripts()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    second = json.loads(report.read_text())
    assert "pictures_skipped" not in second and second["totals"]["succeeded"] == 14
    assert emulator.duplicates() == {} and emulator.ledger()["images"] == 20
    assert _keys(local_s3, dest, "state/snapshots/")
    bucket, prefix = dest[5:].split("/", 1)
    chart = local_s3.client().get_object(
        Bucket=bucket, Key=f"{prefix}/runs/{second['run_id']}/history.png")["Body"].read()
    assert Image.open(io.BytesIO(chart)).size == (1000, 500)
    history = read_history(S3Settings.from_environment(), S3Location.parse(dest))
    assert [row["run_id"] for row in history] == [first["run_id"], second["run_id"]]
