"""The Gemini Batch Mode client (create, find, wait, results) against scripted answers."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from catalog_images.models import ImageRequest
from catalog_images.providers import batch_input, gemini_batch
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


UPLOAD_URL = "https://api.test/upload/v1beta/files?upload_id=u1"
STARTED = json_response(200, {}, {"x-goog-upload-url": UPLOAD_URL})


@pytest.mark.parametrize("uploaded", [{"file": {"name": "files/up-1"}}, {"name": "files/up-1"}])
def test_a_large_job_goes_as_an_uploaded_jsonl_file(monkeypatch, uploaded):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 100)
    wire = Wire(STARTED, json_response(200, uploaded), json_response(200, {"name": "batches/big"}))
    assert call(wire, "create", REQUESTS, "big-job") == "batches/big"
    start, upload, create = wire.requests
    assert start.url == "https://api.test/upload/v1beta/files"
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-type"] == "application/jsonl"
    assert json.loads(start.content) == {"file": {"display_name": "big-job"}}
    assert upload.url == UPLOAD_URL and upload.headers["x-goog-upload-command"] == (
        "upload, finalize")
    assert upload.headers["x-goog-upload-offset"] == "0"
    assert start.headers["x-goog-upload-header-content-length"] == str(len(upload.content))
    lines = [json.loads(line) for line in upload.content.decode().split("\n")]
    assert lines == [{"key": key, "request": build_request_body(req)} for key, req in REQUESTS]
    assert create.url == CREATE_URL
    assert json.loads(create.content) == {
        "batch": {"display_name": "big-job", "input_config": {"file_name": "files/up-1"}}}


def test_the_input_file_is_uploaded_in_pieces_at_their_offsets(monkeypatch):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 100)
    monkeypatch.setattr(batch_input, "UPLOAD_CHUNK_BYTES", 64)
    many = [(f"sku-{i}", ImageRequest(f"a lamp number {i}", "1K", "1:1")) for i in range(5)]
    wire = Wire(_resumable)
    assert call(wire, "create", many, "pieces") == "batches/p"
    uploads = wire.requests[1:-1]
    assert len(uploads) > 3 and all(len(u.content) == 64 for u in uploads[:-1])
    assert [u.headers["x-goog-upload-command"] for u in uploads] == (
        ["upload"] * (len(uploads) - 1) + ["upload, finalize"])
    assert [int(u.headers["x-goog-upload-offset"]) for u in uploads] == [
        64 * i for i in range(len(uploads))]
    sent = b"".join(u.content for u in uploads)
    assert [json.loads(line)["key"] for line in sent.split(b"\n")] == [k for k, _ in many]


def _resumable(request: httpx.Request) -> httpx.Response:
    """A Files API that answers each step of a resumable upload, then the create call."""
    command = request.headers.get("x-goog-upload-command", "")
    if command == "start":
        return json_response(200, {}, {"x-goog-upload-url": UPLOAD_URL})
    if command == "upload":
        return httpx.Response(200)  # no body, as Google answers a piece that is not the last
    if command == "upload, finalize":
        return json_response(200, {"file": {"name": "files/p"}})
    return json_response(200, {"name": "batches/p"})


@pytest.mark.parametrize("named", ["https://elsewhere.test/upload?upload_id=u1",
                                   "http://api.test/upload?upload_id=u1", "", "http://[::1"])
def test_an_upload_url_off_the_providers_host_is_refused_without_sending_it_data(
        monkeypatch, named):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 100)
    wire = Wire(json_response(200, {}, {"x-goog-upload-url": named}))
    with pytest.raises(gemini_batch.UploadFailed) as caught:
        call(wire, "create", REQUESTS, "x")
    assert caught.value.error_class is ErrorClass.REFUSED
    assert len(wire.requests) == 1  # the start only: neither the key nor the file went there


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
    assert out == {"sku-1": {"response": {"candidates": []}}, "sku-2": {"error": {}}}
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


def test_bad_inline_items_are_skipped_and_the_rest_collected():
    resource = {"response": {"inlinedResponses": {"inlinedResponses": [
        {"response": {"candidates": []}},  # no metadata.key (python-genai #1886)
        {"metadata": {}, "response": {}}, {"metadata": {"key": ["x"]}}, "not an item", None,
        {"metadata": {"key": "sku-3"}, "response": "not an object"},
        {"metadata": {"key": "sku-1"}, "response": {"candidates": []}}]}}}
    out = call(Wire(json_response(500, {})), "results", resource)
    assert out == {"sku-1": {"response": {"candidates": []}},
                   "sku-3": {"error": {"message": "malformed batch answer for this row"}}}


def test_malformed_and_oversized_result_lines_are_skipped(monkeypatch):
    good = json.dumps({"key": "sku-1", "response": {"candidates": []}})
    huge = json.dumps({"key": "sku-2", "response": {"x": "A" * 5000}})
    deep = "[" * 1000 + "]" * 1000
    text = "\n".join(["{not json", huge, deep, "42", good, '{"key": "sku-4", "error": 7}'])
    wire = Wire(httpx.Response(200, text=text))

    async def go():
        client = GeminiBatchClient(config(max_response_bytes=2000), KEY,
                                   transport=wire.transport)
        try:
            return await client.results({"response": {"responsesFile": "files/out-1"}})
        finally:
            await client.aclose()

    out = run(go())
    assert out == {"sku-1": {"response": {"candidates": []}},
                   "sku-4": {"error": {"message": "malformed batch answer for this row"}}}


def test_a_streamed_gzip_results_file_is_read_line_by_line():
    from .hostile import streamed

    lines = [json.dumps({"key": f"sku-{i}", "response": {"candidates": []}}) for i in range(50)]
    packed = gzip.compress("\n".join(lines).encode())
    response, _ = streamed([packed[i:i + 100] for i in range(0, len(packed), 100)],
                           {"content-encoding": "gzip"})
    out = call(Wire(response), "results", {"response": {"responsesFile": "files/out-1"}})
    assert sorted(out) == sorted(f"sku-{i}" for i in range(50))


@pytest.mark.parametrize("created", [{}, {"name": 5}, {"name": ""}, {"metadata": {}}])
def test_a_create_answered_without_a_name_is_a_provider_error_that_may_hide_a_job(created):
    with pytest.raises(ProviderError) as caught:
        call(Wire(json_response(200, created)), "create", REQUESTS, "x")
    assert caught.value.error_class is ErrorClass.BAD_RESPONSE
    assert caught.value.status == 200  # not a 4xx: the caller looks the job up by name


@pytest.mark.parametrize("uploaded", [{"file": "files/x"}, {"file": {"name": None}}, []])
def test_an_upload_answered_without_a_file_name_is_a_provider_error(monkeypatch, uploaded):
    monkeypatch.setattr(gemini_batch, "INLINE_LIMIT_BYTES", 100)
    with pytest.raises(gemini_batch.UploadFailed) as caught:
        call(Wire(STARTED, json_response(200, uploaded)), "create", REQUESTS, "x")
    assert caught.value.error_class is ErrorClass.BAD_RESPONSE


@pytest.mark.parametrize(
    "listed", [{"operations": "x"}, {"operations": [None, 5, {"metadata": "x"}]},
               {"operations": [{"name": 5, "metadata": {"displayName": "mine"}}]}])
def test_a_malformed_listing_finds_nothing(listed):
    assert call(Wire(json_response(200, listed)), "find", "mine") is None


def test_a_job_whose_images_would_not_fit_inline_goes_as_a_file():
    many = [(f"sku-{i}", ImageRequest("a lamp", "2K", "1:1")) for i in range(9)]
    wire = Wire(STARTED, json_response(200, {"file": {"name": "files/up-9"}}),
                json_response(200, {"name": "batches/nine"}))
    assert call(wire, "create", many, "nine") == "batches/nine"
    assert wire.paths() == ["POST /upload/v1beta/files", "POST /upload/v1beta/files",
                            "POST /v1beta/models/gemini-3-pro-image:batchGenerateContent"]
