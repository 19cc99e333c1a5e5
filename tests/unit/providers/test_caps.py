"""Caps on every answer: bytes after decompression, JSON depth, pixels, whole-answer time.

Each hostile answer must end as a ProviderError of a known class, never as another
exception, and must stop being read at the cap (the streams count what was taken).
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from catalog_images.models import ImageRequest
from catalog_images.providers.caps import MAX_JSON_DEPTH, json_depth_exceeds, parse_json
from catalog_images.providers.errors import PROVIDER_FAULTS, ErrorClass, ProviderError

from .hostile import endless, gzip_bomb, png_bomb, streamed
from .test_gemini import answer, failure, generate, image_part
from .wire import Wire, b64, image_bytes, json_response

CAP = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [(b'{"a": [1, {"b": []}]}', False),
     (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
     (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
     (b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000, True),
     (json.dumps({"s": "[[[[{{{{" * 1000}).encode(), False),  # brackets inside a string
     (json.dumps({"s": 'a\\"[[[[' * 100, "t": "\\\\"}).encode(), False),  # escapes
     (b"[" * 100_000, False)])  # unbalanced: the parser refuses it
def test_json_depth_is_judged_from_the_structure_only(text, too_deep):
    assert json_depth_exceeds(text) is too_deep


@pytest.mark.parametrize(
    ("text", "error_class"),
    [(b"[" * 100_000 + b"]" * 100_000, ErrorClass.REFUSED),
     (b"[" * 100_000, ErrorClass.BAD_RESPONSE),
     (b"{not json", ErrorClass.BAD_RESPONSE),
     (b"\xff\xfe", ErrorClass.BAD_RESPONSE)])
def test_parse_json_raises_only_provider_errors(text, error_class):
    with pytest.raises(ProviderError) as caught:
        parse_json(text, "answer")
    assert caught.value.error_class is error_class


def test_a_deep_json_answer_is_refused_not_a_recursion_error():
    deep = b'{"candidates":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    error = failure(Wire(httpx.Response(200, content=deep)))
    assert error.error_class is ErrorClass.REFUSED and not error.retryable
    assert error.error_class in PROVIDER_FAULTS  # counts against the provider's health


def test_a_declared_oversized_answer_is_refused_before_it_is_read():
    response, stream = streamed(endless(), {"content-length": str(10 * CAP)})
    error = failure(Wire(response), max_response_bytes=CAP)
    assert error.error_class is ErrorClass.REFUSED and "over the cap" in error.message
    assert stream.sent == 0


def test_an_endless_answer_is_read_only_up_to_the_cap():
    response, stream = streamed(endless())
    error = failure(Wire(response), max_response_bytes=CAP)
    assert error.error_class is ErrorClass.REFUSED and not error.retryable
    assert stream.sent <= CAP // 65536 + 1


def test_a_gzip_bomb_stops_at_the_cap_once_decompressed():
    chunks = gzip_bomb(64 * 1024 * 1024)
    response, stream = streamed(chunks, {"content-encoding": "gzip"})
    error = failure(Wire(response), max_response_bytes=CAP)
    assert error.error_class is ErrorClass.REFUSED and "decompressed" in error.message
    assert stream.sent < len(chunks) // 4


def test_a_gzipped_answer_within_the_cap_is_decoded():
    body = json.dumps(answer([image_part(image_bytes(16, 16))])).encode()
    response, _ = streamed([gzip.compress(body)], {"content-encoding": "gzip"})
    image = generate(Wire(response))
    assert image.width == 16


@pytest.mark.parametrize(
    ("encoding", "body", "error_class"),
    [("br", b"\x0b\x02\x80{}\x03", ErrorClass.REFUSED),
     ("gzip, gzip", b"x", ErrorClass.REFUSED),
     ("gzip", b"not gzip at all", ErrorClass.BAD_RESPONSE)])
def test_unusable_encodings_are_provider_errors(encoding, body, error_class):
    response, _ = streamed([body], {"content-encoding": encoding})
    assert failure(Wire(response)).error_class is error_class


def test_a_slow_drip_answer_ends_at_the_whole_answer_deadline():
    response, stream = streamed(endless(b"{", 1000), delay_s=0.05)
    error = failure(Wire(response), timeout_s=0.2, connect_timeout_s=0.1)
    assert error.error_class is ErrorClass.TIMEOUT and stream.sent < 20


@pytest.mark.parametrize(("side", "shown"), [(9000, "9000x9000"), (40_000, "bomb")])
def test_a_png_decompression_bomb_is_refused_from_its_header_and_billed(side, shown):
    error = failure(Wire(json_response(200, answer([image_part(png_bomb(side, side))]))))
    assert error.error_class is ErrorClass.REFUSED and shown in error.message
    assert error.billed and not error.retryable


@pytest.mark.parametrize(("resolution", "side", "refused"),
                         [("1K", 1024, False), ("1K", 2048, False), ("1K", 3000, True),
                          ("4K", 4096, False)])
def test_pixels_are_capped_by_the_asked_resolution(resolution, side, refused):
    data = png_bomb(side, side)
    request = ImageRequest("a mug", resolution, "1:1")
    wire = Wire(json_response(200, answer([{"inlineData": {"mimeType": "image/png",
                                                           "data": b64(data)}}])))
    if refused:
        assert failure(wire, request).error_class is ErrorClass.REFUSED
    else:
        assert generate(wire, request).width == side


@pytest.mark.parametrize(
    "body",
    [{"candidates": {"0": 1}}, {"candidates": [{"content": "text"}]},
     {"candidates": [{"content": {"parts": {"a": 1}}}]}, {"candidates": ["x"]},
     {"promptFeedback": "blocked"}, {"candidates": [], "promptFeedback": {"blockReason": [1]}},
     {"candidates": [{"content": {"parts": [{"inlineData": "x"}, 5, None]}}]},
     {"candidates": [{"content": {"parts": [{"inlineData": {"data": 12}}]}}]},
     {"candidates": [{"content": {"parts": [{"inlineData": {"data": "@@"}}]}}]},
     {"usageMetadata": [1], "candidates": [{"finishReason": {"x": 1}}]}, "string", 5, None])
def test_malformed_generate_content_answers_are_provider_errors(body):
    error = failure(Wire(json_response(200, body)))
    assert error.error_class in set(ErrorClass)


@pytest.mark.parametrize("status", [400, 429, 503])
def test_deep_or_huge_error_bodies_are_classified_by_status(status):
    deep = b'{"error":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    error = failure(Wire(httpx.Response(status, content=deep)))
    assert error.status == status
