"""Scenarios 3: kill -9 at each point of a run, repeated stops, overlapping runs."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import emulator_get, emulator_post, emulator_process, run_child, write_catalog
from bench.soak.common import (
    SOAK,
    Outcome,
    Services,
    billing,
    cli,
    keys_under,
    prompts_of,
    report_rows,
    spooled,
    wait_for,
)
from catalog_images.devtools.local_s3 import LocalS3


def crash_case(svc: Services, point: str, rows: int, concurrency: int = 8) -> Outcome:
    """SIGKILL the CLI at ``point`` (generation, upload or report), then run it again."""
    outcome = Outcome(f"3. kill -9 during {point}")
    catalog = write_catalog(SOAK / f"crash-{point}.csv", rows)
    spool, report = SOAK / f"spool-crash-{point}", SOAK / f"crash-{point}.json"
    prefix = f"crash-{point}"
    with emulator_process("--latency", "0.1", "--jitter", "0.2", "--seed", "3") as url:
        env = svc.env(url, spool)
        command = cli(catalog, f"s3://{svc.s3.bucket}/{prefix}", "--concurrency",
                      str(concurrency))
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        images = lambda: emulator_get(url, "ledger")["images"]  # noqa: E731
        try:
            note = kill_at(point, proc, svc.s3, images, rows, spool, prefix)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        at_kill, in_spool = images(), spooled(spool)
        requests_at_kill = emulator_get(url, "stats")["requests"]
        rerun = run_child(command + ["--report", str(report)], env=env)
        ledger, stats = emulator_get(url, "ledger"), emulator_get(url, "stats")
    totals, results = report_rows(report)
    from_spool = sum(1 for r in results if (r["reason"] or "").startswith("uploaded from spool"))
    outcome.check("killed mid-way" if point != "report" else "killed after generation",
                  0 < at_kill < rows if point != "report" else at_kill == rows)
    outcome.check("re-run exits 0, no row failed",
                  rerun.returncode == 0 and totals.get("failed") == 0)
    outcome.check("every row done", totals.get("succeeded", 0) + totals.get("skipped", 0)
                  == rows == len(results))
    outcome.check("every image in S3", len(keys_under(svc.s3, f"{prefix}/images/")) == rows)
    if point == "upload":
        outcome.check("images were waiting in the spool", in_spool > 0)
        outcome.check("re-run uploaded each from the spool", from_spool == in_spool)
    if point == "report":
        outcome.check("re-run sent no request", stats["requests"] == requests_at_kill)
    twice = billing(outcome, ledger, prompts_of(rows), concurrency)
    outcome.figures = (
        f"{rows} rows, C={concurrency}: killed at {at_kill} billed, {in_spool} spooled{note}; "
        f"re-run {totals.get('succeeded', 0)} ok ({from_spool} from spool), "
        f"{totals.get('skipped', 0)} unchanged, ${totals.get('cost_usd', 0):.2f}; "
        f"billed twice {twice} (bound {concurrency})")
    return outcome


def repeated_stops(svc: Services, rows: int, stops: int, mode: str, number: signal.Signals,
                   seed: int = 7) -> Outcome:
    """Stop the CLI with ``number`` at ``stops`` random moments, then run it to the end.

    Batch mode: SIGKILL, with a slow create call keeping a window open where a job exists
    that the client has not heard of. Standard mode: SIGTERM/SIGINT, a graceful stop.
    Either way no prompt may be billed twice.
    """
    name = f"stops-{mode}"
    outcome = Outcome(f"3{'d' if mode == 'batch' else 'e'}. {mode} mode, {number.name} at "
                      f"{stops} random moments")
    rng = random.Random(seed)
    catalog = write_catalog(SOAK / f"{name}.csv", rows)
    spool, report = SOAK / f"spool-{name}", SOAK / f"{name}.json"
    latency = ("--latency", "0.5", "--jitter", "0.5") if mode == "standard" else ()
    with emulator_process(*latency, "--seed", "5") as url:
        emulator_post(url, "config", {"batch_create_latency_s": 1.0, "batch_delay_s": 3.0})
        env = svc.env(url, spool)
        extra = ("--mode", "batch", "--batch-rows", str(max(1, rows // 10)),
                 "--batch-poll", "0.3") if mode == "batch" else ("--concurrency", "8")
        command = cli(catalog, f"s3://{svc.s3.bucket}/{name}", *extra)
        moments, billed_at = [], []
        for _ in range(stops):
            sent = emulator_get(url, "stats")["requests"]
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            # A random moment once this run is at work (its first provider request, or 30 s
            # when it has nothing left to send), not while Prefect is starting.
            wait_for(lambda: emulator_get(url, "stats")["requests"] > sent,  # noqa: B023
                     timeout_s=30)
            moments.append(rng.uniform(0.0, 6.0))
            try:
                proc.wait(timeout=moments[-1])
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, number)
                proc.wait(timeout=120)
            billed_at.append(emulator_get(url, "ledger")["images"])
        jobs = batches_listed(url)
        rerun = run_child(command + ["--report", str(report)], env=env)
        ledger = emulator_get(url, "ledger")
    totals, results = report_rows(report)
    outcome.check("stopped after money was spent", max(billed_at) > 0)
    outcome.check("stopped before the end", min(billed_at) < rows)
    outcome.check("re-run exits 0, no row failed",
                  rerun.returncode == 0 and totals.get("failed") == 0)
    outcome.check("every image in S3", len(keys_under(svc.s3, f"{name}/images/")) == rows)
    outcome.check("no batch record left", not keys_under(svc.s3, f"{name}/state/batches/"))
    twice = billing(outcome, ledger, prompts_of(rows), 0)
    outcome.figures = (
        f"{rows} rows: stopped {', '.join(f'{m:.1f}' for m in moments)} s after each run's "
        f"first request, with "
        f"{', '.join(map(str, billed_at))} billed by then"
        + (f", {len(jobs)} jobs created (one per chunk)" if mode == "batch" else "")
        + f"; last run {totals.get('succeeded', 0)} ok, {totals.get('skipped', 0)} unchanged; "
        f"billed twice {twice} (bound 0)")
    return outcome


def overlapping_runs(svc: Services, rows: int, runs: int = 3) -> Outcome:
    """``runs`` runs of one catalog to one destination, started at the same moment (a
    schedule beside ad-hoc runs): the lease lets exactly one work, the others stop before
    any request, and no prompt is billed twice."""
    outcome = Outcome(f"3f. {runs} runs started together on one destination")
    name = "overlap"
    catalog = write_catalog(SOAK / f"{name}.csv", rows)
    with emulator_process("--latency", "0.5", "--jitter", "0.3", "--seed", "5") as url:
        env = svc.env(url, SOAK / f"spool-{name}")
        command = cli(catalog, f"s3://{svc.s3.bucket}/{name}", "--concurrency", "8")
        with ThreadPoolExecutor(runs) as pool:
            done = list(pool.map(lambda _: run_child(command, env=env), range(runs)))
        after = run_child(command, env=env)
        ledger = emulator_get(url, "ledger")
    codes = sorted(run.returncode for run in done)
    refused = [run for run in done if run.returncode == 2]
    outcome.check("exactly one run worked, the others exit 2", codes == [0] + [2] * (runs - 1))
    outcome.check("the refused ones name the run holding the destination", all(
        "is being refreshed by run" in re.sub(r"\s+", " ", run.stderr) for run in refused))
    outcome.check("every image in S3", len(keys_under(svc.s3, f"{name}/images/")) == rows)
    outcome.check("a later run finds every row unchanged", after.returncode == 0
                  and ledger["images"] == rows)
    outcome.check("no lease left", not keys_under(svc.s3, f"{name}/state/lease.json"))
    twice = billing(outcome, ledger, prompts_of(rows), 0)
    outcome.figures = (f"{rows} rows, {runs} runs at once: exit codes {codes}; refused in "
                       f"{', '.join(f'{run.wall_s:.0f}' for run in refused)} s; "
                       f"{ledger['images']} billed; billed twice {twice} (bound 0)")
    return outcome


def batches_listed(url: str) -> list[dict]:
    """Every batch job the emulator holds (GET /v1beta/batches)."""
    with urllib.request.urlopen(f"{url}/v1beta/batches?pageSize=1000", timeout=5) as answer:
        return json.loads(answer.read()).get("operations", [])


def kill_at(point: str, proc: subprocess.Popen, s3: LocalS3, images: Callable[[], int],
            rows: int, spool: Path, prefix: str) -> str:
    """Wait for the kill point, SIGKILL the CLI; return a note on what was caught."""
    if point == "generation":
        wait_for(lambda: images() >= rows * 0.4)
    elif point == "upload":  # freeze S3: images pile up in the spool, uploads hang
        wait_for(lambda: images() >= rows * 0.3)
        assert s3.pid is not None
        os.kill(s3.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: spooled(spool) >= 4, timeout_s=20)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            os.kill(s3.pid, signal.SIGCONT)
        return ", S3 frozen (SIGSTOP)"
    else:  # report: the first object under runs/ of this run
        client = s3.client()
        wait_for(lambda: client.list_objects_v2(
            Bucket=s3.bucket, Prefix=f"{prefix}/runs/").get("KeyCount", 0) > 0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        written = sorted(Path(k).name for k in keys_under(s3, f"{prefix}/runs/"))
        return f", run folder had {', '.join(written)}"
    os.kill(proc.pid, signal.SIGKILL)
    return ""
