"""S3 metadata values in any script: ASCII on the wire, the exact text back."""

from __future__ import annotations

import pytest

from catalog_images.destination.object_meta import decode_value, encode_value


@pytest.mark.parametrize("text", ["café-mug", "Kaffeetasse-groß", "茶杯-01", "a=?b?=c",
                                  "e\u0301", "🙂 mug", "é" * 504])
def test_any_text_is_stored_as_ascii_and_read_back_exactly(text):
    value = encode_value(text)
    assert value.isascii() and value.isprintable() and value != text
    assert decode_value(value) == text


@pytest.mark.parametrize("text", ["MUG-1", "OK-sku_1.v2", "a b", "x" * 1008])
def test_plain_ascii_is_stored_unchanged(text):
    assert encode_value(text) == text and decode_value(text) == text


def test_the_longest_sku_leaves_room_in_s3s_2_kb_of_metadata():
    longest = "茶" * (1008 // 3)  # as many bytes as a key has room for
    assert len(encode_value(longest)) < 1400


def test_values_s3_encodes_itself_are_decoded_too():
    assert decode_value("=?UTF-8?Q?caf=C3=A9-mug?=") == "café-mug"
    assert decode_value("=?broken") == "=?broken"
