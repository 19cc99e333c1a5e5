"""The streamed JSON reader: long strings decoded from base64 as they arrive, cut anywhere."""

from __future__ import annotations

import asyncio
import base64
import json
import random

import httpx
import pytest

from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.inline_json import (
    Base64Sink,
    Blob,
    InlineJsonReader,
    read_inline_json,
)
from tests.unit.providers.hostile import streamed

SMALL = 64  # strings longer than this are read as base64 in these tests
DATA = bytes(random.Random(7).randbytes(3000))
B64 = base64.b64encode(DATA).decode()


def read(body: bytes, cuts: list[int] | None = None, blob_min: int = SMALL) -> object:
    """``body`` fed in pieces ending at ``cuts`` (every byte alone when None)."""
    reader = InlineJsonReader("answer", blob_min)
    edges = [0, *(cuts if cuts is not None else range(1, len(body))), len(body)]
    for start, end in zip(edges, edges[1:], strict=False):
        reader.feed(body[start:end])
    return reader.parse()


def answer(data: str, text: str = "a short caption") -> bytes:
    return json.dumps({"parts": [{"text": text}, {"inlineData": {"mimeType": "image/png",
                                                                  "data": data}}]}).encode()


def image_of(payload: object) -> Blob:
    blob = payload["parts"][1]["inlineData"]["data"]
    assert isinstance(blob, Blob)
    return blob


@pytest.mark.parametrize("cuts", [None, [1], [37, 38, 39], list(range(5, 4200, 997))])
def test_base64_split_across_any_boundary_decodes_to_the_same_bytes(cuts):
    payload = read(answer(B64), cuts)
    assert image_of(payload).data() == DATA
    assert payload["parts"][0]["text"] == "a short caption"  # short strings are kept as is


def test_random_cuts_of_a_large_answer():
    rng = random.Random(3)
    body = answer(B64)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 60)))
        assert image_of(read(body, cuts)).data() == DATA


def test_json_escapes_in_the_base64_are_resolved_even_when_cut():
    escaped = B64.replace("/", "\\/").replace("A", "\\u0041")  # both legal JSON for the same
    body = answer(escaped).replace(b"\\\\", b"\\")  # json.dumps escaped our backslashes
    assert image_of(read(body)).data() == DATA
    assert image_of(read(body, [40, 41, 42, 43, 44, 45])).data() == DATA


def test_whitespace_in_the_base64_is_skipped_as_in_mime_base64():
    wrapped = "\r\n".join(B64[i:i + 76] for i in range(0, len(B64), 76))
    assert image_of(read(answer(wrapped), list(range(7, 4000, 61)))).data() == DATA


def test_a_data_uri_prefix_is_dropped_even_when_cut():
    uri = f"  data:image/png;base64,{B64}"
    blob = image_of(read(answer(uri), [3, 9, 14, 26]))
    assert blob.data() == DATA
    assert blob.strip().startswith("data:image/png")  # text checks see its first characters


@pytest.mark.parametrize("bad", [B64[:-1], B64[:100] + "!" + B64[101:], B64 + "=" + "AAAA",
                                 B64[:8] + "==" + B64[10:], "data:" + "x" * 2000, "é" * 200])
def test_strings_that_are_not_base64_raise_only_when_their_bytes_are_asked(bad):
    payload = read(answer(bad), list(range(11, 5000, 300)))
    with pytest.raises(ProviderError) as caught:
        image_of(payload).data()
    assert caught.value.error_class is ErrorClass.BAD_RESPONSE


@pytest.mark.parametrize("body", [answer(B64)[:-30], answer(B64)[:2000], b'{"a": "\\',
                                  b'{"a": "' + b"A" * 200 + b'\\q"}', b'{"a": "\\u12"}'])
def test_truncated_or_malformed_answers_are_retryable_invalid_json(body):
    with pytest.raises(ProviderError) as caught:
        read(body, list(range(3, len(body), 50)))
    assert caught.value.error_class is ErrorClass.BAD_RESPONSE and caught.value.retryable


def test_a_forged_token_in_the_answer_is_just_text():
    body = json.dumps({"a": "\u0000blob:0", "b": B64}).encode()
    payload = read(body, [100])
    assert payload["a"] == "\u0000blob:0" and not isinstance(payload["a"], Blob)
    assert isinstance(payload["b"], Blob)


def test_blobs_inside_lists_and_a_top_level_string():
    assert read(json.dumps([[B64]]).encode(), [50])[0][0].data() == DATA
    assert read(json.dumps(B64).encode(), [50]).data() == DATA


def test_the_sink_holds_the_decoded_bytes_only():
    sink = Base64Sink()
    for start in range(0, len(B64), 5):
        sink.feed(B64[start:start + 5].encode())
    assert len(sink._pending) < 4 + 5 and sink.finish() == DATA


def run(coro):
    return asyncio.run(coro)


def test_an_oversized_answer_is_refused_at_the_cap_while_streaming():
    body = answer(B64 * 20)
    response, stream = streamed([body[i:i + 1000] for i in range(0, len(body), 1000)])
    with pytest.raises(ProviderError) as caught:
        run(read_inline_json(response, 10_000, "answer", SMALL))
    assert caught.value.error_class is ErrorClass.REFUSED
    assert stream.sent <= 11  # stopped at the cap, not at the end


def test_a_declared_oversized_answer_is_refused_before_reading():
    response, stream = streamed([b"{}"], headers={"content-length": "999999"})
    with pytest.raises(ProviderError):
        run(read_inline_json(response, 1000, "answer"))
    assert stream.sent == 0


def test_a_gzipped_streamed_answer_is_inflated_then_decoded():
    import gzip

    body = gzip.compress(answer(B64))
    response, _ = streamed([body[i:i + 333] for i in range(0, len(body), 333)],
                           headers={"content-encoding": "gzip"})
    assert image_of(run(read_inline_json(response, 10**6, "answer", SMALL))).data() == DATA


def test_an_in_memory_answer_is_read_too():
    response = httpx.Response(200, content=answer(B64))
    response.read()
    assert image_of(run(read_inline_json(response, 10**6, "answer", SMALL))).data() == DATA


def test_a_short_answer_is_parsed_whole_with_the_same_result_and_caps():
    body = answer(B64)  # about 4 KB: shorter than the default long-string length
    response, _ = streamed([body[i:i + 700] for i in range(0, len(body), 700)])
    payload = run(read_inline_json(response, 10**6, "answer"))
    assert payload == json.loads(body)
    assert not isinstance(payload["parts"][1]["inlineData"]["data"], Blob)
    deep = b"[" * 200 + b"]" * 200
    response, _ = streamed([deep])
    with pytest.raises(ProviderError, match="nested deeper"):
        run(read_inline_json(response, 10**6, "answer"))
    response, _ = streamed([b'{"candidates": ['])
    with pytest.raises(ProviderError, match="invalid JSON"):
        run(read_inline_json(response, 10**6, "answer"))
