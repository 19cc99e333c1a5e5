"""Shared fixtures: a real SeaweedFS server, the real emulator, a real Prefect API."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")
os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
# The session's one Prefect server keeps its data in SQLite, where creating a flow run reads
# before it writes: a commit by anyone in between fails it with "database is locked", a 503
# the client retries. Prefect's 5 retries span about a minute of backoff, which a CI machine
# starved by four workers once outlasted; two more give four minutes (children inherit it).
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "7")
# Each pytest process (each xdist worker too) gets its own Prefect home, so ephemeral-mode
# runs never share one SQLite database, nor touch the user's ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="catalog-images-prefect-")

from session_server import launch_shared, shared_api_url, stop_shared  # noqa: E402

from catalog_images.devtools.emulator import Emulator, EmulatorConfig  # noqa: E402
from catalog_images.devtools.local_s3 import LocalS3  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def pytest_unconfigure(config) -> None:
    """Prefect stops its temporary API server at interpreter exit and logs that to a stream
    pytest has closed by then; without this, every worker prints a 'Logging error' trace."""
    logging.raiseExceptions = False
SAMPLE_CSV = REPO / "data" / "sample_catalog.csv"
SAMPLE_PARQUET = REPO / "data" / "sample_catalog.parquet"


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory):
    """One SeaweedFS server for the session, stopped by its PID at the end."""
    with LocalS3(data_dir=tmp_path_factory.mktemp("seaweedfs")).start() as server:
        yield server


@pytest.fixture
def s3_env(local_s3, monkeypatch, tmp_path):
    """Point the pipeline (boto3/aiobotocore) at the local server, with a private spool."""
    for name, value in local_s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CATALOG_IMAGES_SPOOL_DIR", str(tmp_path / "spool"))
    return local_s3


@pytest.fixture
def dest(local_s3) -> str:
    """A fresh destination prefix in the session bucket."""
    return f"s3://{local_s3.bucket}/t-{uuid4().hex[:10]}"


@pytest.fixture
def emulator(monkeypatch):
    """A fresh emulator on a free port, the provider named 'emulator'."""
    emu = Emulator(EmulatorConfig(latency_s=0.02, seed=11)).start()
    monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_URL", emu.base_url)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def prefect_server_url(tmp_path_factory, worker_id) -> Iterator[str]:
    """A real `prefect server start` on loopback (temporary database) for the session: one
    for all xdist workers (tests/session_server.py), stopped by the controller at the end."""
    if worker_id == "master":  # no xdist: this process owns the server
        from catalog_images.devtools.prefect_server import PrefectServer

        with PrefectServer(tmp_path_factory.mktemp("prefect-home")) as server:
            yield server.api_url
        return
    yield shared_api_url(tmp_path_factory.getbasetemp().parent)


def pytest_sessionstart(session) -> None:
    """The xdist controller launches the workers' shared Prefect server at once, unless
    only unit tests were asked for: it boots while the workers start and collect."""
    config = session.config
    targets = [str(arg) for arg in config.args]
    only_unit = bool(targets) and all("tests/unit" in arg for arg in targets)
    if _is_xdist_controller(config) and not only_unit:
        launch_shared(config._tmp_path_factory.getbasetemp())


def _is_xdist_controller(config) -> bool:
    return not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))


def pytest_sessionfinish(session) -> None:
    """The xdist controller stops the server its workers shared, once they are all done."""
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        factory = getattr(session.config, "_tmp_path_factory", None)
        if factory is not None:
            stop_shared(factory.getbasetemp())


@pytest.fixture(scope="session")
def prefect_api(prefect_server_url):
    """The session server's API URL, also made this process's Prefect API."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server_url}):
        yield prefect_server_url


@pytest.fixture
def sample_catalog(tmp_path) -> Path:
    """A private copy of the sample CSV with its reference images beside it."""
    shutil.copy(SAMPLE_CSV, tmp_path / SAMPLE_CSV.name)
    shutil.copytree(SAMPLE_CSV.parent / "reference", tmp_path / "reference")
    return tmp_path / SAMPLE_CSV.name


def write_catalog(path: Path, count: int, prefix: str = "SKU", **columns) -> Path:
    """A CSV catalog of ``count`` distinct products (extra columns repeat the given value)."""
    import pandas as pd

    frame = pd.DataFrame({
        "sku": [f"{prefix}-{i:05d}" for i in range(count)],
        "prompt": [f"Studio photo of product {prefix} number {i}" for i in range(count)],
        **{name: [value] * count for name, value in columns.items()},
    })
    frame.to_csv(path, index=False)
    return path


def run_refresh(**params):
    """Run the flow in this process on RunSettings' flat names (grouped into the flow's
    sections here); return (final state, outcome dict)."""
    import asyncio

    from catalog_images.run_sections import grouped_parameters
    from flows.catalog_refresh import catalog_refresh, outcome_of

    state = asyncio.run(catalog_refresh(**grouped_parameters(params), return_state=True))
    return state, outcome_of(state)


def prefect_http(api_url: str):
    """An httpx client of the session's Prefect server for a test's own API calls: a new
    connection per request (CI once saw a reused keep-alive connection reset by the busy
    server), a refused connection tried again."""
    import httpx

    transport = httpx.HTTPTransport(retries=3, limits=httpx.Limits(max_keepalive_connections=0))
    return httpx.Client(base_url=api_url, timeout=30, transport=transport)


def cli_env(local_s3, emulator, prefect_api: str | None = None) -> dict:
    """A CLI child's environment: the session's S3, this emulator, the session's API."""
    env = {**os.environ, **local_s3.env(), "CATALOG_IMAGES_EMULATOR_URL": emulator.base_url}
    return {**env, "PREFECT_API_URL": prefect_api} if prefect_api else env


def cli_command(verb: str, catalog: Path, dest: str, *extra: str) -> list[str]:
    """``catalog-images VERB --catalog CATALOG --dest DEST EXTRA...`` as a child process."""
    return [sys.executable, "-m", "catalog_images.cli", verb, "--catalog", str(catalog),
            "--dest", dest, *extra]


def stop_while_paused(emulator, command: list[str], env: dict) -> tuple[int, str, float]:
    """Run ``command``; once the emulator has answered a 429 and the rows wait on its
    (long) pause, SIGTERM it. Its exit code, stderr, and seconds from the signal to exit."""
    import subprocess
    import time

    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while emulator.stats()["by_status"].get("429", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the rows now wait on the pause
    sent = time.monotonic()
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr, time.monotonic() - sent


@pytest.fixture
def work_pool(prefect_api, tmp_path_factory) -> Iterator[str]:
    """The work pool deployments/prefect.yaml names, held by one test at a time.

    Tests that deploy the project and start process workers share that pool and its
    deployment names on the session's server, so a worker of one test would pick up another
    test's runs (and leave them in Submitting when its test ends). An exclusive lock on a
    file every pytest worker sees makes them take turns.
    """
    lock = tmp_path_factory.getbasetemp().parent / "catalog-images-work-pool.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield "catalog-images"
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
