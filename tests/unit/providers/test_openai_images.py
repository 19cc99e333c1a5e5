"""The OpenAI-compatible images client against scripted answers (no server)."""

from __future__ import annotations

import httpx
import pytest

from catalog_images.models import ImageRequest, ReferenceImage
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.openai_images import OpenAIImagesProvider

from .wire import KEY, Wire, b64, config, image_bytes, json_response, run, seen_url

WIDE = ImageRequest("a wide lamp", "2K", "16:9")
CDN_URL = "https://cdn.example.net/out/1.png"


def generate(wire: Wire, request: ImageRequest = WIDE, **overrides):
    async def go():
        fields = {"model": "nano-banana-pro", **overrides}
        provider = OpenAIImagesProvider(config("openai-images", **fields), KEY, 4,
                                        transport=wire.transport)
        try:
            return await provider.generate(request)
        finally:
            await provider.aclose()

    return run(go())


def failure(wire: Wire, request: ImageRequest = WIDE, **overrides) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        generate(wire, request, **overrides)
    return caught.value


def test_b64_json_success_sends_the_relay_body_with_bearer_auth():
    data = image_bytes(32, 18)
    usage = {"total_tokens": 1200}
    wire = Wire(json_response(200, {"created": 1, "data": [{"b64_json": b64(data)}],
                                    "usage": usage}))
    image = generate(wire)
    assert image.data == data and image.usage == usage and image.mime_type == "image/png"
    [request] = wire.requests
    assert request.method == "POST" and request.url == "https://api.test/v1/images/generations"
    # the config's default auth style is x-goog-api-key; this wire format is always Bearer
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "x-goog-api-key" not in request.headers
    assert wire.body() == {"model": "nano-banana-pro", "prompt": "a wide lamp", "n": 1,
                           "size": "16:9", "image_size": "2K", "response_format": "b64_json"}


def test_a_data_url_in_b64_json_is_decoded():
    data = image_bytes(32, 18, "JPEG")
    wire = Wire(json_response(200, {"data": [{"b64_json": f"data:image/jpeg;base64,{b64(data)}"}]}))
    image = generate(wire)
    assert image.data == data and image.mime_type == "image/jpeg" and image.usage == {}


def test_a_url_result_is_downloaded():
    data = image_bytes(32, 18)
    wire = Wire(json_response(200, {"data": [{"url": CDN_URL}]}), httpx.Response(200, content=data))
    image = generate(wire, response_format="url")
    assert image.data == data
    assert wire.body()["response_format"] == "url"
    assert [str(wire.requests[0].url), seen_url(wire.requests[1])] == [
        "https://api.test/v1/images/generations", CDN_URL]
    assert wire.requests[1].method == "GET"


def test_a_url_result_is_downloaded_without_the_api_key():
    wire = Wire(json_response(200, {"data": [{"url": CDN_URL}]}),
                httpx.Response(200, content=image_bytes(32, 18)))
    generate(wire, response_format="url")
    assert "authorization" not in wire.requests[1].headers


def test_a_failed_url_download_is_billed_final_and_retried_on_the_same_url(fast_sleep):
    wire = Wire(json_response(200, {"data": [{"url": CDN_URL}]}), httpx.Response(404))
    error = failure(wire, response_format="url")
    assert error.error_class is ErrorClass.BAD_RESPONSE and "HTTP 404" in error.message
    assert error.billed and not error.retryable  # the image was paid: never generated again
    assert wire.paths() == ["POST /v1/images/generations"] + ["GET /out/1.png"] * 3


@pytest.mark.parametrize(
    ("body", "error_class"),
    [({"data": []}, ErrorClass.NO_IMAGE),
     ({"data": [{"revised_prompt": "x"}]}, ErrorClass.NO_IMAGE),
     ({"data": ["not an object"]}, ErrorClass.NO_IMAGE),
     ({"data": None}, ErrorClass.NO_IMAGE),
     ({"created": 1}, ErrorClass.BAD_RESPONSE),
     ([{"b64_json": "x"}], ErrorClass.BAD_RESPONSE)])
def test_answers_without_an_image(body, error_class):
    error = failure(Wire(json_response(200, body)))
    assert error.error_class is error_class


def test_malformed_json_is_a_retryable_bad_response():
    error = failure(Wire(httpx.Response(200, content=b'{"data": [')))
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.retryable and error.status == 200


def test_undecodable_b64_json_is_retryable():
    error = failure(Wire(json_response(200, {"data": [{"b64_json": "@@@"}]})))
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.retryable


def test_an_intact_image_of_the_wrong_aspect_ratio_is_returned_for_the_run_to_judge():
    wire = Wire(json_response(200, {"data": [{"b64_json": b64(image_bytes(16, 16))}]}))
    image = generate(wire)
    assert (image.width, image.height) == (16, 16)


@pytest.mark.parametrize(
    ("status", "error", "headers", "error_class", "retry_after"),
    [
        (429, {"type": "rate_limit_exceeded", "message": "slow down"}, {"retry-after": "3"},
         ErrorClass.RATE_LIMITED, 3.0),
        (400, {"type": "rate_limit_exceeded", "message": "slow down"}, {},
         ErrorClass.RATE_LIMITED, None),
        (400, {"type": "invalid_request_error", "code": "content_policy_violation",
               "message": "rejected"}, {}, ErrorClass.SAFETY, None),
        (400, {"type": "invalid_request_error", "code": "safety_block"}, {}, ErrorClass.SAFETY,
         None),
        (401, {"type": "invalid_request_error", "code": "invalid_api_key"}, {}, ErrorClass.AUTH,
         None),
        (400, {"type": "invalid_request_error", "code": "invalid_api_key"}, {}, ErrorClass.AUTH,
         None),
        (400, {"type": "invalid_request_error", "message": "bad size"}, {},
         ErrorClass.BAD_REQUEST, None),
        (500, {"type": "server_error", "message": "oops"}, {}, ErrorClass.UNAVAILABLE, None),
        (503, None, {"retry-after": "2"}, ErrorClass.UNAVAILABLE, 2.0),
    ],
)
def test_openai_style_errors_are_classified(status, error, headers, error_class, retry_after):
    body = {"error": error} if error is not None else {"detail": "busy"}
    caught = failure(Wire(json_response(status, body, headers)))
    assert caught.error_class is error_class and caught.status == status
    assert caught.retry_after_s == retry_after
    if error and error.get("message"):
        assert error["message"] in caught.message


def test_a_non_json_error_body_uses_the_reason_phrase():
    caught = failure(Wire(httpx.Response(502, text="<html>gateway</html>")))
    assert caught.error_class is ErrorClass.UNAVAILABLE and caught.message == "Bad Gateway"


def test_reference_images_are_refused_before_anything_is_sent():
    wire = Wire(json_response(200, {}))
    request = ImageRequest("x", "1K", "1:1", (ReferenceImage("image/png", b"\x89PNG"),))
    caught = failure(wire, request)
    assert caught.error_class is ErrorClass.BAD_REQUEST and wire.requests == []
