"""Gemini Batch Mode routes: create (``:batchGenerateContent``), list, get and cancel batches."""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import background
from . import gemini_response as wire
from .config import batch_outcome_state
from .core import EmulatorCore
from .files import new_id
from .gemini_auth import auth_error, invalid, not_found
from .gemini_batch import BATCH_FAULTS, BatchBook, BatchJob, run_batch
from .gemini_batch_request import InvalidBatch, parse_batch_body
from .gemini_files import DOCS_KEY, store_document
from .http_util import CORE_KEY, send_json

BATCHES_KEY = web.AppKey("emulator_gemini_batches", BatchBook)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def add_routes(app: web.Application) -> None:
    """Register batch routes; call before ``gemini_routes`` so the create route wins."""
    background.install(app)
    app[BATCHES_KEY] = BatchBook()
    app.router.add_post("/v1beta/models/{model}:batchGenerateContent", create_batch)
    app.router.add_get("/v1beta/batches", list_batches)
    app.router.add_get("/v1beta/batches/{batch_id}", get_batch)
    app.router.add_post("/v1beta/batches/{batch_action}", cancel_batch)


async def _send(
    request: web.Request, core: EmulatorCore, status: int, body: object, outcome: str
) -> web.StreamResponse:
    core.count_outcome(outcome)
    core.count_status(status)
    return (await send_json(request, status, body))[0]


async def create_batch(request: web.Request) -> web.StreamResponse:
    """Validate the batch, apply the quota, pick per-request faults and start the job."""
    core = request.app[CORE_KEY]
    core.count_request()
    if (error := auth_error(core, request)) is not None:
        return await _send(request, core, *error, "api_key_invalid")
    model = request.match_info["model"]
    if model not in core.config.models:
        message = f"models/{model} is not found for API version v1beta."
        body = wire.error_body(404, "NOT_FOUND", message)
        return await _send(request, core, 404, body, "not_found")
    docs = request.app[DOCS_KEY]

    def load(name: str) -> bytes | None:
        found = docs.get(name)
        return None if found is None else found.data

    try:
        spec = parse_batch_body(await request.read(), load)
    except InvalidBatch as exc:
        return await _send(request, core, *invalid(str(exc)), "invalid")
    admission = core.check_quota()
    if admission.over_quota:
        assert admission.quota_wait_s is not None
        body = wire.refusal_body(admission.quota_kind, model, core.config.rpm,
                                 admission.quota_wait_s)
        return await _send(request, core, 429, body, "quota_429")
    faults = tuple(
        core.pick_fault(e.request.prompt, BATCH_FAULTS) if e.request is not None else "ok"
        for e in spec.entries
    )
    cfg = core.config
    job = BatchJob(
        batch_id=new_id(),
        model=model,
        spec=spec,
        faults=faults,
        delay_s=cfg.batch_delay_s,
        outcome=batch_outcome_state(cfg.batch_outcome),
    )
    request.app[BATCHES_KEY].add(job)

    def store(data: bytes) -> str:
        name = f"batch-{job.batch_id}-responses"
        return store_document(request.app, data, display_name=name, source="GENERATED")

    job.runner = background.spawn(request.app, run_batch(core, job, store))
    if cfg.batch_create_latency_s > 0:
        await asyncio.sleep(cfg.batch_create_latency_s)
    core.count_status(200)
    return (await send_json(request, 200, job.resource()))[0]


async def list_batches(request: web.Request) -> web.StreamResponse:
    """``GET /v1beta/batches?pageSize=&pageToken=``: ``{"operations": [...], "nextPageToken"}``.

    Newest first; like the real API, listed batches carry no inlined responses (get one
    batch for those).
    """
    core = request.app[CORE_KEY]
    if (error := auth_error(core, request)) is not None:
        return (await send_json(request, *error))[0]
    try:
        size = int(request.query.get("pageSize") or DEFAULT_PAGE_SIZE)
        start = int(request.query.get("pageToken") or 0)
    except ValueError:
        return (await send_json(request, *invalid("pageSize and pageToken must be valid")))[0]
    if size < 1 or start < 0:
        return (await send_json(request, *invalid("pageSize and pageToken must be valid")))[0]
    jobs = request.app[BATCHES_KEY].newest_first()
    page = jobs[start:start + min(size, MAX_PAGE_SIZE)]
    operations = []
    for job in page:
        resource = job.resource()
        resource.pop("response", None)
        operations.append(resource)
    body: dict[str, object] = {"operations": operations}
    if start + len(page) < len(jobs):
        body["nextPageToken"] = str(start + len(page))
    return (await send_json(request, 200, body))[0]


async def get_batch(request: web.Request) -> web.StreamResponse:
    """``GET /v1beta/batches/{id}``: the batch resource (free of quota)."""
    core = request.app[CORE_KEY]
    if (error := auth_error(core, request)) is not None:
        return (await send_json(request, *error))[0]
    batch_id = request.match_info["batch_id"]
    job = request.app[BATCHES_KEY].get(batch_id)
    if job is None:
        return (await send_json(request, *not_found(f"batches/{batch_id}")))[0]
    return (await send_json(request, 200, job.resource()))[0]


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1beta/batches/{id}:cancel``: stop a batch that has not ended (nothing billed)."""
    core = request.app[CORE_KEY]
    if (error := auth_error(core, request)) is not None:
        return (await send_json(request, *error))[0]
    batch_id, _, action = request.match_info["batch_action"].partition(":")
    job = request.app[BATCHES_KEY].get(batch_id)
    if action != "cancel" or job is None:
        return (await send_json(request, *not_found(f"batches/{batch_id}")))[0]
    if not job.done:
        if job.runner is not None:
            job.runner.cancel()
        job.set_state("JOB_STATE_CANCELLED")
    return (await send_json(request, 200, {}))[0]
