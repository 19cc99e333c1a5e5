"""S3 failing at the end of a run: what was done and paid is still reported."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import EndpointConnectionError
from conftest import run_refresh, write_catalog

from catalog_images.destination.storage import StorageError

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")


def test_s3_down_at_report_time_still_gives_the_summary_and_a_local_report(
    emulator, dest, tmp_path, monkeypatch
):
    # Found by bench/soak.py: S3 down after the last image made the run end with no report
    # and "run failed before any image was generated" (exit 2), the images paid for.
    import catalog_images.generation.finish as finish
    import catalog_images.report.publish as publish

    def snapshot_down(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")

    def put_down(settings, location, key, *args):
        raise StorageError(f"cannot write s3://{location.bucket}/{key}: connection refused")

    monkeypatch.setattr(finish, "write_snapshot", snapshot_down)
    monkeypatch.setattr(publish, "put_file", put_down)
    catalog = write_catalog(tmp_path / "c.csv", 6)
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, report_path=str(report))
    assert state.is_failed() and "the report was not uploaded" in state.message
    assert outcome is not None and outcome["totals"]["succeeded"] == 6
    assert outcome["report_uri"] is None and outcome["report_path"] == str(report.resolve())
    assert "not uploaded to S3" in outcome["summary"]
    assert len(json.loads(report.read_text())["rows"]) == 6
    assert emulator.ledger()["images"] == 6


def _spool_disk_full(monkeypatch) -> None:
    """The local disk of the spool is full (a full disk cannot be made here): every spool
    write leaves half an entry in its slot, then fails with ENOSPC."""
    import errno

    import catalog_images.destination.spool_slots as spool_slots

    real = spool_slots._pwrite_all

    def full(fd, parts):
        real(fd, [parts[0][: len(parts[0]) // 2]])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_slots, "_pwrite_all", full)


def test_a_full_spool_disk_costs_no_paid_image(emulator, dest, tmp_path, monkeypatch):
    _spool_disk_full(monkeypatch)
    catalog = write_catalog(tmp_path / "c.csv", 8)
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, report_path=str(report))
    assert state.is_completed(), state.message
    assert outcome["totals"]["succeeded"] == 8
    assert emulator.ledger()["images"] == 8 and not emulator.duplicates()
    assert [p for p in (tmp_path / "spool").rglob("*") if p.is_file()] == []  # no partials
    reasons = {row["reason"] for row in json.loads(report.read_text())["rows"]}
    assert reasons == {"uploaded without a spool copy (spool write failed: "
                       "No space left on device)"}


def test_batch_results_paid_but_neither_spooled_nor_uploaded_are_collected_again(
    emulator, dest, tmp_path, monkeypatch
):
    import catalog_images.generation.deliver as deliver

    emulator.configure(batch_delay_s=0.2)
    catalog = write_catalog(tmp_path / "c.csv", 4, resolution="1K")
    report = tmp_path / "r.json"
    with monkeypatch.context() as patched:
        _spool_disk_full(patched)

        async def s3_refuses(ctx, key, *args):  # S3 refusing the image PUTs
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")

        patched.setattr(deliver, "upload", s3_refuses)
        state, first = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                   batch_poll_s=0.1, report_path=str(report))
    assert first["totals"]["failed"] == 4 and emulator.ledger()["images"] == 4
    rows = json.loads(report.read_text())["rows"]
    assert all("the next run collects batch" in row["reason"] for row in rows)
    state, second = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                batch_poll_s=0.1)
    assert state.is_completed(), state.message
    assert second["totals"]["succeeded"] == 4
    assert emulator.stats()["requests"] == 1  # one batch created, read twice
    assert emulator.ledger()["images"] == 4 and not emulator.duplicates()
