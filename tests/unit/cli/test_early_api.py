"""The ephemeral API launched on the CLI's first line: when, with what command, and exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from catalog_images.cli import early_api


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty Prefect home and working directory (no profile names an API)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("argv", "expected"), [
    (["/venv/bin/catalog-images", "run", "--catalog", "c.csv"], True),
    (["-m", "run", "--catalog", "c.csv"], True),  # python -m catalog_images.cli run
    (["-m", "demo"], True),
    (["/venv/bin/catalog-images", "estimate", "--catalog", "c.csv"], False),
    (["/venv/bin/catalog-images", "run", "--help"], False),
    (["/venv/bin/pytest", "run"], False),
    (["/venv/bin/catalog-images"], False),
])
def test_only_the_cli_running_a_flow_wants_it(argv, expected, home):
    assert early_api.wanted(argv, {"PREFECT_HOME": str(home)}) is expected


def test_an_api_url_or_the_opt_out_means_no_early_server(home):
    argv = ["catalog-images", "run"]
    assert not early_api.wanted(argv, {"PREFECT_HOME": str(home), "PREFECT_API_URL": "http://x"})
    assert not early_api.wanted(argv, {"PREFECT_HOME": str(home), early_api.OPT_OUT: "0"})


@pytest.mark.parametrize(("name", "text"), [
    ("profiles.toml", '[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'),
    ("prefect.toml", '[api]\nurl = "http://127.0.0.1:4200/api"\n'),
    (".env", "PREFECT_API_URL=http://127.0.0.1:4200/api\n"),
])
def test_an_api_named_in_a_settings_file_means_no_early_server(name, text, home):
    (home / name).write_text(text)
    assert not early_api.wanted(["catalog-images", "run"], {"PREFECT_HOME": str(home)})


def test_the_command_is_prefects_own(monkeypatch):
    """Prefect's SubprocessASGIServer would start exactly this command (a Prefect upgrade that
    changes it fails here)."""
    from prefect.server.api.server import SubprocessASGIServer

    seen = {}

    def popen(args, env, **_):
        seen["args"], seen["env"] = args, env
        return None

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(SubprocessASGIServer, "_instances", {})
    server = SubprocessASGIServer(8123)
    server._run_uvicorn_command()
    assert seen["args"] == early_api.server_command(8123)
    for name in ("PREFECT_UI_ENABLED", "PREFECT__SERVER_EPHEMERAL", "PREFECT__SERVER_FINAL"):
        assert name in seen["env"]


def test_prefect_takes_the_adopted_server_as_its_ephemeral_one(monkeypatch):
    """adopt() fills the instance get_client() asks for, so Prefect starts no second one."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE,
        temporary_settings,
    )

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(early_api, "_EARLY", [early_api.EarlyApi(proc, 8124)])
    monkeypatch.setattr(early_api, "_healthy", lambda early, timeout_s: True)
    monkeypatch.setattr(SubprocessASGIServer, "_instances", {})
    try:
        with temporary_settings({PREFECT_API_URL: "", PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: True}):
            assert early_api.adopt() is True
        server = SubprocessASGIServer()
        assert server.running and server.server_process is proc and server.port == 8124
        server.start()  # what get_client() calls: must not start another process
        assert server.server_process is proc
        server.stop()
        assert proc.poll() is not None
    finally:
        proc.kill()
        proc.wait()


def test_a_configured_api_stops_the_early_server(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(early_api, "_EARLY", [early_api.EarlyApi(proc, 8125)])
    try:
        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
            assert early_api.adopt() is False
        assert proc.poll() is not None
    finally:
        proc.kill()
        proc.wait()


def test_the_server_dies_with_the_cli(tmp_path):
    """SIGKILL of the CLI leaves no server behind (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    pid_file = tmp_path / "pid"
    parent = (
        "import subprocess, sys, time; from catalog_images.cli import early_api\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True, preexec_fn=early_api._parent_death_signal())\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)\n")
    cli = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _gone(child):
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the server outlived the CLI")


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its new parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
