"""The catalog refresh flow end to end: real Prefect, real emulator, real SeaweedFS."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_refresh, write_catalog

pytestmark = pytest.mark.usefixtures("prefect_api", "s3_env")

REPORT_TOTAL_KEYS = {"rows", "succeeded", "failed", "rejected", "skipped", "cost_usd",
                     "images_per_s", "wall_s"}
SAMPLE_REJECTION_REASONS = ("missing sku", "empty prompt", "duplicate sku",
                            "unknown resolution '8K'", "unknown aspect_ratio '7:3'",
                            "would escape the key prefix", "unreadable reference image")


def _flow_artifacts(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    return asyncio.run(read())


def test_sample_catalog_ends_with_every_valid_row_in_the_bucket(
    emulator, local_s3, dest, sample_catalog, tmp_path
):
    report_path = tmp_path / "out" / "report.json"
    state, outcome = run_refresh(catalog=str(sample_catalog), dest=dest, concurrency=8,
                                 report_path=str(report_path))
    assert state.is_completed(), state.message
    report = json.loads(report_path.read_text())
    assert {"run_id", "totals", "rows"} <= report.keys()
    totals = report["totals"]
    assert totals.keys() >= REPORT_TOTAL_KEYS
    assert (totals["rows"], totals["succeeded"], totals["rejected"], totals["failed"]) == (
        57, 50, 7, 0)
    # first request to last upload: inside generation, which also opens clients and lists
    assert 0 < totals["steady_s"] < totals["generation_s"]
    rejected = [r for r in report["rows"] if r["status"] == "rejected"]
    for reason in SAMPLE_REJECTION_REASONS:
        assert any(reason in r["reason"] for r in rejected), reason

    client = local_s3.client()
    bucket, prefix = dest[5:].split("/", 1)
    succeeded = [r for r in report["rows"] if r["status"] == "succeeded"]
    for row in succeeded:
        assert row["s3_key"] == f"{prefix}/images/{row['sku']}.png"
        head = client.head_object(Bucket=bucket, Key=row["s3_key"])
        assert head["ContentType"] == "image/png"
        assert head["ContentLength"] == row["bytes"]
        meta = head["Metadata"]
        assert meta["sku"] == row["sku"] and meta["run-id"] == report["run_id"]
        assert meta["provider"] == "emulator" and meta["model"] == "gemini-3-pro-image"
        assert meta["prompt-sha256"] == row["prompt_sha256"]
        assert row["width"] and row["height"] and row["attempts"] >= 1
    four_k = [r for r in succeeded if r["resolution"] == "4K"]
    assert four_k and all(r["cost_usd"] == 0.24 for r in four_k)

    run_prefix = f"{prefix}/runs/{report['run_id']}"
    from PIL import Image

    for name in ("contact-sheet.png", "history.png"):
        body = client.get_object(Bucket=bucket, Key=f"{run_prefix}/{name}")["Body"].read()
        assert Image.open(__import__("io").BytesIO(body)).size[0] >= 400
    page = client.get_object(Bucket=bucket, Key=f"{run_prefix}/contact-sheet.html")
    assert "APP-TSHIRT-001" in page["Body"].read().decode()
    s3_report = json.loads(client.get_object(Bucket=bucket, Key=f"{run_prefix}/report.json")
                           ["Body"].read())
    assert s3_report["totals"] == totals
    manifest = client.get_object(Bucket=bucket, Key=f"{run_prefix}/manifest.parquet")
    local_manifest = tmp_path / "m.parquet"
    local_manifest.write_bytes(manifest["Body"].read())
    assert pq.read_table(local_manifest).num_rows == 57

    ledger = emulator.ledger()
    assert ledger["images"] == 50 and not emulator.duplicates()
    assert totals["cost_usd"] == pytest.approx(ledger["usd"])

    artifacts = _flow_artifacts(report["flow_run_id"])
    kinds = {a.type for a in artifacts}
    assert {"markdown", "table", "progress"} <= kinds
    assert any(a.key == "catalog-refresh-run-folder" and "/runs/" in a.data for a in artifacts)
    markdown = next(a for a in artifacts if a.key == "catalog-refresh-summary").data
    assert "| 57 | 50 | 0 | 7 | 0 |" in markdown and "duplicate sku" in markdown
    progress = next(a for a in artifacts if a.type == "progress")
    assert progress.data == 100.0
    assert outcome["report_path"] == str(report_path.resolve())


def test_faults_end_with_every_row_succeeded_and_each_prompt_billed_once(
    emulator, dest, tmp_path
):
    emulator.configure(faults={"503": 0.10, "429": 0.05, "malformed": 0.02},
                       fault_retry_delay_s=0.2, latency_s=0.01)
    catalog = write_catalog(tmp_path / "c.csv", 200, resolution="1K")
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, concurrency=16,
                                 chunk_size=25)
    assert state.is_completed(), state.message
    totals = outcome["totals"]
    assert totals["succeeded"] == 200 and totals["failed"] == 0
    retries = totals["retries_by_class"]
    assert retries.get("unavailable", 0) > 0 and retries.get("rate_limited", 0) > 0
    assert retries.get("bad_response", 0) > 0
    stats = emulator.stats()
    assert stats["requests"] > 200
    ledger = emulator.ledger()
    assert ledger["images"] == 200 and not emulator.duplicates()
    assert len(ledger["by_prompt"]) == 200
    assert totals["cost_usd"] == pytest.approx(ledger["usd"])


def test_a_row_without_image_fails_the_run_but_not_the_other_rows(emulator, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 12)
    emulator.script("number 3", ["safety"])
    emulator.script("number 7", ["503", "503", "503"])
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, max_attempts=3)
    assert state.is_failed()
    assert "2 of 12 accepted rows have no image" in state.message
    totals = outcome["totals"]
    assert (totals["succeeded"], totals["failed"]) == (10, 2)
    assert totals["failures_by_class"] == {"safety": 1, "unavailable": 1}
    assert emulator.ledger()["images"] == 10


def test_parquet_catalog_from_s3_with_a_prompt_template(emulator, local_s3, dest, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"sku": ["MUG-1", "LAMP-2"], "title": ["mug", "lamp"],
                          "color": ["red", "teal"], "aspect_ratio": ["4:5", "16:9"]})
    local = tmp_path / "c.parquet"
    frame.to_parquet(local, index=False)
    bucket = dest[5:].split("/", 1)[0]
    local_s3.client().upload_file(str(local), bucket, "catalogs/c.parquet")
    state, outcome = run_refresh(catalog=f"s3://{bucket}/catalogs/c.parquet", dest=dest,
                                 prompt_template="Studio photo of a {color} {title}")
    assert state.is_completed(), state.message
    by_prompt = emulator.ledger()["by_prompt"]
    from catalog_images.catalog.fingerprint import sha256_hex

    assert set(by_prompt) == {sha256_hex("Studio photo of a red mug"),
                              sha256_hex("Studio photo of a teal lamp")}
    assert outcome["totals"]["succeeded"] == 2


def test_unusable_settings_stop_the_run_before_any_request(emulator, dest, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", 3)
    no_sku = tmp_path / "nosku.csv"
    no_sku.write_text("id,prompt\n1,a\n")
    for params, message in [
        ({"catalog": str(no_sku), "dest": dest}, "no 'sku' column"),
        ({"catalog": str(catalog), "dest": "s3://no-such-bucket-x/p"}, "no-such-bucket-x"),
        ({"catalog": str(catalog), "dest": dest, "provider": "nope"}, "unknown provider"),
        ({"catalog": str(catalog), "dest": dest, "concurrency": 0}, "concurrency"),
    ]:
        state, _ = run_refresh(**params)
        assert state.is_failed() and message in state.message, state.message
    assert emulator.stats()["requests"] == 0


def test_api_keys_and_s3_secrets_never_leak(emulator, dest, tmp_path, monkeypatch, capfd):
    canary_key = "canary-gemini-key-must-not-leak-0123456789"
    canary_secret = "CANARY-S3-SECRET-must-not-leak-98765"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary_secret)
    monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_KEY", canary_key)
    emulator.configure(api_key="a-different-key-so-auth-fails")
    catalog = write_catalog(tmp_path / "c.csv", 3)
    report = tmp_path / "r.json"
    state, outcome = run_refresh(catalog=str(catalog), dest=dest, report_path=str(report))
    assert state.is_failed() and outcome["totals"]["failures_by_class"] == {"auth": 3}
    emulator.configure(api_key=canary_key)
    state2, outcome2 = run_refresh(catalog=str(catalog), dest=dest, report_path=str(report))
    assert state2.is_completed()
    texts = [report.read_text(), json.dumps(outcome, default=str), state.message or "",
             json.dumps(outcome2, default=str), capfd.readouterr().err]
    for run_outcome in (outcome, outcome2):
        texts += [json.dumps(a.data, default=str)
                  for a in _flow_artifacts(run_outcome["flow_run_id"])]
        texts += _flow_logs(run_outcome["flow_run_id"])
    for path in Path(tmp_path / "spool").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    joined = "\n".join(texts)
    assert "auth" in joined
    assert canary_key not in joined and canary_secret not in joined


def _flow_logs(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))

    return [log.message for log in asyncio.run(read())]
