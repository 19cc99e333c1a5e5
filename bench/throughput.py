"""Throughput and orchestration cost: the pipeline against the ideal and a bare loop.

    uv run python -m bench.throughput [--rows 2000] [--concurrency 64] [--latency 0.5]
        [--cpu-rows 2000,10000] [--small-runs 3] [--modes ephemeral,server]

The emulator runs in its own process at a fixed latency; SeaweedFS on loopback. The bare
loop (bench/bare_loop.py) calls the same emulator and uploads the same bytes to the same S3
with no orchestration. Each pipeline measure is taken in two modes: `ephemeral` (no
PREFECT_API_URL: the CLI starts Prefect's temporary API) and `server` (PREFECT_API_URL set
to a `prefect server` this script starts first and stops by PID). Steady state is first
request to last upload; wall is the whole process, command to exit. CPU is user + sys of the
measured process and its children (the ephemeral API included); in server mode the server's
own CPU over the run is read from /proc and added (column "server ms").
Shrink a run for iterations with e.g. `--rows 300 --cpu-rows 300 --small-runs 1`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from contextlib import contextmanager

from bench.harness import (
    WORK,
    _descendants,
    emulator_process,
    local_s3,
    pipeline_env,
    print_table,
    run_child,
    steady_s,
    write_catalog,
)
from catalog_images.devtools.prefect_server import PrefectServer

MODES = ("ephemeral", "server")
TARGETS = {"steady": 0.95, "wall ephemeral": 10.0, "wall server": 3.0, "cpu": 1.5,
           "small ephemeral": 10.0, "small server": 5.0}


def measured_env(s3, url: str, extra: dict | None = None) -> dict:
    """A child's environment; Python may write bytecode caches, as on a user's machine (with
    PYTHONDONTWRITEBYTECODE set, as on the project's workplace, every process compiles every
    module it imports: twice the CPU of importing the flow, 10.3 s against 5.0 s here)."""
    env = pipeline_env(s3, url, extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_bare(s3, url: str, rows: int, concurrency: int) -> dict:
    """The minimal asyncio + httpx + semaphore loop."""
    child = run_child([sys.executable, "-m", "bench.bare_loop", url, s3.bucket, str(rows),
                       str(concurrency)], env=measured_env(s3, url))
    if child.returncode:
        raise RuntimeError(f"bare loop failed: {child.stderr[-2000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return {"images": result["images"], "steady_s": result["steady_s"], "wall_s": child.wall_s,
            "cpu_s": child.cpu_s, "server_cpu_s": 0.0, "rss_mib": child.max_rss_mib}


def _tree_cpu_s(pid: int | None) -> float:
    """User + sys seconds so far of ``pid`` and every process under it (0 without a pid)."""
    if pid is None:
        return 0.0
    total = 0
    for each in (pid, *_descendants(pid)):
        try:
            with open(f"/proc/{each}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


class Pipeline:
    """Runs of the catalog-images CLI in one mode (``server`` set: PREFECT_API_URL)."""

    def __init__(self, s3, url: str, concurrency: int, server: PrefectServer | None) -> None:
        self.s3, self.url, self.concurrency, self.server = s3, url, concurrency, server
        self.mode = "server" if server else "ephemeral"
        self.env = measured_env(s3, url, server.env() if server else None)
        self.runs = 0

    def run(self, rows: int) -> dict:
        """One run of a fresh ``rows``-row catalog into a fresh prefix, in its own process."""
        self.runs += 1
        tag = f"{self.mode}-{rows}-{self.runs}"
        catalog = write_catalog(WORK / f"catalog-{rows}.csv", rows)
        report = WORK / f"report-{tag}.json"
        server_before = _tree_cpu_s(self.server.pid if self.server else None)
        child = run_child(
            [sys.executable, "-m", "catalog_images.cli", "run", "--catalog", str(catalog),
             "--dest", f"s3://{self.s3.bucket}/bench-{os.getpid()}-{tag}", "--concurrency",
             str(self.concurrency), "--report", str(report), "--no-progress"], env=self.env)
        server_cpu = _tree_cpu_s(self.server.pid if self.server else None) - server_before
        if child.returncode:
            raise RuntimeError(f"pipeline ({self.mode}) failed: {child.stderr[-3000:]}")
        totals = json.loads(report.read_text())["totals"]
        return {"images": totals["succeeded"], "steady_s": steady_s(totals),
                "wall_s": child.wall_s, "cpu_s": child.cpu_s + server_cpu,
                "server_cpu_s": server_cpu, "rss_mib": child.max_rss_mib}


@contextmanager
def pipelines(s3, url: str, concurrency: int, modes: list[str]):
    """A Pipeline per mode, each run once on a 3-row catalog first; the `server` one's Prefect
    server started here, stopped by PID."""
    server = PrefectServer(WORK / f"prefect-server-{os.getpid()}") if "server" in modes else None
    try:
        if server:
            server.start()
        pipes = {mode: Pipeline(s3, url, concurrency, server if mode == "server" else None)
                 for mode in modes}
        for pipe in pipes.values():  # not measured: a Prefect home's first run migrates
            pipe.run(3)              # its database, a one-off of a new machine (about 5 s)
        yield pipes
    finally:
        if server:
            server.stop()


def throughput_table(args, bare: dict, pipes: dict[str, dict]) -> list[list]:
    """Rows of the throughput table: the bare loop, then the pipeline in each mode."""
    ideal = args.concurrency / args.latency
    bare_rate = bare["images"] / bare["steady_s"]
    rows = []
    for name, r in (("bare asyncio + httpx + aiobotocore", bare),
                    *((f"catalog-images, {mode}", r) for mode, r in pipes.items())):
        steady = r["images"] / r["steady_s"]
        rows.append([name, r["images"], f"{steady:.1f}", f"{steady / ideal:.2f}",
                     f"{steady / bare_rate:.2f}", f"{r['wall_s']:.1f}",
                     f"{r['wall_s'] - bare['wall_s']:+.1f}"])
    return rows


def cpu_row(count: int, mode: str, bare: dict, pipe: dict) -> list:
    """One row of the CPU-per-image table."""
    per_bare = bare["cpu_s"] / bare["images"]
    per_pipe = pipe["cpu_s"] / pipe["images"]
    return [count, mode, f"{1000 * per_bare:.2f}", f"{1000 * per_pipe:.2f}",
            f"{1000 * pipe['server_cpu_s'] / pipe['images']:.2f}",
            f"{per_pipe / per_bare:.2f}", f"{pipe['rss_mib']:.0f}"]


def small_runs(pipes: dict[str, Pipeline], runs: int) -> dict[str, list[float]]:
    """Command-to-exit seconds of a 3-row catalog, ``runs`` times per mode."""
    return {mode: [pipe.run(3)["wall_s"] for _ in range(runs)] for mode, pipe in pipes.items()}


def verdicts(first: dict[str, dict], bare: dict, cpu: dict, small: dict) -> list[list]:
    """Issue 15's targets against this run's figures."""
    rows = []
    bare_rate = bare["images"] / bare["steady_s"]
    for mode, r in first.items():
        ratio = (r["images"] / r["steady_s"]) / bare_rate
        rows.append([f"steady × bare, {mode}", f"≥ {TARGETS['steady']}", f"{ratio:.2f}",
                     ratio >= TARGETS["steady"]])
        extra = r["wall_s"] - bare["wall_s"]
        limit = TARGETS[f"wall {mode}"]
        rows.append([f"wall − bare s, {mode}", f"≤ +{limit:.0f}", f"{extra:+.1f}",
                     extra <= limit])
    for (count, mode), ratio in cpu.items():
        rows.append([f"CPU per image × bare, {count} rows, {mode}",
                     f"≤ {TARGETS['cpu']}" if count >= 10_000 else "(≤ 1.5 at 10,000)",
                     f"{ratio:.2f}", ratio <= TARGETS["cpu"]])
    for mode, walls in small.items():
        median = statistics.median(walls)
        limit = TARGETS[f"small {mode}"]
        rows.append([f"3-row catalog, command to exit s, {mode}", f"≤ {limit:.0f}",
                     f"{median:.1f}", median <= limit])
    return [[*row[:3], "yes" if row[3] else "**no**"] for row in rows]


def measure(args, s3, url: str, modes: list[str]) -> None:
    """Every table of this benchmark, in one run."""
    with pipelines(s3, url, args.concurrency, modes) as pipes:
        bare = run_bare(s3, url, args.rows, args.concurrency)
        first = {mode: pipe.run(args.rows) for mode, pipe in pipes.items()}
        print_table(
            f"Throughput: {args.rows} rows, C={args.concurrency}, latency {args.latency}s "
            f"(ideal {args.concurrency / args.latency:.0f} images/s)",
            ["design", "images", "steady images/s", "× ideal", "× bare", "wall s",
             "wall − bare s"], throughput_table(args, bare, first))
        cpu_rows, cpu = [], {}
        for count in (int(n) for n in args.cpu_rows.split(",") if n):
            b = bare if count == args.rows else run_bare(s3, url, count, args.concurrency)
            for mode in pipes if count == args.rows else args.cpu_modes.split(","):
                p = first[mode] if count == args.rows else pipes[mode].run(count)
                cpu_rows.append(cpu_row(count, mode, b, p))
                cpu[(count, mode)] = (p["cpu_s"] / p["images"]) / (b["cpu_s"] / b["images"])
        print_table("Orchestration cost: CPU ms per image (user + sys, Prefect API included)",
                    ["rows", "mode", "bare loop", "catalog-images", "of which server",
                     "ratio", "peak RSS MiB"], cpu_rows)
        small = small_runs(pipes, args.small_runs)
        print_table(f"A 3-row catalog, command to exit (median of {args.small_runs})",
                    ["mode", "median s", "runs s"],
                    [[mode, f"{statistics.median(w):.1f}", ", ".join(f"{s:.1f}" for s in w)]
                     for mode, w in small.items()])
        print_table("Issue 15's targets", ["measure", "target", "this run", "met"],
                    verdicts(first, bare, cpu, small))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--cpu-rows", default="2000,10000",
                        help="row counts of the CPU table (the --rows runs are reused)")
    parser.add_argument("--cpu-modes", default="ephemeral",
                        help="modes measured at the CPU table's other row counts")
    parser.add_argument("--small-runs", type=int, default=3,
                        help="3-row runs per mode (the median is reported)")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= set(MODES) or not set(args.cpu_modes.split(",")) <= set(modes):
        parser.error(f"--modes and --cpu-modes take {', '.join(MODES)} (cpu modes ⊆ modes)")
    WORK.mkdir(exist_ok=True)
    with local_s3() as s3, emulator_process("--latency", str(args.latency)) as url:
        measure(args, s3, url, modes)


if __name__ == "__main__":
    main()
