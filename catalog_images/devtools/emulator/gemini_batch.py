"""Gemini batch jobs: state, the resource JSON, and the run that produces (and bills) results.

A job is ``JOB_STATE_PENDING`` for the first half of ``batch_delay_s``, ``JOB_STATE_RUNNING``
for the second half, then ends in the configured ``batch_outcome``. Only SUCCEEDED jobs have
results; each delivered image is billed then at the batch price.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import gemini_response as wire
from . import hostile
from .core import EmulatorCore
from .gemini_batch_request import BatchEntry, BatchSpec
from .rfc3339 import rfc3339

MAX_JOBS = 10_000
BATCH_FAULTS = frozenset(("safety", "no_image", "blocked", "bad_batch_item", "png_bomb",
                          "bad_base64", "wrong_shape"))
TERMINAL = frozenset(
    ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_EXPIRED", "JOB_STATE_CANCELLED")
)
TERMINAL_ERRORS: dict[str, tuple[int, str]] = {
    "JOB_STATE_FAILED": (13, "The batch failed: an internal error occurred."),
    "JOB_STATE_EXPIRED": (4, "The batch expired before it could complete (48 h)."),
    "JOB_STATE_CANCELLED": (1, "The batch was cancelled."),
}
TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1beta."


@dataclass
class BatchJob:
    """One batch; mutated only on the server loop."""

    batch_id: str
    model: str
    spec: BatchSpec
    faults: tuple[str, ...]
    delay_s: float
    outcome: str
    state: str = "JOB_STATE_PENDING"
    created: float = field(default_factory=time.time)
    updated: float = 0.0
    ended: float | None = None
    inlined: list[dict[str, Any]] | None = None
    responses_file: str | None = None
    succeeded: int = 0
    failed: int = 0
    runner: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"batches/{self.batch_id}"

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def set_state(self, state: str) -> None:
        self.state = state
        self.updated = time.time()
        if state in TERMINAL:
            self.ended = self.updated

    def resource(self) -> dict[str, Any]:
        """The batch as ``GET /v1beta/batches/{id}`` returns it (an Operation-like object)."""
        total = len(self.spec.entries)
        stats = {"requestCount": str(total)}
        if self.state == "JOB_STATE_SUCCEEDED":
            stats["successfulRequestCount"] = str(self.succeeded)
            stats["failedRequestCount"] = str(self.failed)
        elif not self.done:
            stats["pendingRequestCount"] = str(total)
        metadata: dict[str, Any] = {
            "@type": TYPE_PREFIX + "GenerateContentBatch",
            "name": self.name,
            "displayName": self.spec.display_name,
            "model": f"models/{self.model}",
            "state": self.state,
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.updated or self.created),
            "batchStats": stats,
        }
        if self.spec.input_file:
            metadata["inputConfig"] = {"fileName": self.spec.input_file}
        if self.ended is not None:
            metadata["endTime"] = rfc3339(self.ended)
        body: dict[str, Any] = {"name": self.name, "metadata": metadata, "state": self.state}
        body["done"] = self.done
        if self.state in TERMINAL_ERRORS:
            code, message = TERMINAL_ERRORS[self.state]
            body["error"] = {"code": code, "message": message}
        output: dict[str, Any] = {"@type": TYPE_PREFIX + "GenerateContentBatchOutput"}
        if self.responses_file is not None:
            output["responsesFile"] = self.responses_file
            metadata["output"] = {"responsesFile": self.responses_file}
            body["dest"] = {"fileName": self.responses_file}
            body["response"] = output
        elif self.inlined is not None:
            output["inlinedResponses"] = {"inlinedResponses": self.inlined}
            body["response"] = output
        return body


class BatchBook:
    """Jobs by id; the oldest are forgotten beyond ``capacity``."""

    def __init__(self, capacity: int = MAX_JOBS) -> None:
        self._capacity = capacity
        self._jobs: OrderedDict[str, BatchJob] = OrderedDict()

    def add(self, job: BatchJob) -> None:
        self._jobs[job.batch_id] = job
        while len(self._jobs) > self._capacity:
            self._jobs.popitem(last=False)

    def get(self, batch_id: str) -> BatchJob | None:
        return self._jobs.get(batch_id)

    def newest_first(self) -> list[BatchJob]:
        """Every kept job, the most recently created first."""
        return list(reversed(self._jobs.values()))


async def _result(
    core: EmulatorCore, model: str, entry: BatchEntry, fault: str
) -> tuple[str, dict[str, Any], bool]:
    """("response" | "error", body, has an image) for one entry."""
    req = entry.request
    if req is None:
        return "error", wire.error_body(400, "INVALID_ARGUMENT", entry.error or "")["error"], False
    refs = req.reference_images
    if fault == "safety":
        return "response", wire.safety_body(model, req.prompt, refs), False
    if fault == "blocked":
        return "response", wire.blocked_body(model, req.prompt, refs), False
    if fault == "no_image" or not req.wants_image:
        return "response", wire.text_only_body(model, req.prompt, refs), False
    image = await core.render(req.prompt, req.image_size, req.aspect_ratio, fault)
    cfg = core.config
    body = wire.success_body(
        model=model,
        prompt=req.prompt,
        image_size=req.image_size,
        references=refs,
        image_b64=hostile.image_b64(fault) or image.b64(),
        mime_type=image.mime_type,
        as_data_uri=cfg.image_as_data_uri,
        thought_parts=cfg.thought_parts,
    )
    return "response", body, fault != "bad_batch_item"  # a lost item is not billed


def _inline_item(entry: BatchEntry, kind: str, body: dict[str, Any], fault: str) -> dict:
    """One inline result; ``bad_batch_item`` loses its metadata (python-genai #1886)."""
    if entry.metadata is None or fault == "bad_batch_item":
        return {kind: body}
    return {kind: body, "metadata": entry.metadata}


def _file_line(entry: BatchEntry, kind: str, body: dict[str, Any], fault: str) -> str:
    """One JSONL result line; ``bad_batch_item`` cuts it in half."""
    line = json.dumps({**({"key": entry.key} if entry.key is not None else {}), kind: body})
    return line[: len(line) // 2] if fault == "bad_batch_item" else line


def _outcome(kind: str, fault: str, has_image: bool) -> str:
    if kind == "error":
        return "invalid"
    if fault != "ok" or has_image:
        return fault
    return "text_only"


async def run_batch(
    core: EmulatorCore, job: BatchJob, store_results: Callable[[bytes], str]
) -> None:
    """Sleep through PENDING and RUNNING, then finish; ``store_results`` keeps a JSONL file."""
    await asyncio.sleep(job.delay_s / 2)
    job.set_state("JOB_STATE_RUNNING")
    await asyncio.sleep(job.delay_s / 2)
    if job.outcome != "JOB_STATE_SUCCEEDED":
        job.set_state(job.outcome)
        return
    results = [
        await _result(core, job.model, entry, fault)
        for entry, fault in zip(job.spec.entries, job.faults, strict=True)
    ]
    # No await from here on: results, ledger and state change together.
    for entry, fault, (kind, body, has_image) in zip(
        job.spec.entries, job.faults, results, strict=True
    ):
        core.count_outcome(_outcome(kind, fault, has_image))
        if has_image and entry.request is not None:
            core.bill(entry.request.prompt, job.model, entry.request.image_size, mode="batch")
        if kind == "response":
            core.bill_tokens(job.model, body.get("usageMetadata"), mode="batch")
    job.failed = sum(kind == "error" for kind, _, _ in results)
    job.succeeded = len(results) - job.failed
    if job.spec.input_file is None:
        job.inlined = [
            _inline_item(e, kind, body, fault)
            for e, fault, (kind, body, _) in zip(job.spec.entries, job.faults, results,
                                                 strict=True)
        ]
    else:
        lines = [
            _file_line(e, kind, body, fault)
            for e, fault, (kind, body, _) in zip(job.spec.entries, job.faults, results,
                                                 strict=True)
        ]
        job.responses_file = store_results(("\n".join(lines) + "\n").encode("utf-8"))
    job.set_state("JOB_STATE_SUCCEEDED")
