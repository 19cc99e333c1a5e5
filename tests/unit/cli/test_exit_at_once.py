"""A run stopped by a signal leaves without tearing the interpreter down (seconds on a loaded
machine), after every exit handler registered later (Prefect's drains) and with its code."""

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
    execute._EXIT_AT_ONCE.append(1)
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

