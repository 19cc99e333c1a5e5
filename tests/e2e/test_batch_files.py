"""Batch Mode's input files stay within what the Files API takes (2 GB, scaled down here on
both sides): the emulator refuses a bigger upload with 400, as the API does, and the
pipeline splits the rows over several batch jobs instead, each billed once."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import run_refresh, write_catalog

from catalog_images.generation import batch_jobs
from catalog_images.providers import gemini_batch

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")
LIMIT = 1500  # bytes: fewer than these 12 rows' request lines take


def _batches(emulator) -> list[dict]:
    return httpx.get(f"{emulator.base_url}/v1beta/batches",
                     params={"pageSize": 1000}).json().get("operations", [])


def test_rows_over_one_input_file_go_as_several_jobs_the_api_would_take(
    emulator, dest, tmp_path, monkeypatch
):
    emulator.configure(batch_delay_s=0.3, max_file_bytes=LIMIT)
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 0)  # every job as an upload
    catalog = write_catalog(tmp_path / "c.csv", 12, resolution="1K")

    # A client that ignored the limit: the upload is refused and no job exists.
    monkeypatch.setattr(batch_jobs, "FILE_LIMIT_BYTES", 10 * LIMIT)
    report = tmp_path / "refused.json"
    state, refused = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                 batch_rows=12, batch_poll_s=0.2, report_path=str(report))
    assert refused["totals"]["succeeded"] == 0 and refused["totals"]["skipped"] == 12
    reasons = {row["reason"] for row in json.loads(report.read_text())["rows"]}
    assert len(reasons) == 1 and "exceeds the maximum" in reasons.pop()
    assert _batches(emulator) == [] and emulator.ledger()["images"] == 0

    monkeypatch.setattr(batch_jobs, "FILE_LIMIT_BYTES", LIMIT)
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, mode="batch",
                                 batch_rows=12, batch_poll_s=0.2)
    assert state.is_completed(), state.message
    assert outcome["totals"]["succeeded"] == 12
    assert len(_batches(emulator)) >= 2  # one job of all 12 would be refused, as above
    assert emulator.ledger()["images"] == 12 and not emulator.duplicates()


def test_the_emulator_refuses_a_file_over_the_limit_in_every_upload_form(emulator):
    emulator.configure(max_file_bytes=LIMIT)
    upload = f"{emulator.base_url}/upload/v1beta/files"
    small, big = b"x" * LIMIT, b"x" * (LIMIT + 1)
    assert httpx.post(upload, content=small).status_code == 200
    assert httpx.post(upload, content=big).status_code == 400  # raw
    boundary = "b0undary"

    def multipart(data: bytes) -> httpx.Response:
        body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n"
                '{"file": {"display_name": "f"}}\r\n'
                f"--{boundary}\r\nContent-Type: application/jsonl\r\n\r\n").encode() + data + (
                f"\r\n--{boundary}--\r\n").encode()
        return httpx.post(upload, content=body, headers={
            "Content-Type": f"multipart/related; boundary={boundary}"})

    assert multipart(small).status_code == 200 and multipart(big).status_code == 400
    declared = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}
    refused = httpx.post(upload, json={}, headers={
        **declared, "X-Goog-Upload-Header-Content-Length": str(LIMIT + 1)})
    assert refused.status_code == 400 and "exceeds the maximum" in refused.text
    started = httpx.post(upload, json={}, headers=declared)  # no size declared
    url = started.headers["X-Goog-Upload-URL"]
    assert httpx.post(url, content=small, headers={"X-Goog-Upload-Command": "upload"}
                      ).status_code == 200
    assert httpx.post(url, content=b"x", headers={
        "X-Goog-Upload-Command": "upload, finalize"}).status_code == 400
