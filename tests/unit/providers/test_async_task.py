"""The async-task relay client (create, poll, download) against scripted answers."""

from __future__ import annotations

import json

import httpx
import pytest

from catalog_images.models import ImageRequest, ReferenceImage
from catalog_images.providers.async_task import DOWNLOAD_ATTEMPTS, AsyncTaskProvider
from catalog_images.providers.errors import ErrorClass, ProviderError

from .wire import KEY, config, image_bytes, json_response, run, seen_url

REQUEST = ImageRequest("a tall vase", "2K", "3:4")
RESULT_URL = "https://cdn.example.net/r/task-1.png"
FAST = {"poll_initial_s": 0.005, "poll_max_s": 0.01, "task_deadline_s": 5.0}


def created(task_id: str = "task-1") -> httpx.Response:
    return json_response(200, {"code": 200, "msg": "success", "data": {"taskId": task_id}})


def record(state: str, **fields) -> httpx.Response:
    return json_response(200, {"code": 200, "data": {"taskId": "task-1", "state": state,
                                                     **fields}})


def success(urls: list[str] | None = None) -> httpx.Response:
    return record("success", resultJson=json.dumps({"resultUrls": urls or [RESULT_URL]}))


class Relay:
    """Routes each endpoint to its own script (the last answer repeats)."""

    def __init__(self, create=None, polls=(), downloads=()) -> None:
        self.scripts = {"create": [create or created()], "poll": list(polls) or [success()],
                        "download": list(downloads) or [httpx.Response(
                            200, content=image_bytes(24, 32))]}
        self.requests: dict[str, list[httpx.Request]] = {"create": [], "poll": [],
                                                         "download": []}
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/jobs/createTask":
            kind = "create"
        elif request.url.path == "/api/v1/jobs/recordInfo":
            kind = "poll"
        else:
            kind = "download"
        self.requests[kind].append(request)
        script = self.scripts[kind]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def generate(relay: Relay, request: ImageRequest = REQUEST, **overrides):
    async def go():
        provider = AsyncTaskProvider(
            config("async-task", model="nano-banana-pro", **{**FAST, **overrides}), KEY, 4,
            transport=relay.transport)
        try:
            return await provider.generate(request)
        finally:
            await provider.aclose()

    return run(go())


def failure(relay: Relay, request: ImageRequest = REQUEST, **overrides) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        generate(relay, request, **overrides)
    return caught.value


def test_create_poll_through_every_state_and_download():
    relay = Relay(polls=[record("waiting"), record("queuing"), record("generating"), success()])
    image = generate(relay)
    assert (image.width, image.height) == (24, 32) and image.mime_type == "image/png"
    [create] = relay.requests["create"]
    assert create.method == "POST" and create.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(create.content) == {
        "model": "nano-banana-pro",
        "input": {"prompt": "a tall vase", "aspect_ratio": "3:4", "resolution": "2K",
                  "output_format": "png"}}
    polls = relay.requests["poll"]
    assert len(polls) == 4
    assert all(p.method == "GET" and p.url.params["taskId"] == "task-1" for p in polls)
    assert [seen_url(r) for r in relay.requests["download"]] == [RESULT_URL]


def test_the_result_is_downloaded_without_the_api_key():
    relay = Relay()
    generate(relay)
    assert "authorization" not in relay.requests["download"][0].headers
    assert KEY not in str(relay.requests["download"][0].headers.raw)


@pytest.mark.parametrize(
    ("body", "error_class"),
    [({"code": 429, "msg": "too many requests"}, ErrorClass.RATE_LIMITED),
     ({"code": 500, "msg": "server busy"}, ErrorClass.UNAVAILABLE),
     ({"code": 422, "msg": "invalid aspect_ratio"}, ErrorClass.BAD_REQUEST),
     ({"code": 401, "msg": "unauthorized"}, ErrorClass.AUTH),
     ({"code": 402, "msg": "insufficient credits"}, ErrorClass.SPEND_CAP),
     ({"msg": "no code at all"}, ErrorClass.UNAVAILABLE)])
def test_create_errors_answered_as_http_200_are_classified_by_the_body_code(body, error_class):
    relay = Relay(create=json_response(200, body))
    error = failure(relay)
    assert error.error_class is error_class and error.status == int(body.get("code", 500))
    assert "createTask" in error.message and relay.requests["poll"] == []


@pytest.mark.parametrize(
    ("response", "error_class"),
    [(json_response(503, {}), ErrorClass.UNAVAILABLE),
     (json_response(401, {}), ErrorClass.AUTH),
     (httpx.Response(200, content=b"<html>"), ErrorClass.BAD_RESPONSE),
     (json_response(200, [1, 2]), ErrorClass.BAD_RESPONSE),
     (json_response(200, {"code": 200, "data": {}}), ErrorClass.BAD_RESPONSE),
     (json_response(200, {"code": 200}), ErrorClass.BAD_RESPONSE)])
def test_create_transport_level_failures(response, error_class):
    relay = Relay(create=response)
    assert failure(relay).error_class is error_class
    assert relay.requests["poll"] == []


