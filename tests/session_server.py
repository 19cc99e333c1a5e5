"""One `prefect server` for a whole pytest session, shared by every xdist worker.

Each worker starting its own server paid the start (migrations, services) twice on a 2-core
machine and ran two sets of background services for the whole session. The pytest
controller launches it as the session starts (it boots while the workers collect and run
their first tests) and writes its URL and PID beside the session's base temp directory;
a worker that needs it waits for its health check (and starts it, under a file lock, when
no controller did). The controller stops it, by that PID (its process group), at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

INFO_NAME = "prefect-server.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def launch_shared(session_root: Path) -> None:
    """Start the session's server without waiting for it (the controller, at session start)."""
    from catalog_images.devtools.prefect_server import PrefectServer

    with _locked(session_root / "prefect-server.lock"):
        info = session_root / INFO_NAME
        if not info.exists():
            server = PrefectServer(session_root / "prefect-home").launch()
            info.write_text(json.dumps({"api_url": server.api_url, "pid": server.pid,
                                        "log": str(server.log_path)}))


def shared_api_url(session_root: Path) -> str:
    """The API URL of the session's server once it answers; started here if nobody has."""
    from catalog_images.devtools.prefect_server import wait_until_healthy

    launch_shared(session_root)
    server = json.loads((session_root / INFO_NAME).read_text())
    wait_until_healthy(server["api_url"], server["pid"], Path(server["log"]))
    return server["api_url"]


def stop_shared(session_root: Path, timeout_s: float = 30) -> None:
    """Stop the session's server, if one was started: SIGTERM its group, SIGKILL if it stays."""
    info = session_root / INFO_NAME
    if not info.exists():
        return
    pid = json.loads(info.read_text())["pid"]
    info.unlink()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # ProcessLookupError once it is gone
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)
