"""`catalog-images run` in ephemeral mode: the temporary API launched on the CLI's first line
is the one Prefect uses (no second start), and it is gone when the command exits."""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
from conftest import cli_command, cli_env, write_catalog


@pytest.mark.scenario  # a whole ephemeral Prefect API per test: make scenarios
@pytest.mark.timeout(900)  # a fresh Prefect database is migrated first
def test_ephemeral_run_uses_the_early_server_and_stops_it(local_s3, emulator, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 3)
    report = tmp_path / "report.json"
    env = cli_env(local_s3, emulator)
    env.pop("PREFECT_API_URL", None)
    env["CATALOG_IMAGES_SPOOL_DIR"] = str(tmp_path / "spool")
    done = subprocess.run(cli_command("run", catalog, dest, "--report", str(report),
                                      "--no-progress"),
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(report.read_text())["totals"]["succeeded"] == 3
    assert "Starting temporary server" not in done.stderr  # Prefect started no second one
    stopped = re.search(r"Stopping temporary server on http://127\.0\.0\.1:(\d+)", done.stderr)
    assert stopped, done.stderr[-3000:]
    with socket.socket() as sock:  # nothing listens there any more
        assert sock.connect_ex(("127.0.0.1", int(stopped.group(1)))) != 0


@pytest.mark.scenario
@pytest.mark.timeout(900)
def test_opting_out_leaves_the_ephemeral_api_to_prefect(local_s3, emulator, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 2)
    env = {**cli_env(local_s3, emulator), "CATALOG_IMAGES_EARLY_API": "0",
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool")}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(cli_command("run", catalog, dest, "--no-progress"), env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting temporary server" in done.stderr
