"""The Gemini native client against scripted answers (httpx.MockTransport, no server)."""

from __future__ import annotations

import httpx
import pytest

from catalog_images.models import ImageRequest, ReferenceImage
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import GeminiProvider
from catalog_images.secrets import register_secret

from .wire import KEY, Wire, b64, config, image_bytes, json_response, run

SQUARE = ImageRequest("a red mug", "1K", "1:1")


def answer(parts: list[dict], finish: str = "STOP", **extra) -> dict:
    """A generateContent 200 body with one candidate."""
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": finish}], **extra}


def image_part(data: bytes, mime: str = "image/png", **extra) -> dict:
    return {"inlineData": {"mimeType": mime, "data": b64(data)}, **extra}


def generate(wire: Wire, request: ImageRequest = SQUARE, **overrides):
    async def go():
        provider = GeminiProvider(config(**overrides), KEY, 4, transport=wire.transport)
        try:
            return await provider.generate(request)
        finally:
            await provider.aclose()

    return run(go())


def failure(wire: Wire, request: ImageRequest = SQUARE, **overrides) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        generate(wire, request, **overrides)
    return caught.value


def test_success_sends_the_documented_request_and_returns_the_final_image():
    final, draft = image_bytes(16, 16), image_bytes(8, 8)
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 1120}
    body = answer(
        [{"text": "Here it is"}, image_part(draft, thought=True),
         image_part(final, thoughtSignature="sig")],
        usageMetadata=usage, modelVersion="gemini-3-pro-image-preview", responseId="r-1")
    wire = Wire(json_response(200, body))
    reference = ReferenceImage("image/jpeg", b"\xff\xd8\xffref")
    image = generate(wire, ImageRequest("a red mug", "2K", "1:1", (reference,)))

    assert image.data == final and (image.width, image.height) == (16, 16)
    assert image.mime_type == "image/png" and image.usage == usage
    assert (image.model_version, image.response_id) == ("gemini-3-pro-image-preview", "r-1")
    [request] = wire.requests
    assert request.method == "POST"
    assert request.url == "https://api.test/v1beta/models/gemini-3-pro-image:generateContent"
    assert request.headers["x-goog-api-key"] == KEY and "authorization" not in request.headers
    sent = wire.body()
    assert sent["contents"][0]["parts"] == [
        {"text": "a red mug"},
        {"inlineData": {"mimeType": "image/jpeg", "data": b64(b"\xff\xd8\xffref")}}]
    assert sent["generationConfig"] == {
        "responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1", "imageSize": "2K"}}


def test_the_image_need_not_be_the_first_part_and_snake_case_is_accepted():
    data = image_bytes(32, 18)
    wire = Wire(json_response(200, answer(
        [{"text": "thinking"}, {"inline_data": {"mime_type": "image/png", "data": b64(data)}}])))
    image = generate(wire, ImageRequest("wide", "1K", "16:9"))
    assert image.data == data and (image.width, image.height) == (32, 18)


def test_a_thought_draft_after_the_image_is_not_taken_for_it():
    final, draft = image_bytes(16, 16), image_bytes(8, 8)
    wire = Wire(json_response(200, answer([image_part(final), image_part(draft, thought=True)])))
    assert generate(wire).data == final


def test_a_thought_image_is_used_when_it_is_the_only_image():
    data = image_bytes()
    wire = Wire(json_response(200, answer([image_part(data, thought=True)])))
    assert generate(wire).data == data


def test_a_relay_data_url_text_part_is_an_image():
    data = image_bytes()
    wire = Wire(json_response(200, answer([{"text": f"  data:image/png;base64,{b64(data)} "}])))
    assert generate(wire).data == data


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_the_mime_type_is_sniffed_from_the_bytes_not_taken_from_the_answer(fmt, mime):
    data = image_bytes(fmt=fmt)
    wire = Wire(json_response(200, answer([image_part(data, mime="image/png")])))
    image = generate(wire)
    assert image.mime_type == mime and image.data == data


