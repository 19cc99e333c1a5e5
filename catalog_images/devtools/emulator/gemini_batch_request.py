"""Parse a ``batchGenerateContent`` body: inline requests or a JSONL input file."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .gemini_request import GenerateRequest, InvalidRequest, parse_generate_body


class InvalidBatch(ValueError):
    """The batch itself is unacceptable (answered with 400 at creation)."""


@dataclass(frozen=True)
class BatchEntry:
    """One request of a batch: parsed, or the reason it will get an error result."""

    key: str | None = None
    metadata: Any = None
    request: GenerateRequest | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchSpec:
    """What to run: display name, entries, and the input file name for file input."""

    display_name: str
    entries: tuple[BatchEntry, ...]
    input_file: str | None = None


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def _entry(request: Any, key: str | None, metadata: Any, where: str) -> BatchEntry:
    if not isinstance(request, dict):
        raise InvalidBatch(f"{where}: 'request' must be a GenerateContentRequest object")
    try:
        return BatchEntry(key, metadata, parse_generate_body(request))
    except InvalidRequest as exc:
        return BatchEntry(key, metadata, error=str(exc))


def _inline(requests: Any) -> tuple[BatchEntry, ...]:
    items = requests.get("requests") if isinstance(requests, dict) else requests
    if not isinstance(items, list) or not items:
        raise InvalidBatch("input_config.requests.requests must be a non-empty list")
    entries = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidBatch(f"requests[{i}] must be an object")
        metadata = item.get("metadata")
        key = metadata.get("key") if isinstance(metadata, dict) else None
        entries.append(_entry(item.get("request"), key, metadata, f"requests[{i}]"))
    return tuple(entries)


def parse_jsonl(data: bytes) -> tuple[BatchEntry, ...]:
    """Entries of an input file: lines ``{"key": K, "request": GenerateContentRequest}``."""
    entries = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidBatch(f"input file line {number} is not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise InvalidBatch(f"input file line {number} must be a JSON object")
        key = item.get("key")
        key = None if key is None else str(key)
        entries.append(_entry(item.get("request"), key, None, f"input file line {number}"))
    if not entries:
        raise InvalidBatch("the input file holds no requests")
    return tuple(entries)


def parse_batch_body(raw: bytes, load_file: Callable[[str], bytes | None]) -> BatchSpec:
    """Validate the create body; ``load_file("files/ID")`` returns an uploaded file or None."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBatch(f"Invalid JSON payload received. {exc.msg}.") from None
    if not isinstance(body, dict):
        raise InvalidBatch("Invalid JSON payload received. Expected an object.")
    batch = body.get("batch", body)
    if not isinstance(batch, dict):
        raise InvalidBatch("'batch' must be an object")
    name = _get(batch, "displayName", "display_name") or ""
    config = _get(batch, "inputConfig", "input_config")
    if not isinstance(config, dict):
        raise InvalidBatch("batch.input_config is required")
    file_name = _get(config, "fileName", "file_name")
    if file_name is not None:
        data = load_file(str(file_name))
        if data is None:
            raise InvalidBatch(f"input file {file_name} was not found")
        return BatchSpec(str(name), parse_jsonl(data), str(file_name))
    if "requests" not in config:
        raise InvalidBatch("batch.input_config needs 'requests' or 'file_name'")
    return BatchSpec(str(name), _inline(config["requests"]))
