"""The ``catalog-images`` command as a user runs it: a separate process, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import write_catalog

CLI = [sys.executable, "-m", "catalog_images.cli"]


def _env(local_s3, emulator, tmp_path, api_url: str) -> dict:
    """The user's environment: S3 and emulator settings, and a running Prefect API."""
    return {**os.environ, **local_s3.env(), "CATALOG_IMAGES_EMULATOR_URL": emulator.base_url,
            "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool"), "PREFECT_API_URL": api_url}


def test_run_writes_the_report_and_exits_by_outcome(
    local_s3, emulator, dest, tmp_path, prefect_api
):
    catalog = write_catalog(tmp_path / "c.csv", 6)
    emulator.script("number 4", ["safety"])
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *CLI[1:], "run", "--catalog", str(catalog),
         "--dest", dest, "--concurrency", "4", "--report", str(report), "--no-progress"],
        env=_env(local_s3, emulator, tmp_path, prefect_api), capture_output=True, text=True,
        timeout=240,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    # Two libraries a run has no use for stay unloaded (catalog_images/lean_start.py).
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and line.count("|") == 2}
    assert not [name for name in imported if name.startswith(("pandas.", "fastapi"))]
    assert "pyarrow.lib" in imported and "prefect.flows" in imported  # the check can see
    data = json.loads(report.read_text())
    assert data["totals"]["succeeded"] == 5 and data["totals"]["failed"] == 1
    assert data["warnings"] == []  # nothing wrong beyond the rows' own outcomes
    assert "safety" in done.stderr and "Report written to" in done.stderr

    done = subprocess.run(
        [*CLI, "run", "--catalog", str(catalog), "--dest", dest, "--report", str(report)],
        env=_env(local_s3, emulator, tmp_path, prefect_api), capture_output=True, text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(report.read_text())["totals"]["failed"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--dest", "not-s3"], "is not an s3:// URI"),
     (["--dest", "s3://b/p", "--concurrency", "0"], "concurrency"),
     (["--dest", "s3://b/p", "--provider", "google"], "GEMINI_API_KEY"),
     (["--dest", "s3://b/p", "--prompt-template", "Photo of {title"], "prompt_template")],
)
def test_bad_settings_exit_2_with_a_message_before_anything_runs(args, message, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    done = subprocess.run([*CLI, "run", "--catalog", "c.csv", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
