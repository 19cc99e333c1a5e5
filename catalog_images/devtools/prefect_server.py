"""A real `prefect server start` on loopback with its own home and database.

For end-to-end tests and local scale-out trials: started as a child process in its own
session, stopped by its PID (never by name).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from catalog_images.devtools.processes import stop_process


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PrefectServer:
    """``prefect server start --host 127.0.0.1 --port P`` with PREFECT_HOME under ``home``."""

    def __init__(self, home: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.home = Path(home)
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        """The API URL clients and workers use (PREFECT_API_URL)."""
        return f"http://{self.host}:{self.port}/api"

    @property
    def pid(self) -> int | None:
        """The server process's PID (its process group's id too), once started."""
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path:
        """The server's combined output."""
        return self.home / "server.log"

    def env(self) -> dict[str, str]:
        """Environment for a client or worker of this server."""
        return {"PREFECT_API_URL": self.api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1"}

    def start(self, timeout_s: float = 180) -> PrefectServer:
        """Start the server and wait until its health endpoint answers."""
        self.launch()
        try:
            wait_until_healthy(self.api_url, self.pid, self.log_path, timeout_s)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        return self

    def launch(self) -> PrefectServer:
        """Start the server process without waiting for it (see wait_until_healthy)."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env(), "PREFECT_HOME": str(self.home),
               "PREFECT_UI_API_URL": self.api_url,
               "PREFECT_API_DATABASE_CONNECTION_URL":
                   f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"}
        env.pop("PREFECT_API_URL")  # the server itself must not look for another API
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", self.host,
                 "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM our PID; SIGKILL its process group if it does not go."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout_s)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def wait_until_healthy(api_url: str, pid: int | None, log_path: Path,
                       timeout_s: float = 180) -> None:
    """Wait until the server at ``api_url`` answers its health check; RuntimeError when its
    process (``pid``) has exited, TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"prefect server (PID {pid}) exited; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"prefect server not ready after {timeout_s:.0f} s; see {log_path}")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of ours, exited but not reaped, is not)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: ask the kernel whether it exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return waited == 0