def test_a_non_image_inline_part_is_not_taken_for_the_image():
    wire = Wire(json_response(200, answer([image_part(b"%PDF-1.4", mime="application/pdf")])))
    error = failure(wire)
    assert error.error_class is ErrorClass.NO_IMAGE and not error.retryable


@pytest.mark.parametrize(
    ("details", "message", "headers", "delay"),
    [
        ([{"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}],
         "Resource has been exhausted", {}, 26.0),
        ([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.5s"}],
         "quota", {"retry-after": "9"}, 0.5),  # the body's hint wins over a header
        ([], "Quota exceeded. Please retry in 1500ms.", {}, 1.5),
        ([], "Resource has been exhausted", {"retry-after": "7"}, 7.0),
        ([], "Resource has been exhausted", {}, None),
    ],
)
def test_429_is_retryable_and_keeps_the_server_hint(details, message, headers, delay):
    body = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED",
                      "details": details}}
    error = failure(Wire(json_response(429, body, headers)))
    assert error.error_class is ErrorClass.RATE_LIMITED and error.retryable
    assert error.status == 429 and error.retry_after_s == (
        pytest.approx(delay) if delay is not None else None)
    assert "RESOURCE_EXHAUSTED" in error.message


@pytest.mark.parametrize(
    ("status", "body", "error_class", "retryable"),
    [
        (500, {"error": {"code": 500, "status": "INTERNAL", "message": "oops"}},
         ErrorClass.UNAVAILABLE, True),
        (503, {"error": {"code": 503, "status": "UNAVAILABLE",
                         "message": "The model is overloaded. Please try again later."}},
         ErrorClass.UNAVAILABLE, True),
        (504, {"error": {"code": 504, "status": "DEADLINE_EXCEEDED"}}, ErrorClass.UNAVAILABLE,
         True),
        (408, None, ErrorClass.TIMEOUT, True),
        (400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                         "message": "Unsupported aspect ratio"}}, ErrorClass.BAD_REQUEST, False),
        (400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad key",
                         "details": [{"reason": "API_KEY_INVALID"}]}}, ErrorClass.AUTH, False),
        (403, {"error": {"code": 403, "status": "PERMISSION_DENIED"}}, ErrorClass.AUTH, False),
        (404, {"error": {"code": 404, "status": "NOT_FOUND"}}, ErrorClass.NOT_FOUND, False),
    ],
)
def test_error_statuses_are_classified(status, body, error_class, retryable):
    response = json_response(status, body) if body else json_response(status, {})
    error = failure(Wire(response))
    assert error.error_class is error_class and error.retryable is retryable
    assert error.status == status
    if body:
        assert body["error"]["status"] in error.message


def test_an_html_error_page_is_classified_by_its_status_with_the_reason_phrase():
    error = failure(Wire(httpx.Response(502, text="<html>Bad gateway</html>")))
    assert error.error_class is ErrorClass.UNAVAILABLE and error.message == "Bad Gateway"


def test_an_error_echoing_the_key_never_shows_it():
    register_secret(KEY)
    body = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": f"key {KEY} bad"}}
    error = failure(Wire(json_response(400, body)))
    assert KEY not in str(error) and "***" in error.message


@pytest.mark.parametrize(
    "finish", ["IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY", "PROHIBITED_CONTENT",
               "IMAGE_RECITATION", "RECITATION", "SPII", "BLOCKLIST"])
def test_safety_finish_reasons_without_an_image_are_final_safety_errors(finish):
    error = failure(Wire(json_response(200, answer([], finish))))
    assert error.error_class is ErrorClass.SAFETY and not error.retryable
    assert finish in error.message


@pytest.mark.parametrize(
    ("parts", "finish"),
    [([{"text": "I cannot draw that"}], "STOP"), ([], "NO_IMAGE"), ([], "IMAGE_OTHER"),
     ([], "OTHER"), ([{"text": "partial"}], "MAX_TOKENS"), ([{"text": "x"}], None)])
