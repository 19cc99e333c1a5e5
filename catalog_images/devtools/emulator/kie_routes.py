"""Kie-style async-task relay: ``POST /api/v1/jobs/createTask``, ``GET .../recordInfo``.

Every answer is HTTP 200; the outcome is the body's ``code`` (200, 401, 404, 422, 429, 500,
503, 504) with ``msg``, and ``data`` on success.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from . import background, hostile
from .core import Admission, Auth, EmulatorCore
from .files import new_id
from .http_util import CORE_KEY, abort, bearer_token, dump_json, origin, send_json
from .kie_request import InvalidTask, TaskRequest, parse_task_request
from .kie_tasks import Task, TaskBook, run_task

TASKS_KEY = web.AppKey("emulator_kie_tasks", TaskBook)
ERRORS: dict[str, tuple[int, str]] = {
    "503": (503, "Service unavailable, please try again later"),
    "500": (500, "Internal server error"),
    "hang": (504, "Gateway timeout"),
}


def add_routes(app: web.Application) -> None:
    """Register createTask and recordInfo; the task registry lives in the app."""
    background.install(app)
    app[TASKS_KEY] = TaskBook()
    app.router.add_post("/api/v1/jobs/createTask", create_task)
    app.router.add_get("/api/v1/jobs/recordInfo", record_info)


def _body(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def _auth_error(core: EmulatorCore, request: web.Request) -> dict[str, Any] | None:
    auth = core.authenticate([bearer_token(request)])
    if auth is Auth.MISSING:
        return _body(401, "Unauthorized: send 'Authorization: Bearer KEY'")
    if auth is Auth.INVALID:
        return _body(401, "Unauthorized: the API key is invalid")
    return None


async def _answer(
    request: web.Request,
    core: EmulatorCore,
    body: Any,
    outcome: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    core.count_outcome(outcome)
    core.count_status(200)
    return (await send_json(request, 200, body, headers))[0]


async def create_task(request: web.Request) -> web.StreamResponse:
    """Authenticate, validate, apply quota and creation faults, then start the task."""
    core = request.app[CORE_KEY]
    core.count_request()
    if (error := _auth_error(core, request)) is not None:
        return await _answer(request, core, error, "api_key_invalid")
    try:
        req = parse_task_request(await request.read())
    except InvalidTask as exc:
        return await _answer(request, core, _body(422, str(exc)), "invalid")
    if req.model not in core.config.task_models:
        msg = f"model '{req.model}' is not supported"
        return await _answer(request, core, _body(422, msg), "not_found")
    admission = core.admit(req.prompt)
    if admission.over_quota:
        assert admission.quota_wait_s is not None
        kind = admission.quota_kind
        return await _too_many(request, core, admission.quota_wait_s,
                               f"{'quota' if kind == 'minute' else kind}_429", kind)
    return await _start(request, core, req, admission)


async def _too_many(
    request: web.Request, core: EmulatorCore, delay_s: float, outcome: str,
    kind: str = "minute",
) -> web.Response:
    shown = math.ceil(delay_s * 1000) / 1000
    if kind == "spend":
        msg = "Insufficient credits: your balance is too low for this task; please top up."
        return await _answer(request, core, _body(402, msg), outcome)
    what = "daily limit reached" if kind == "day" else "too many requests"
    body = _body(429, f"rate limited: {what}, please retry in {shown:.3f}s")
    retry = str(max(1, math.ceil(delay_s)))
    headers = {"Retry-After": retry} if core.config.retry_after_header else None
    return await _answer(request, core, body, outcome, headers)


async def _start(
    request: web.Request, core: EmulatorCore, req: TaskRequest, admission: Admission
) -> web.StreamResponse:
    cfg = core.config
    fault = hostile.applicable(admission.fault, urls=True, base64_images=False)
    if fault in hostile.BODY_FAULTS:
        return await hostile.send_body_fault(request, core, fault)
    if fault == "429":
        core.release(admission)
        return await _too_many(request, core, cfg.fault_retry_delay_s, fault)
    if fault in ERRORS:
        code, msg = ERRORS[fault]
        if fault == "hang":
            core.count_outcome(fault)
            await asyncio.sleep(cfg.hang_s)
            core.count_status(200)
            return (await send_json(request, 200, _body(code, msg)))[0]
        return await _answer(request, core, _body(code, msg), fault)
    if fault == "reset":
        core.count_outcome(fault)
        return abort(request)
    task = Task(task_id=new_id(16), request=req, fault=fault,
                origin=core.result_origin(origin(request)))
    task.hostile_url = hostile.result_url(fault, request, "")
    request.app[TASKS_KEY].add(task)
    background.spawn(request.app, run_task(core, task))
    core.count_status(200)
    return (await send_json(request, 200, _body(200, "success", {"taskId": task.task_id})))[0]


async def record_info(request: web.Request) -> web.StreamResponse:
    """State of a task; free of quota. A "malformed" task answers cut JSON once at success."""
    core = request.app[CORE_KEY]
    if (error := _auth_error(core, request)) is not None:
        return (await send_json(request, 200, error))[0]
    task_id = request.query.get("taskId", "")
    if not task_id:
        return (await send_json(request, 200, _body(422, "taskId is required")))[0]
    task = request.app[TASKS_KEY].get(task_id)
    if task is None:
        return (await send_json(request, 200, _body(404, f"task {task_id} not found")))[0]
    body = _body(200, "success", task.record())
    if task.state == "success" and task.cut_next_poll:
        task.cut_next_poll = False
        text = dump_json(body)
        return (await send_json(request, 200, text[: len(text) // 2]))[0]
    return (await send_json(request, 200, body))[0]
