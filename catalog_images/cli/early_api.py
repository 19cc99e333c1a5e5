"""Prefect's ephemeral API, launched on the CLI's first line so its start overlaps ours.

In ephemeral mode (no ``PREFECT_API_URL``) Prefect starts its temporary API server the first
time a client needs it: after the CLI has imported Prefect, the flow and its libraries, so
the two starts run one after the other. ``launch`` starts the same server command (Prefect's
``SubprocessASGIServer`` command line and environment) before any of those imports and names
it as this process's API (``PREFECT_API_URL``, no UI link: it ends with the command), so
Prefect talks to it as to a running server and never imports its own server package in the
CLI (fastapi, SQLAlchemy and the API's models: about 1.6 s of CPU). ``adopt`` waits for it
to answer just before the flow runs; it is stopped when the command ends, after Prefect's
log and event workers have drained into it. When something does not fit (an API URL found
in a profile, the opt-out), nothing is launched and Prefect does what it always did. The
server leads its own session (a Ctrl-C in the terminal reaches the CLI, which drains and
reports through it first) and gets SIGTERM when the CLI dies (Linux).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

from catalog_images.prefect_env import apply_defaults

COMMANDS = frozenset({"run", "demo"})  # the commands that run a flow in this process
OPT_OUT = "CATALOG_IMAGES_EARLY_API"  # "0": leave the ephemeral API to Prefect
_PROFILE_HINTS = ("PREFECT_API_URL", "[api]", "[tool.prefect.api]")
# Prefect's ephemeral-server environment, and no block registration at start: it imports
# every installed integration first (prefect-aws, prefect-dask and Dask itself: a fifth of
# the server's start). Blocks a run loads by name were registered when they were saved.
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
              "PREFECT__SERVER_FINAL": "1", "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
              "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}


class EarlyApi:
    """The server process started by ``launch``, until Prefect owns it (or it is stopped)."""

    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port = proc, port
        self.adopted = False  # answered adopt(): the run used it

    @property
    def api_url(self) -> str:
        """The API URL of the server."""
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        """SIGTERM the server; SIGKILL after 5 s as Prefect does with its own (2 s when the
        run never used it: it may be migrating, and SQLite rolls that back); idempotent."""
        if self.proc.poll() is not None:
            return
        if self.adopted:  # as Prefect says of its own temporary server
            with contextlib.suppress(OSError, ValueError):
                print(f"Stopping temporary server on {self.api_url[:-4]}", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5 if self.adopted else 2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=5)


_EARLY: list[EarlyApi] = []  # at most one: the server launch() started


def wanted(argv: list[str], environ: dict[str, str] | os._Environ) -> bool:
    """Whether this process is the CLI running a flow in ephemeral mode (a cheap guess made
    before Prefect is imported; ``adopt`` checks Prefect's own settings)."""
    program = os.path.basename(argv[0]) if argv else ""
    if program not in ("catalog-images", "-m") or len(argv) < 2 or argv[1] not in COMMANDS:
        return False
    if "--help" in argv or environ.get(OPT_OUT, "1") == "0" or environ.get("PREFECT_API_URL"):
        return False
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    for path in (home / "profiles.toml", Path("prefect.toml"), Path(".env"),
                 Path("pyproject.toml")):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if any(hint in path.read_text() for hint in _PROFILE_HINTS):
                return False
    return True


def server_command(port: int) -> list[str]:
    """Prefect's ephemeral server command line (``SubprocessASGIServer._run_uvicorn_command``)
    without importing Prefect."""
    spec = find_spec("prefect")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("prefect")
    app_dir = Path(spec.origin).parent.parent
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]


def _parent_death_signal():
    """A function for the child before exec: SIGTERM when the CLI dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG); None elsewhere. Resolved here: the child must not import."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)


def launch(argv: list[str] | None = None) -> EarlyApi | None:
    """Start the ephemeral API server now when this process will want one; else None."""
    argv = sys.argv if argv is None else argv
    if _EARLY or not wanted(argv, os.environ):
        return None
    apply_defaults()  # the server inherits this product's Prefect defaults
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **SERVER_ENV}
    try:
        proc = subprocess.Popen(
            server_command(port), env=env, start_new_session=True,
            preexec_fn=_parent_death_signal())
    except (OSError, ModuleNotFoundError):
        return None
    early = EarlyApi(proc, port)
    _EARLY.append(early)
    atexit.register(early.stop)  # the last exit handler, whenever the command ends
    os.environ["PREFECT_API_URL"] = early.api_url  # before Prefect reads its settings
    os.environ.setdefault("PREFECT_UI_URL", "")  # no "View at" link to a server that ends
    return early


def stop_launched() -> None:
    """Stop the launched server (the command ends, or has no use for it)."""
    while _EARLY:
        _EARLY.pop().stop()


class EarlyApiError(RuntimeError):
    """The launched server died or never answered."""


def adopt() -> bool:
    """Wait until the launched server answers, just before the flow; True if there is one.

    Raises EarlyApiError, naming the opt-out, when it exits or never answers.
    """
    if not _EARLY:
        return False
    early = _EARLY[-1]
    from prefect.settings import get_current_settings

    # Prefect reads the URL launch() set: the environment wins over every settings file
    settings = get_current_settings()
    if not _healthy(early, settings.server.ephemeral.startup_timeout_seconds):
        code = early.proc.poll()
        stop_launched()
        how = "no answer" if code is None else f"exit code {code}"
        raise EarlyApiError(
            f"Prefect's temporary API did not start ({how}); run again with {OPT_OUT}=0 to "
            "let Prefect start it, or set PREFECT_API_URL")
    early.adopted = True
    return True


def _healthy(early: EarlyApi, timeout_s: float) -> bool:
    """Wait until the server answers its health check; False if it exits or times out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline and early.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{early.api_url}/health").status_code == 200:
                    return True
            time.sleep(0.05)
    return False
