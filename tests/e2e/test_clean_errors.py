"""Expected errors, as a user meets them: the CLI in its own process against a real Prefect
server, SeaweedFS and the emulator. Each ends with its message and what to do, exit 2, no
traceback on the terminal nor in the run's logs on the server, and no provider request."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import cli_command, cli_env, prefect_http, write_catalog

from catalog_images.devtools.local_s3 import LocalS3


def _no_sku_csv(tmp: Path) -> Path:
    path = tmp / "nosku.csv"
    path.write_text("id,prompt\nA,a mug\n")
    return path


def _no_sku_parquet(tmp: Path) -> Path:
    path = tmp / "nosku.parquet"
    pq.write_table(pa.table({"id": ["A"], "prompt": ["a mug"]}), path)
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def _binary(tmp: Path) -> Path:
    path = tmp / "binary.csv"
    path.write_bytes(random.Random(7).randbytes(4096))
    return path


def _truncated_parquet(tmp: Path) -> Path:
    path = tmp / "trunc.parquet"
    pq.write_table(pa.table({"sku": [f"S{i}" for i in range(500)], "prompt": ["x"] * 500}), path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere.csv"


CATALOG_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "no-sku-column-csv": (_no_sku_csv, "has no 'sku' column"),
    "no-sku-column-parquet": (_no_sku_parquet, "has no 'sku' column"),
    "empty-file": (_empty, "empty file or no header line"),
    "binary-file-named-csv": (_binary, "not valid UTF-8"),
    "truncated-parquet": (_truncated_parquet, "trunc.parquet: cannot read"),
    "missing-file": (_missing, "nowhere.csv: no such file"),
}
CATALOG_ADVICE = "Fix the catalog file and run again; nothing was sent or spent."
STORAGE_ADVICE = "(check the bucket name, AWS_ENDPOINT_URL and credentials)"


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)


def _assert_clean(done: subprocess.CompletedProcess, message: str, advice: str) -> None:
    output = done.stdout + done.stderr
    flat = " ".join(done.stderr.split())
    assert done.returncode == 2, output[-3000:]
    assert message in flat and advice in flat, output[-3000:]
    assert "Traceback" not in output and "NoneType: None" not in output, output[-3000:]


def _run_logs(api_url: str, dest: str, timeout_s: float = 30) -> list[str]:
    """The log lines of the flow run that wrote to ``dest`` (flow and task runs alike)."""
    deadline = time.monotonic() + timeout_s
    with prefect_http(api_url) as api:
        while True:
            runs = api.post("/flow_runs/filter", json={
                "sort": "EXPECTED_START_TIME_DESC", "limit": 50}).json()
            ids = [r["id"] for r in runs if r["parameters"].get("dest") == dest]
            logs = api.post("/logs/filter", json={
                "logs": {"flow_run_id": {"any_": ids}}, "limit": 200}).json() if ids else []
            if any("Finished in state" in log["message"] for log in logs):
                return [log["message"] for log in logs]
            assert time.monotonic() < deadline, f"no logs of the run to {dest}: {runs[:3]}"
            time.sleep(0.5)


def _assert_logs_clean(api_url: str, dest: str, message: str) -> None:
    logs = _run_logs(api_url, dest)
    text = "\n".join(logs)
    assert message in " ".join(text.split()), text[-3000:]
    assert "Traceback" not in text and "NoneType: None" not in text, text[-3000:]
    assert "Encountered exception" not in text, text[-3000:]


@pytest.mark.parametrize("case", list(CATALOG_CASES))
def test_a_bad_catalog_ends_in_one_message_exit_2_and_no_traceback(
    case, local_s3, emulator, dest, tmp_path, prefect_api
):
    make, message = CATALOG_CASES[case]
    env = {**cli_env(local_s3, emulator, prefect_api),
           "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool")}
    done = _run(cli_command("run", make(tmp_path), dest, "--no-progress"), env)
    _assert_clean(done, message, CATALOG_ADVICE)
    _assert_logs_clean(prefect_api, dest, message)
    assert emulator.ledger()["images"] == 0


def _unusable_destination(dest: str, env: dict, tmp_path: Path, message: str,
                          api_url: str) -> None:
    env = {**env, "CATALOG_IMAGES_SPOOL_DIR": str(tmp_path / "spool")}
    done = _run(cli_command("run", write_catalog(tmp_path / "c.csv", 3), dest,
                            "--no-progress"), env)
    _assert_clean(done, message, STORAGE_ADVICE)
    assert "not-the-secret-key" not in done.stdout + done.stderr
    _assert_logs_clean(api_url, dest, message)


def test_a_missing_bucket_ends_in_one_message_exit_2_and_no_traceback(
    local_s3, emulator, tmp_path, prefect_api
):
    dest = f"s3://no-such-bucket-{uuid4().hex[:8]}/p"
    _unusable_destination(dest, cli_env(local_s3, emulator, prefect_api), tmp_path,
                          "destination bucket 'no-such-bucket-", prefect_api)
    assert emulator.ledger()["images"] == 0


def test_wrong_s3_credentials_end_in_one_message_exit_2_and_no_traceback(
    local_s3, emulator, tmp_path, prefect_api
):
    with LocalS3(require_credentials=True) as strict:  # the session's store takes any key
        env = {**cli_env(local_s3, emulator, prefect_api), **strict.env(),
               "AWS_SECRET_ACCESS_KEY": "not-the-secret-key"}
        dest = f"s3://{strict.bucket}/t-{uuid4().hex[:10]}"
        _unusable_destination(dest, env, tmp_path,
                              f"destination bucket '{strict.bucket}' is not usable: 403",
                              prefect_api)
    assert emulator.ledger()["images"] == 0


def test_an_unknown_provider_ends_in_one_message_exit_2_and_no_traceback(
    local_s3, emulator, dest, tmp_path, prefect_api
):
    env = cli_env(local_s3, emulator, prefect_api)
    done = _run(cli_command("run", write_catalog(tmp_path / "c.csv", 3), dest,
                            "--provider", "no-such-provider", "--no-progress"), env)
    _assert_clean(done, "no-such-provider", "Fix the provider configuration")
    assert emulator.ledger()["images"] == 0