@pytest.mark.parametrize(
    ("fail_code", "fail_msg", "error_class"),
    [("400", "Your prompt violates the content policy", ErrorClass.SAFETY),
     ("", "flagged as NSFW", ErrorClass.SAFETY),
     ("501", "internal generation error", ErrorClass.UNAVAILABLE),
     ("500", "no image generated", ErrorClass.NO_IMAGE),
     ("400", "could not generate", ErrorClass.NO_IMAGE),
     (None, None, ErrorClass.NO_IMAGE)])
def test_a_failed_task_is_classified_from_its_fail_code_and_message(
        fail_code, fail_msg, error_class):
    relay = Relay(polls=[record("generating"), record("fail", failCode=fail_code,
                                                      failMsg=fail_msg)])
    error = failure(relay)
    assert error.error_class is error_class and "task failed" in error.message
    assert len(relay.requests["create"]) == 1 and relay.requests["download"] == []


@pytest.mark.parametrize("result_json", [None, "{}", json.dumps({"resultUrls": []})])
def test_a_success_without_a_url_is_billed_and_final(result_json):
    relay = Relay(polls=[record("success", resultJson=result_json)])
    error = failure(relay)
    assert error.error_class is ErrorClass.NO_IMAGE and error.billed and not error.retryable


@pytest.mark.parametrize(
    "result_json", ["{not json", 42, "[" * 200 + "]" * 200, json.dumps({"resultUrls": "x"})])
def test_a_malformed_result_json_is_a_billed_provider_error(result_json):
    relay = Relay(polls=[record("success", resultJson=result_json)])
    error = failure(relay)
    assert error.billed and not error.retryable and relay.requests["download"] == []


def test_transient_poll_errors_are_retried_on_the_same_task():
    relay = Relay(polls=[
        json_response(503, {}), httpx.ConnectError("reset"), httpx.Response(200, content=b"{"),
        json_response(200, {"code": 500, "msg": "busy"}), success()])
    image = generate(relay)
    assert image.width == 24
    assert len(relay.requests["create"]) == 1 and len(relay.requests["poll"]) == 5


@pytest.mark.parametrize(
    "poll", [json_response(401, {}), json_response(200, {"code": 422, "msg": "bad task"})])
def test_a_final_poll_error_ends_the_wait(poll):
    relay = Relay(polls=[poll, success()])
    error = failure(relay)
    assert not error.retryable and len(relay.requests["poll"]) == 1


def test_an_unfinished_task_ends_at_its_deadline_and_is_never_created_again():
    relay = Relay(polls=[record("generating")])
    error = failure(relay, task_deadline_s=0.05)
    assert error.error_class is ErrorClass.TASK_DEADLINE and not error.retryable
    assert "task-1" in error.message and "generating" in error.message
    assert len(relay.requests["create"]) == 1 and len(relay.requests["poll"]) >= 2


def test_poll_delays_back_off_up_to_the_maximum(fast_sleep):
    relay = Relay(polls=[record("generating")] * 8 + [success()])
    generate(relay, poll_initial_s=1.0, poll_max_s=3.0, task_deadline_s=600.0)
    polls = fast_sleep
    assert len(polls) == 9  # one wait before each poll, none around the download
    assert polls[0] == 1.0 and 1.5 * 0.9 <= polls[1] <= 1.5 * 1.1
    assert max(polls) <= 3.0 * 1.1 and polls[-1] >= 3.0 * 0.9


def test_a_failed_download_is_retried_on_the_same_url(fast_sleep):
    relay = Relay(downloads=[httpx.Response(500), httpx.ReadTimeout("slow"),
                             httpx.Response(200, content=image_bytes(24, 32))])
    image = generate(relay)
    assert image.height == 32
    assert [seen_url(r) for r in relay.requests["download"]] == [RESULT_URL] * 3
    assert len(relay.requests["create"]) == 1


@pytest.mark.parametrize(
    "download", [httpx.Response(404), httpx.Response(200, content=b"not an image"),
                 httpx.Response(200, content=image_bytes(24, 32)[:-30])])
def test_a_result_that_never_downloads_is_billed_and_final(fast_sleep, download):
    relay = Relay(downloads=[download])
    error = failure(relay)
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.billed
    assert not error.retryable and "task-1" in error.message
    assert len(relay.requests["download"]) == DOWNLOAD_ATTEMPTS
    assert len(relay.requests["create"]) == 1


def test_a_downloaded_image_of_the_wrong_shape_is_returned_for_the_run_to_judge():
    relay = Relay(downloads=[httpx.Response(200, content=image_bytes(32, 18))])
    image = generate(relay)
    assert (image.width, image.height) == (32, 18)
    assert len(relay.requests["create"]) == 1


def test_reference_images_are_refused_before_a_task_is_created():
    relay = Relay()
    request = ImageRequest("x", "1K", "1:1", (ReferenceImage("image/png", b"\x89PNG"),))
    assert failure(relay, request).error_class is ErrorClass.BAD_REQUEST
    assert relay.requests["create"] == []


def test_a_result_that_is_a_png_bomb_is_refused_at_once_and_billed(fast_sleep):
    from .hostile import png_bomb

    relay = Relay(downloads=[httpx.Response(200, content=png_bomb())])
    error = failure(relay)
    assert error.error_class is ErrorClass.REFUSED and error.billed
    assert len(relay.requests["download"]) == 1
