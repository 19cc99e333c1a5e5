"""A batch job's input is written one request at a time: memory never holds the batch."""

from __future__ import annotations

import json
import os
import tracemalloc

from catalog_images.models import ImageRequest, ReferenceImage
from catalog_images.providers.batch_input import BatchInput
from catalog_images.providers.gemini import build_request_body

MIB = 1024 * 1024


def _request(i: int, reference_bytes: int = 0) -> ImageRequest:
    refs = (ReferenceImage("image/png", os.urandom(reference_bytes)),) if reference_bytes else ()
    return ImageRequest(f"a lamp number {i}", "2K" if i % 2 else "1K", "1:1", refs, "m-1")


def test_lines_and_inline_body_hold_every_request_in_order_by_key():
    requests = [(f"sku-{i}", _request(i)) for i in range(3)]
    with BatchInput.of(requests) as batch:
        assert batch.count == 3 and batch.model == "m-1"
        assert batch.result_bytes == 2 * MIB + 8 * MIB + 2 * MIB
        assert list(batch.lines()) == [
            {"key": key, "request": build_request_body(req)} for key, req in requests]
        assert batch.size == len(b"".join(batch.chunks()))
        assert b"".join(batch.chunks(7)).count(b"\n") == 2  # no trailing newline
        body = json.loads(batch.inline_body("job"))
        assert body["batch"]["input_config"]["requests"]["requests"] == [
            {"request": build_request_body(req), "metadata": {"key": key}}
            for key, req in requests]


def test_a_big_batch_is_on_disk_not_in_memory():
    """60 requests with a 1 MiB reference image each (80 MB of JSONL): the peak of what
    Python allocates while they are written stays that of a few requests."""
    tracemalloc.start()
    try:
        with BatchInput() as batch:
            for i in range(60):
                batch.add(f"sku-{i}", _request(i, reference_bytes=MIB))
            _, peak = tracemalloc.get_traced_memory()
            assert batch.size > 60 * MIB
            assert peak < 12 * MIB, f"peak {peak / MIB:.1f} MiB"
            pieces = 0
            tracemalloc.reset_peak()
            for piece in batch.chunks():
                pieces += len(piece)
            assert pieces == batch.size
            assert tracemalloc.get_traced_memory()[1] < 20 * MIB
    finally:
        tracemalloc.stop()
