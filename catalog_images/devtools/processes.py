"""Stopping a child process we started: by its PID, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM ``proc``; if it has not exited after ``timeout_s``, SIGKILL its process group.

    The child must lead its own session (``start_new_session=True``), so its group id is
    its PID and the kill reaches its own children too.
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
