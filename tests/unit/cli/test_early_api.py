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


FAKE_SERVER = """
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""

LAUNCH_THEN_RUN = """
import sys
from catalog_images.cli import early_api
early_api.server_command = lambda port: [sys.executable, "-c", sys.argv[1], str(port)]
early = early_api.launch(["catalog-images", "run"])
from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings
try:
    adopted = early_api.adopt()
except early_api.EarlyApiError as exc:
    print("refused:", exc)
    raise SystemExit(2)
settings = get_current_settings()
print(adopted, settings.api.url == early.api_url, repr(settings.ui_url),
      get_client().api_url == early.api_url + "/",
      "prefect.server.api.server" in sys.modules, early.proc.pid)
"""


def _launch_then_run(server_code: str, home) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_API_", "PREFECT_UI_"))}
    env.update(PREFECT_HOME=str(home / "prefect-home"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="20")
    return subprocess.run([sys.executable, "-c", LAUNCH_THEN_RUN, server_code], env=env,
                          cwd=home, capture_output=True, text=True, timeout=120)


def test_prefect_uses_the_launched_server_as_a_running_one(home):
    """Prefect's clients reach the launched server by its URL, so the CLI never imports
    Prefect's server package (its ephemeral mode would); it is stopped as the CLI ends."""
    done = _launch_then_run(FAKE_SERVER, home)
    assert done.returncode == 0, done.stderr[-2000:]
    *seen, pid = done.stdout.split()
    assert seen == ["True", "True", "''", "True", "False"]
    assert "Stopping temporary server on http://127.0.0.1:" in done.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)


def test_a_server_that_does_not_start_names_the_way_out(home):
    done = _launch_then_run("raise SystemExit(3)", home)
    assert done.returncode == 2
    assert "did not start (exit code 3)" in done.stdout
    assert f"{early_api.OPT_OUT}=0" in done.stdout


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
