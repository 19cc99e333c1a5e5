"""RowResult's constructors: every outcome carries its job's identity and only its own
fields, and a result survives the manifest unchanged."""

from __future__ import annotations

from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.catalog.validate import JOB_FIELDS
from catalog_images.models import Job, RowStatus
from catalog_images.report.results import ResultSink, RowResult, Tries, iter_result_rows

JOB = Job(sku="MUG-1", prompt="a red mug", resolution="4K", aspect_ratio="3:2", row=7,
          fingerprint="fp-planned", priority="normal")


def _identity(result: RowResult) -> tuple:
    return (result.sku, result.row, result.resolution, result.aspect_ratio,
            result.prompt_sha256)


def test_every_outcome_carries_the_jobs_identity_and_its_own_status():
    outcomes = {
        RowStatus.SUCCEEDED: RowResult.succeeded(
            JOB, s3_key="p/images/MUG-1.png", size=10, width=4, height=3, provider="g",
            model="m", cost_usd=0.24),
        RowStatus.FAILED: RowResult.failed(JOB, "safety", "blocked"),
        RowStatus.SKIPPED: RowResult.skipped(JOB, "budget", error_class="budget"),
    }
    for status, result in outcomes.items():
        assert result.status == status
        assert _identity(result) == ("MUG-1", 7, "4K", "3:2", sha256_hex("a red mug"))
        assert result.fingerprint == "fp-planned"
    assert RowResult.unchanged(JOB, "k", "fp-now").fingerprint == "fp-now"


def test_tries_are_copied_not_shared():
    tries = Tries(attempts=3, retries={"rate_limited": 2}, latency_s=1.5)
    result = RowResult.failed(JOB, "timeout", "too slow", provider="g", tries=tries)
    tries.retries["rate_limited"] += 1
    assert (result.attempts, result.retries, result.latency_s) == (3, {"rate_limited": 2}, 1.5)
    assert RowResult.skipped(JOB, "stopped").attempts == 0


def test_unchanged_lost_and_settled_rows_say_what_they_are():
    unchanged = RowResult.unchanged(JOB, "p/images/MUG-1.png")
    assert (unchanged.status, unchanged.reason, unchanged.s3_key) == (
        RowStatus.SKIPPED, "unchanged", "p/images/MUG-1.png")
    assert unchanged.provider is None and unchanged.cost_usd == 0
    lost = RowResult.lost(JOB, "internal error: RuntimeError")
    assert (lost.status, lost.error_class, lost.provider) == (RowStatus.FAILED, "internal", None)
    rejected = RowResult.settled({"row": 3, "sku": None, "status": "rejected",
                                  "reason": "missing sku", "fingerprint": None})
    assert (rejected.row, rejected.status, rejected.reason) == (3, "rejected", "missing sku")
    assert rejected.resolution is None


def test_a_result_comes_back_from_the_manifest_as_it_went_in(tmp_path):
    results = [
        RowResult.succeeded(JOB, s3_key="k", size=10, width=4, height=3, provider="g",
                            model="m", cost_usd=0.24, reason="uploaded from spool",
                            tries=Tries(2, {"unavailable": 1}, 0.25)),
        RowResult.lost(JOB, "shard 1 ended"),
    ]
    sink = ResultSink(tmp_path / "manifest.parquet")
    for result in results:
        sink.add(result)
    sink.close()
    assert [RowResult.from_dict(row) for row in iter_result_rows(sink.path)] == results


def test_a_job_is_a_plan_row_and_stored_job_dicts_load():
    assert tuple(JOB.to_dict()) == JOB_FIELDS  # the plan's columns, in order
    assert Job.from_dict(JOB.to_dict()) == JOB
    older = {"sku": "A", "prompt": "p", "resolution": "1K", "aspect_ratio": "1:1", "row": 1,
             "fingerprint": "f", "a_key_of_a_newer_version": True}
    job = Job.from_dict(older)
    assert (job.sku, job.priority, job.reference_image) == ("A", None, None)


def test_totals_give_the_bill_beside_list_prices_and_no_image_spend_apart():
    from catalog_images.report.render import summary_markdown
    from catalog_images.report.results import Totals

    totals = Totals()
    totals.add(RowResult.succeeded(JOB, s3_key="k", size=1, width=1, height=1, provider="g",
                                   model="gemini-3-pro-image", cost_usd=0.27,
                                   list_cost_usd=0.24))
    totals.add(RowResult.failed(JOB, "safety", "no image: finishReason IMAGE_SAFETY",
                                provider="g", model="gemini-3.1-flash-image", cost_usd=0.002))
    totals.add(RowResult.failed(JOB, "bad_request", "400", provider="g", model="m"))
    summary = totals.summary(wall_s=1.0)
    assert summary["cost_usd"] == 0.272 and summary["list_cost_usd"] == 0.24
    assert (summary["no_image_cost_usd"], summary["no_image_rows"]) == (0.002, 1)
    assert summary["cost_by_model"] == {"gemini-3-pro-image": 0.27,
                                        "gemini-3.1-flash-image": 0.002}
    header = {"run_id": "r", "catalog": "c", "dest": "d", "provider": "g", "model": "m",
              "report_uri": "u", "images_uri": "i"}
    text = summary_markdown(header, {**summary, "providers": {}}, {})
    assert "$0.272 billed" in text and "against $0.24 at list prices" in text
    assert "Spent on answers without an image:** $0.002 (1 rows" in text
