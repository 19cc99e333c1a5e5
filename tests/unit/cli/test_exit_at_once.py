"""A command (a run, stopped or not) leaves without tearing the interpreter down (seconds on
a loaded machine), after every exit handler registered later (Prefect's drains), with its
code."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, sys
import catalog_images.cli.execute as execute

class Teardown:
    def __del__(self):
        print("torn down", flush=True)

kept = Teardown()  # freed only when the interpreter tears its modules down
atexit.register(lambda: print("drained", flush=True))  # like Prefect's, registered later
print("summary", end="")  # unflushed output must still come out
if sys.argv[1] == "stopped":
    execute.leave_with(1)
sys.exit(0 if sys.argv[1] == "done" else 1)
"""


def _run(kind: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True,
                          timeout=120)


def test_a_stopped_run_exits_after_the_drains_without_the_teardown() -> None:
    stopped = _run("stopped")
    assert stopped.returncode == 1, stopped.stderr
    assert stopped.stdout.startswith("summary") and "drained" in stopped.stdout
    assert "torn down" not in stopped.stdout


def test_any_other_run_exits_the_usual_way() -> None:
    done = _run("done")
    assert done.returncode == 0 and "drained" in done.stdout and "torn down" in done.stdout


def test_the_program_leaves_with_its_command_s_code_and_keeps_message_exits() -> None:
    import catalog_images.cli.execute as execute

    before = execute.exit_code_at_once
    try:
        execute.leave_with(None)
        assert execute.exit_code_at_once == 0
        execute.leave_with(2)
        assert execute.exit_code_at_once == 2
        execute.leave_with("a message Python prints")  # its usual exit prints it, code 1
        assert execute.exit_code_at_once == 2
    finally:
        execute.exit_code_at_once = before


def test_the_command_line_exits_with_its_code_without_the_teardown() -> None:
    done = subprocess.run([sys.executable, "-c", """
import sys
from catalog_images.cli import app as cli

class Teardown:
    def __del__(self):
        print("torn down", flush=True)

kept = Teardown()
sys.argv = ["catalog-images", "run", "--concurrency", "0"]
cli.main()
"""], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "torn down" not in done.stdout
