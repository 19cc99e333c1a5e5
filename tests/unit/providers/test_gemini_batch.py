"""The Gemini Batch Mode client (create, find, wait, results) against scripted answers."""

from __future__ import annotations

import json

import httpx
import pytest

from catalog_images.models import ImageRequest
from catalog_images.providers import gemini_batch
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import build_request_body
from catalog_images.providers.gemini_batch import GeminiBatchClient, batch_state

from .wire import KEY, Wire, config, json_response, run

REQUESTS = [("sku-1", ImageRequest("a mug", "1K", "1:1")),
            ("sku-2", ImageRequest("a lamp", "2K", "16:9"))]
CREATE_URL = "https://api.test/v1beta/models/gemini-3-pro-image:batchGenerateContent"


def call(wire: Wire, method: str, *args, **kwargs):
    async def go():
        client = GeminiBatchClient(config(), KEY, transport=wire.transport)
        try:
            return await getattr(client, method)(*args, **kwargs)
        finally:
            await client.aclose()

    return run(go())


def test_a_small_job_is_created_inline_with_keys_in_metadata():
    wire = Wire(json_response(200, {"name": "batches/abc", "metadata": {}}))
    assert call(wire, "create", REQUESTS, "run-1-part-0") == "batches/abc"
    [request] = wire.requests
    assert request.method == "POST" and request.url == CREATE_URL
    assert request.headers["x-goog-api-key"] == KEY
    batch = wire.body()["batch"]
    assert batch["display_name"] == "run-1-part-0"
    assert batch["input_config"]["requests"]["requests"] == [
        {"request": build_request_body(req), "metadata": {"key": key}} for key, req in REQUESTS]


@pytest.mark.parametrize("uploaded", [{"file": {"name": "files/up-1"}}, {"name": "files/up-1"}])
def test_a_large_job_goes_as_an_uploaded_jsonl_file(monkeypatch, uploaded):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 100)
    wire = Wire(json_response(200, uploaded), json_response(200, {"name": "batches/big"}))
    assert call(wire, "create", REQUESTS, "big-job") == "batches/big"
    upload, create = wire.requests
    assert upload.url == "https://api.test/upload/v1beta/files"
    assert upload.headers["content-type"] == "application/jsonl"
    lines = [json.loads(line) for line in upload.content.decode().split("\n")]
    assert lines == [{"key": key, "request": build_request_body(req)} for key, req in REQUESTS]
    assert create.url == CREATE_URL
    assert json.loads(create.content) == {
        "batch": {"display_name": "big-job", "input_config": {"file_name": "files/up-1"}}}


@pytest.mark.parametrize(
    ("response", "error_class", "retry_after"),
    [(json_response(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}}),
      ErrorClass.RATE_LIMITED, 12.0),
     (json_response(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}),
      ErrorClass.BAD_REQUEST, None),
     (httpx.Response(200, content=b"<html>"), ErrorClass.BAD_RESPONSE, None)])
def test_create_errors_are_classified(response, error_class, retry_after):
    with pytest.raises(ProviderError) as caught:
        call(Wire(response), "create", REQUESTS, "x")
    assert caught.value.error_class is error_class
    assert caught.value.retry_after_s == retry_after


def test_find_pages_through_the_listing_by_display_name():
    first = {"operations": [{"name": "batches/1", "metadata": {"displayName": "other"}}],
             "nextPageToken": "p2"}
    second = {"operations": [{"metadata": {"displayName": "mine", "name": "batches/2"}}]}
    wire = Wire(json_response(200, first), json_response(200, second))
    assert call(wire, "find", "mine", page_size=1) == "batches/2"
    assert [dict(r.url.params) for r in wire.requests] == [
        {"pageSize": "1"}, {"pageSize": "1", "pageToken": "p2"}]
    assert all(r.url.path == "/v1beta/batches" for r in wire.requests)


def test_find_answers_none_when_no_job_has_the_name():
    wire = Wire(json_response(200, {"operations": [
        {"name": "batches/1", "metadata": {"displayName": "other"}}]}))
    assert call(wire, "find", "mine") is None and len(wire.requests) == 1


@pytest.mark.parametrize(
    "resource", [{"metadata": {"state": "BATCH_STATE_RUNNING"}}, {"state": "JOB_STATE_RUNNING"},
                 {"metadata": {"state": "JOB_STATE_RUNNING"}, "state": "JOB_STATE_PENDING"}])
