"""Async tasks of the Kie-style relay: records, a bounded registry and the lifecycle."""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .core import EmulatorCore
from .hostile import png_bomb
from .http_util import file_url
from .kie_request import TaskRequest

MAX_TASKS = 50_000
FAILURES: dict[str, tuple[str, str]] = {
    "safety": ("content_policy", "The prompt or reference images violate the content policy."),
    "blocked": ("content_policy", "The prompt or reference images violate the content policy."),
    "no_image": ("500", "no image generated"),
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Task:
    """One task; mutated only on the server loop."""

    task_id: str
    request: TaskRequest
    fault: str
    origin: str
    state: str = "waiting"
    create_ms: int = field(default_factory=now_ms)
    update_ms: int = 0
    complete_ms: int | None = None
    result_urls: list[str] = field(default_factory=list)
    fail_code: str = ""
    fail_msg: str = ""
    cut_next_poll: bool = False
    hostile_url: str = ""  # a URL fault's result URL (hostile.py), "" for a normal one

    def set_state(self, state: str) -> None:
        self.state = state
        self.update_ms = now_ms()
        if state in ("success", "fail"):
            self.complete_ms = self.update_ms

    def record(self) -> dict[str, Any]:
        """The ``data`` object of recordInfo."""
        result = (
            json.dumps({"resultUrls": self.result_urls}, separators=(",", ":"))
            if self.state == "success"
            else ""
        )
        return {
            "taskId": self.task_id,
            "model": self.request.model,
            "state": self.state,
            "param": self.request.param,
            "resultJson": result,
            "failCode": self.fail_code,
            "failMsg": self.fail_msg,
            "createTime": self.create_ms,
            "updateTime": self.update_ms or self.create_ms,
            "completeTime": self.complete_ms,
        }


class TaskBook:
    """Tasks by id; the oldest are forgotten beyond ``capacity``."""

    def __init__(self, capacity: int = MAX_TASKS) -> None:
        self._capacity = capacity
        self._tasks: OrderedDict[str, Task] = OrderedDict()

    def add(self, task: Task) -> None:
        self._tasks[task.task_id] = task
        while len(self._tasks) > self._capacity:
            self._tasks.popitem(last=False)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)


async def run_task(core: EmulatorCore, task: Task) -> None:
    """waiting (``task_queue_s``) -> generating (generation delay) -> success | fail.

    A successful, well-formed image is billed when the task reaches ``success``.
    """
    await asyncio.sleep(core.config.task_queue_s)
    task.set_state("generating")
    await asyncio.sleep(core.generation_delay())
    req = task.request
    if task.fault in FAILURES:
        task.fail_code, task.fail_msg = FAILURES[task.fault]
        core.count_outcome(task.fault)
        task.set_state("fail")
        return
    image = await core.render(req.prompt, req.resolution, req.aspect_ratio, task.fault)
    data = png_bomb() if task.fault == "png_bomb" else image.data()
    if task.fault == "truncated":
        data = data[: len(data) // 2]
    url = file_url(task.origin, core.publish(data, image.mime_type, image.extension))
    if task.hostile_url:
        url = task.hostile_url if not task.hostile_url.startswith("/") else (
            task.origin + task.hostile_url)
    task.result_urls = [url]
    task.cut_next_poll = task.fault == "malformed"
    if task.fault != "truncated":
        core.bill(req.prompt, req.model, req.resolution)
    core.count_outcome(task.fault)
    task.set_state("success")
