"""A batch job's requests, written one at a time as JSONL lines to a private temporary file.

A batch may hold 100,000 rows, each with its prompt and reference images (base64 in the
request). Building the job in memory held every request, then the JSON body, then the JSONL
text: several copies of everything at once. Here each request is encoded and written as it
is added, so memory holds one request at a time; the file is then sent as an inline body
(only when it is small) or uploaded in pieces (gemini_batch.py), and can be read again for a
retry of the create call.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from types import TracebackType

from catalog_images.models import ImageRequest
from catalog_images.providers.gemini import build_request_body

UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads want
# What an image answer takes in the results (a 2K PNG is ~8 MB of base64).
RESULT_BYTES = {"1K": 2 * 1024 * 1024, "2K": 8 * 1024 * 1024, "4K": 32 * 1024 * 1024}


class BatchInput:
    """JSONL lines ``{"key": K, "request": GenerateContentRequest}`` in an anonymous file.

    Use as a context manager (or call ``close``); ``size`` is the file's length in bytes,
    ``result_bytes`` about what the answers will take, ``model`` the first request's model.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0
        self.size = 0
        self.result_bytes = 0
        self.model: str | None = None

    @classmethod
    def of(cls, requests: list[tuple[str, ImageRequest]]) -> BatchInput:
        """A BatchInput holding ``requests`` (key, request), in order."""
        batch = cls()
        try:
            for key, request in requests:
                batch.add(key, request)
        except BaseException:
            batch.close()
            raise
        return batch

    def add(self, key: str, request: ImageRequest, max_size: int | None = None) -> bool:
        """Encode one request and append it; nothing of it stays in memory. False, and
        nothing appended, when the file would then be over ``max_size`` bytes."""
        line = json.dumps({"key": key, "request": build_request_body(request)}).encode()
        if max_size is not None and self.size + bool(self.count) + len(line) > max_size:
            return False
        if self.count:
            self._file.write(b"\n")
            self.size += 1
        self._file.write(line)
        self.size += len(line)
        if self.count == 0:
            self.model = request.model
        self.count += 1
        self.result_bytes += RESULT_BYTES.get(request.resolution, RESULT_BYTES["4K"])
        return True

    def lines(self) -> Iterator[dict]:
        """The lines again, decoded one at a time (for an inline body of a small job)."""
        self._file.flush()
        self._file.seek(0)
        for raw in self._file:
            yield json.loads(raw)

    def inline_body(self, display_name: str) -> bytes:
        """The create call's body with the requests inline (call only for a small job)."""
        requests = [{"request": line["request"], "metadata": {"key": line["key"]}}
                    for line in self.lines()]
        body = {"batch": {"display_name": display_name,
                          "input_config": {"requests": {"requests": requests}}}}
        return json.dumps(body).encode()

    def chunks(self, size: int | None = None) -> Iterator[bytes]:
        """The file in pieces of ``size`` (UPLOAD_CHUNK_BYTES) bytes, from its start."""
        size = size or UPLOAD_CHUNK_BYTES
        self._file.flush()
        self._file.seek(0)
        while piece := self._file.read(size):
            yield piece

    def close(self) -> None:
        """Delete the file."""
        self._file.close()

    def __enter__(self) -> BatchInput:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
