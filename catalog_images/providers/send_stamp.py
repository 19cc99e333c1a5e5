"""When did this task's request really leave? Shared by the rate window and the HTTP layer.

The gate stamps a request when it takes its rate token; the providers' HTTP layer moves the
stamp to the moment the request headers have been written (httpx trace), so a burst over
cold connections does not crowd the provider's window.
"""

from __future__ import annotations

from contextvars import ContextVar

# [monotonic send time, confirmed by the HTTP layer]
SEND_STAMP: ContextVar[list | None] = ContextVar("send_stamp", default=None)


def confirm_send(now: float) -> None:
    """Record that this task's request has just left (the first confirmation wins)."""
    stamp = SEND_STAMP.get()
    if stamp is not None and not stamp[1]:
        stamp[0], stamp[1] = now, True