def test_answers_without_an_image_are_final_no_image_errors(parts, finish):
    body = answer(parts, finish) if finish else {"candidates": [{"content": {"parts": parts}}]}
    error = failure(Wire(json_response(200, body)))
    assert error.error_class is ErrorClass.NO_IMAGE and not error.retryable
    assert (finish or "STOP") in error.message


def test_an_empty_max_tokens_answer_is_retryable():
    error = failure(Wire(json_response(200, answer([], "MAX_TOKENS"))))
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.retryable


def test_a_safety_finish_reason_with_an_image_still_delivers_it():
    data = image_bytes()
    assert generate(Wire(json_response(200, answer([image_part(data)], "SAFETY")))).data == data


def test_a_blocked_prompt_is_a_final_blocked_error():
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}
    error = failure(Wire(json_response(200, body)))
    assert error.error_class is ErrorClass.BLOCKED and not error.retryable
    assert "PROHIBITED_CONTENT" in error.message


@pytest.mark.parametrize("body", [{}, {"candidates": []}, {"candidates": None}])
def test_empty_candidates_without_a_block_reason_are_retryable(body):
    error = failure(Wire(json_response(200, body)))
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.retryable


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"'])
def test_malformed_json_is_a_retryable_bad_response(content):
    error = failure(Wire(httpx.Response(200, content=content)))
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.retryable


@pytest.mark.parametrize(
    "data", ["!!!not base64!!!", b64(b"just some text, not an image"),
             b64(image_bytes()[:-20])])  # truncated: the IEND chunk is gone
def test_undecodable_or_truncated_image_data_is_retryable(data):
    body = answer([{"inlineData": {"mimeType": "image/png", "data": data}}])
    error = failure(Wire(json_response(200, body)))
    assert error.error_class is ErrorClass.BAD_RESPONSE and error.retryable


def test_an_intact_image_of_the_wrong_aspect_ratio_is_returned_for_the_run_to_judge():
    wire = Wire(json_response(200, answer([image_part(image_bytes(16, 16))])))
    image = generate(wire, ImageRequest("wide", "1K", "16:9"))
    assert (image.width, image.height) == (16, 16)  # paid for: the run's wrong_shape policy


@pytest.mark.parametrize(
    ("auth", "key", "expected"),
    [("x-goog-api-key", KEY, {"x-goog-api-key": KEY}),
     ("bearer", KEY, {"authorization": f"Bearer {KEY}"}),
     ("none", KEY, {}), ("x-goog-api-key", None, {})])
def test_auth_header_follows_the_configured_style(auth, key, expected):
    wire = Wire(json_response(200, answer([image_part(image_bytes())])))

    async def go():
        provider = GeminiProvider(config(auth=auth), key, 1, transport=wire.transport)
        await provider.generate(SQUARE)
        await provider.aclose()

    run(go())
    headers = wire.requests[0].headers
    sent = {name: headers[name] for name in ("x-goog-api-key", "authorization") if name in headers}
    assert sent == expected
    assert headers["content-type"] == "application/json"


def test_an_answer_without_an_image_carries_its_usage_for_the_bill():
    spent = {"promptTokenCount": 30, "candidatesTokenCount": 0, "thoughtsTokenCount": 250}
    safety = failure(Wire(json_response(200, {
        "candidates": [{"finishReason": "IMAGE_SAFETY"}], "usageMetadata": spent})))
    assert safety.error_class is ErrorClass.SAFETY and safety.usage == spent
    blocked = failure(Wire(json_response(200, {
        "promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": spent})))
    assert blocked.error_class is ErrorClass.BLOCKED and blocked.usage == spent


def test_a_row_model_goes_in_the_url_under_the_providers_name_for_it():
    wire = Wire(json_response(200, answer([image_part(image_bytes())])))
    flash = ImageRequest("a red mug", "1K", "1:1", model="gemini-3.1-flash-image")
    generate(wire, flash, model_names={"gemini-3.1-flash-image": "nb2"})
    generate(wire, SQUARE)
    assert wire.paths() == ["POST /v1beta/models/nb2:generateContent",
                            "POST /v1beta/models/gemini-3-pro-image:generateContent"]