def test_batch_state_is_read_from_metadata_or_the_top_level(resource):
    assert batch_state(resource).endswith("_RUNNING")


def test_wait_polls_until_a_terminal_state_and_returns_that_resource():
    done = {"name": "batches/abc", "metadata": {"state": "BATCH_STATE_SUCCEEDED"}}
    wire = Wire(json_response(200, {"state": "JOB_STATE_PENDING"}),
                json_response(503, {"error": {"status": "UNAVAILABLE"}}),  # retried
                json_response(200, {"metadata": {"state": "JOB_STATE_RUNNING"}}),
                json_response(200, done))
    assert call(wire, "wait", "batches/abc", 5.0, first_poll_s=0.001, max_poll_s=0.002) == done
    assert wire.paths() == ["GET /v1beta/batches/abc"] * 4


@pytest.mark.parametrize("state", ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
                                   "BATCH_STATE_EXPIRED"])
def test_a_job_that_ended_without_results_is_terminal(state):
    wire = Wire(json_response(200, {"state": state}))
    assert batch_state(call(wire, "wait", "batches/x", 5.0, first_poll_s=0.001)) == state
    assert len(wire.requests) == 1


def test_wait_returns_the_last_resource_at_its_deadline():
    wire = Wire(json_response(200, {"state": "JOB_STATE_RUNNING"}))
    resource = call(wire, "wait", "batches/x", 0.03, first_poll_s=0.005, max_poll_s=0.005)
    assert batch_state(resource) == "JOB_STATE_RUNNING" and len(wire.requests) >= 2


def test_a_final_poll_error_is_raised():
    wire = Wire(json_response(404, {"error": {"status": "NOT_FOUND"}}))
    with pytest.raises(ProviderError) as caught:
        call(wire, "wait", "batches/gone", 5.0, first_poll_s=0.001)
    assert caught.value.error_class is ErrorClass.NOT_FOUND


class Stop:
    """A StopSignal that asks to stop once ``after`` pauses were taken."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.pauses: list[float] = []

    @property
    def requested(self) -> bool:
        return len(self.pauses) >= self.after

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def test_wait_pauses_through_the_stop_signal_and_returns_when_stopped():
    wire = Wire(json_response(200, {"state": "JOB_STATE_RUNNING"}))
    stop = Stop(after=2)
    resource = call(wire, "wait", "batches/x", 600.0, first_poll_s=2.0, max_poll_s=60.0,
                    stop=stop)
    assert batch_state(resource) == "JOB_STATE_RUNNING"
    assert stop.pauses == [2.0, 3.0] and len(wire.requests) == 3


def test_inline_results_are_matched_by_key_not_position():
    resource = {"response": {"inlinedResponses": {"inlinedResponses": [
        {"metadata": {"key": "sku-2"}, "response": {"candidates": []}},
        {"metadata": {"key": "sku-1"}, "error": {"code": 400}}]}}}
    wire = Wire(json_response(500, {}))
    out = call(wire, "results", resource)
    assert out["sku-1"]["error"] == {"code": 400} and "response" in out["sku-2"]
    assert wire.requests == []  # nothing to download


@pytest.mark.parametrize(
    "resource", [{"response": {"responsesFile": "files/out-1"}},
                 {"dest": {"fileName": "files/out-1"}}])
def test_file_results_are_downloaded_and_read_line_by_line(resource):
    lines = [{"key": "sku-1", "response": {"candidates": []}}, {"key": "sku-2", "error": {}}]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    wire = Wire(httpx.Response(200, text=text))
    out = call(wire, "results", resource)
    assert out == {"sku-1": lines[0], "sku-2": lines[1]}
    [request] = wire.requests
    assert request.url.path == "/download/v1beta/files/out-1:download"
    assert request.url.params["alt"] == "media"


def test_a_failed_results_download_is_classified():
    wire = Wire(json_response(503, {"error": {"status": "UNAVAILABLE"}}))
    with pytest.raises(ProviderError) as caught:
        call(wire, "results", {"response": {"responsesFile": "files/out-1"}})
    assert caught.value.error_class is ErrorClass.UNAVAILABLE and caught.value.retryable


def test_a_job_without_results_yields_none():
    wire = Wire(json_response(500, {}))
    assert call(wire, "results", {"state": "JOB_STATE_SUCCEEDED"}) == {}
    assert wire.requests == []
