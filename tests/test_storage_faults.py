"""S3 failing at the end of a run: what was done and paid is still reported."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import EndpointConnectionError
from conftest import run_refresh, write_catalog

from tasks.storage import StorageError

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def test_s3_down_at_report_time_still_gives_the_summary_and_a_local_report(
    emulator, dest, tmp_path, monkeypatch
):
    # Found by bench/soak.py: S3 down after the last image made the run end with no report
    # and "run failed before any image was generated" (exit 2), the images paid for.
    import flows.catalog_refresh as module

    def snapshot_down(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")

    def put_down(settings, location, key, *args):
        raise StorageError(f"cannot write s3://{location.bucket}/{key}: connection refused")

    monkeypatch.setattr(module, "write_snapshot", snapshot_down)
    monkeypatch.setattr(module, "put_file", put_down)
    catalog = write_catalog(tmp_path / "c.csv", 6)
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, report_path=str(report))
    assert state.is_failed() and "the report was not uploaded" in state.message
    assert outcome is not None and outcome["totals"]["succeeded"] == 6
    assert outcome["report_uri"] is None and outcome["report_path"] == str(report.resolve())
    assert "not uploaded to S3" in outcome["summary"]
    assert len(json.loads(report.read_text())["rows"]) == 6
    assert emulator.ledger()["images"] == 6
