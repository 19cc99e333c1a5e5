"""The run's Prefect events: names, resources, payloads, once-only events, no secrets."""

from __future__ import annotations

import pytest

from catalog_images.report import events as events_module
from catalog_images.report.events import (
    BREAKER_CLOSED,
    BREAKER_OPENED,
    BUDGET_REACHED,
    QUOTA_EXHAUSTED,
    REPORT_NOT_UPLOADED,
    RUN_FINISHED,
    RunEvents,
)
from catalog_images.secrets import register_secret


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every event given to Prefect's emit_event, as its keyword arguments."""
    import prefect.events

    calls: list[dict] = []
    monkeypatch.setattr(prefect.events, "emit_event",
                        lambda event, **kwargs: calls.append({"event": event, **kwargs}))
    return calls


def test_run_finished_names_the_destination_status_counts_and_cost(sent):
    totals = {"rows": 5, "accepted": 4, "succeeded": 3, "failed": 1, "rejected": 1,
              "skipped": 0, "cost_usd": 0.117, "latency_p50_s": 1.0}
    RunEvents("s3://bucket/catalog/eu", "r1").run_finished(
        "failed", totals, "s3://bucket/catalog/eu/runs/r1/report.json", "1 of 4 ...")
    (event,) = sent
    assert event["event"] == RUN_FINISHED == "catalog-images.run.finished"
    resource_id = event["resource"]["prefect.resource.id"]
    assert resource_id == "catalog-images.destination.bucket/catalog/eu"
    assert event["resource"]["catalog-images.status"] == "failed"
    payload = event["payload"]
    assert payload["totals"]["succeeded"] == 3 and "latency_p50_s" not in payload["totals"]
    assert payload["cost_usd"] == 0.117 and payload["run_id"] == "r1"
    assert payload["report_uri"].endswith("report.json")


def test_budget_and_quota_are_sent_once_per_run_and_provider(sent):
    events = RunEvents("s3://b/p", "r1")
    for _ in range(3):
        events.budget_reached(1.0, 0.96)
        events.quota_exhausted("google", "2026-12-01T08:00:00Z")
    events.quota_exhausted("relay")
    names = [e["event"] for e in sent]
    assert names == [BUDGET_REACHED, QUOTA_EXHAUSTED, QUOTA_EXHAUSTED]
    assert sent[1]["resource"]["prefect.resource.id"] == "catalog-images.provider.google"
    assert sent[1]["payload"]["resets_at"] == "2026-12-01T08:00:00Z"
    assert sent[1]["related"][0]["prefect.resource.id"] == "catalog-images.destination.b/p"
    assert sent[2]["payload"]["provider"] == "relay" and sent[2]["payload"]["model"] is None


def test_breaker_changes_and_an_unuploaded_report(sent):
    events = RunEvents("s3://b/p", "r1")
    events.breaker_changed("google", "open")
    events.breaker_changed("google", "closed")
    events.report_not_uploaded("AccessDenied", "/tmp/r.json")
    assert [e["event"] for e in sent] == [BREAKER_OPENED, BREAKER_CLOSED, REPORT_NOT_UPLOADED]
    assert sent[2]["payload"]["error"] == "AccessDenied"


def test_payloads_never_carry_a_secret(sent):
    register_secret("sk-events-secret-123")
    RunEvents("s3://b/p").report_not_uploaded("denied for key sk-events-secret-123")
    assert "sk-events-secret-123" not in str(sent) and "***" in sent[0]["payload"]["error"]


def test_emitting_never_raises(monkeypatch, caplog):
    import prefect.events

    def broken(*args, **kwargs):
        raise RuntimeError("events worker gone")

    monkeypatch.setattr(prefect.events, "emit_event", broken)
    RunEvents("s3://b/p").run_finished("completed", {})
    assert "not emitted: events worker gone" in caplog.text


def test_a_spent_quota_is_told_once_per_model_and_once_for_the_whole_provider(sent):
    """Google's per-day quotas are per model: two models spent are two events."""
    events = RunEvents("s3://b/p", "r1")
    for _ in range(2):
        events.quota_exhausted("google", "2026-12-01 08:00 UTC", "gemini-3-pro-image")
    events.quota_exhausted("google", "2026-12-01 08:00 UTC", "gemini-3.1-flash-image")
    events.quota_exhausted("google")  # our requests_per_day: every model
    events.quota_exhausted("google")
    assert [e["payload"]["model"] for e in sent] == [
        "gemini-3-pro-image", "gemini-3.1-flash-image", None]
    assert {e["resource"]["prefect.resource.id"] for e in sent} == {
        "catalog-images.provider.google"}


def test_an_unusable_destination_is_named_unknown():
    assert events_module.destination_resource(None)["prefect.resource.id"] == (
        "catalog-images.destination.unknown")
