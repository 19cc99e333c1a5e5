"""Shared benchmark plumbing: services on loopback, child processes measured for CPU."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from catalog_images.devtools.local_s3 import LocalS3

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator_process(*args: str):
    """The emulator in its own process (its CPU is not the pipeline's); yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "catalog_images.devtools.emulator", "--port", str(port), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/_emulator/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def emulator_get(url: str, path: str) -> dict:
    """GET an emulator admin endpoint."""
    with urllib.request.urlopen(f"{url}/_emulator/{path}", timeout=5) as response:
        return json.loads(response.read())


def emulator_post(url: str, path: str, body: dict) -> None:
    """POST to an emulator admin endpoint."""
    request = urllib.request.Request(
        f"{url}/_emulator/{path}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


@contextmanager
def local_s3():
    """A SeaweedFS server for the benchmark, stopped by PID."""
    WORK.mkdir(exist_ok=True)
    with LocalS3(data_dir=WORK / f"s3-{os.getpid()}").start() as server:
        yield server


def write_catalog(path: Path, rows: int, resolution: str = "1K") -> Path:
    """A catalog of distinct products."""
    pd.DataFrame({
        "sku": [f"B-{i:07d}" for i in range(rows)],
        "prompt": [f"Studio photo of benchmark product {i}" for i in range(rows)],
        "resolution": [resolution] * rows,
    }).to_csv(path, index=False)
    return path


@dataclass
class ChildRun:
    """What a measured child process did."""

    returncode: int
    wall_s: float
    cpu_s: float
    max_rss_mib: float
    stdout: str
    stderr: str


def run_child(args: list[str], env: dict | None = None, timeout: float = 1800,
              cwd: Path | None = None) -> ChildRun:
    """Run a child process; CPU (user + sys) and peak RSS of it and its waited children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildRun(done.returncode, wall, cpu, after.ru_maxrss / 1024, done.stdout,
                    done.stderr)


def pipeline_env(s3: LocalS3, emulator_url: str, extra: dict | None = None) -> dict:
    """Environment of a pipeline child process pointed at the benchmark services."""
    env = {**os.environ, **s3.env(), "CATALOG_IMAGES_EMULATOR_URL": emulator_url,
           "CATALOG_IMAGES_SPOOL_DIR": str(WORK / "spool"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    env.update(extra or {})
    return env


def steady_s(totals: dict) -> float:
    """A pipeline report's first request to last upload (its generation span when it has
    none: no image uploaded)."""
    return totals["steady_s"] or totals["generation_s"]


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a markdown table (paste-ready for docs/benchmarks.md)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


def _status_kib(pid: int | str, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(root: int) -> list[int]:
    """PIDs of every process under ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


@dataclass
class TreePeaks:
    """Peak RSS of a measured CLI process and of the largest other process of its tree."""

    own_mib: float  # exact: the process's VmHWM at exit
    others_mib: float  # its descendants' VmHWM (the ephemeral Prefect API), sampled


def run_cli_with_peaks(args: list[str], env: dict, peak_file: Path,
                       timeout: float = 1800) -> tuple[ChildRun, TreePeaks]:
    """Run ``catalog-images ARGS``; peaks are per process (VmHWM), never inherited.

    ru_maxrss counts a parent's RSS at fork time into its child's, so it is not used here.
    """
    code = ("import atexit, sys; from pathlib import Path; out = Path(sys.argv.pop(1)); "
            "atexit.register(lambda: out.write_text(next(line.split()[1] for line in "
            "open('/proc/self/status') if line.startswith('VmHWM:')))); "
            "from catalog_images.cli.app import app; app(prog_name='catalog-images')")
    peak_file.unlink(missing_ok=True)
    others: dict[int, int] = {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, str(peak_file), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            for pid in _descendants(proc.pid):
                others[pid] = max(others.get(pid, 0), _status_kib(pid, "VmHWM"))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate(timeout=timeout)
    wall = time.monotonic() - started
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (ChildRun(proc.returncode, wall, cpu, own, stdout, stderr),
            TreePeaks(own, max(others.values(), default=0) / 1024))
