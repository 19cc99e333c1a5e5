"""Reliability soak: faults, leaked secrets, crashes, storage faults and bad input, for real.

    uv run python -m bench.soak [--rows 5000] [--crash-rows 400] [--only soak kill-upload ...]

Every scenario is a real `catalog-images run` in a child process against the emulator in its
own process, a SeaweedFS server (LocalS3) and a `prefect server` on loopback, all stopped by
PID. One table row per scenario, PASS or FAIL with its figures; exit status 1 when any check
fails. docs/reliability.md says what each check means and holds the latest table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.harness import (
    ROOT,
    WORK,
    ChildRun,
    emulator_get,
    emulator_post,
    emulator_process,
    pipeline_env,
    print_table,
    run_child,
    write_catalog,
)
from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.devtools.local_s3 import LocalS3
from catalog_images.devtools.prefect_server import PrefectServer

SOAK = WORK / "soak"
CANARY_KEY = "CANARY-KEY-7f3a9c1e-provider-key-must-not-leak"
CANARY_WRONG_KEY = "CANARY-KEY-0b6d2e94-wrong-key-must-not-leak"
CANARY_SECRET = "CANARY-S3-SECRET-5e8b07a2-must-not-leak"
FAULTS = {"429": 0.01, "503": 0.01, "500": 0.01, "hang": 0.004, "reset": 0.01,
          "malformed": 0.01, "truncated": 0.01, "safety": 0.01}
RETRIED_CLASSES = {"rate_limited", "unavailable", "timeout", "connection", "bad_response"}
FINAL_STATUSES = {"succeeded", "failed", "rejected", "skipped"}
PROVIDERS_TOML = "[providers.emulator]\ntimeout_s = 5.0\nconnect_timeout_s = 5.0\n"


@dataclass
class Outcome:
    """One scenario's verdict: named checks and the figures worth a table cell."""

    scenario: str
    figures: str = ""
    checks: dict[str, bool] = field(default_factory=dict)

    def check(self, name: str, passed: bool) -> None:
        """Record a check (a name used twice must pass both times)."""
        self.checks[name] = self.checks.get(name, True) and bool(passed)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def row(self) -> list[str]:
        failed = [name for name, ok in self.checks.items() if not ok]
        return [self.scenario, "PASS" if self.passed else "FAIL", self.figures,
                f"{len(self.checks) - len(failed)}/{len(self.checks)}"
                + (f" (failed: {'; '.join(failed)})" if failed else "")]


@dataclass
class Services:
    """The S3 server and Prefect API every scenario shares."""

    s3: LocalS3
    prefect: PrefectServer

    def env(self, emulator_url: str, spool: Path, **extra: str) -> dict[str, str]:
        """A pipeline child's environment: these services, a private spool, ``extra``."""
        return pipeline_env(self.s3, emulator_url, {
            "PREFECT_API_URL": self.prefect.api_url, "PREFECT_HOME": str(SOAK / "client-home"),
            "CATALOG_IMAGES_SPOOL_DIR": str(spool), **extra})


def cli(catalog: Path, dest: str, *extra: str) -> list[str]:
    """The `catalog-images run` command line."""
    return [sys.executable, "-m", "catalog_images.cli", "run", "--catalog", str(catalog),
            "--dest", dest, "--no-progress", *extra]


def keys_under(s3: LocalS3, prefix: str) -> dict[str, int]:
    """Every object under ``prefix`` of the bucket: key -> size."""
    found: dict[str, int] = {}
    for page in s3.client().get_paginator("list_objects_v2").paginate(
            Bucket=s3.bucket, Prefix=prefix):
        found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


def billing(outcome: Outcome, ledger: dict, prompts: list[str], bound: int) -> int:
    """Check each prompt is billed, at most twice, twice only ``bound`` times; return that."""
    by_prompt = ledger["by_prompt"]
    twice = [p for p, n in by_prompt.items() if n > 1]
    outcome.check("every prompt billed", set(map(sha256_hex, prompts)) <= set(by_prompt))
    outcome.check("no prompt billed 3+ times", all(by_prompt[p] == 2 for p in twice))
    outcome.check(f"billed twice <= {bound} (in flight)", len(twice) <= bound)
    return len(twice)


def spooled(spool: Path) -> int:
    """Complete images waiting in a spool (their metadata file marks them complete)."""
    return sum(1 for _ in spool.rglob("*.json"))


def prompts_of(rows: int) -> list[str]:
    """The prompts harness.write_catalog writes."""
    return [f"Studio photo of benchmark product {i}" for i in range(rows)]


def report_rows(path: Path) -> tuple[dict, list[dict]]:
    """(totals, rows) of a local report, or empty when the run wrote none."""
    if not path.exists():
        return {}, []
    report = json.loads(path.read_text())
    return report["totals"], report["rows"]


# --------------------------------------------------------------------------- fault soak


def fault_soak(svc: Services, rows: int) -> list[Outcome]:
    """5,000 rows through every retryable fault plus safety blocks, with canary secrets."""
    soak, canary = Outcome("1. fault soak"), Outcome("2. secrets canary")
    catalog = write_catalog(SOAK / "soak.csv", rows)
    providers = SOAK / "providers.toml"
    providers.write_text(PROVIDERS_TOML)
    spool, report, bad_report = SOAK / "spool-soak", SOAK / "soak.json", SOAK / "badkey.json"
    dest, bad_dest = f"s3://{svc.s3.bucket}/soak", f"s3://{svc.s3.bucket}/soak-badkey"
    faults = [f"--fault={kind}={p}" for kind, p in FAULTS.items()]
    with emulator_process("--latency", "0.05", "--jitter", "0.15", "--seed", "7",
                          *faults) as url:
        emulator_post(url, "config", {"api_key": CANARY_KEY, "hang_s": 60.0,
                                      "fault_retry_delay_s": 0.1})
        env = svc.env(url, spool, CATALOG_IMAGES_EMULATOR_KEY=CANARY_KEY,
                      AWS_SECRET_ACCESS_KEY=CANARY_SECRET)
        run = run_child(cli(catalog, dest, "--concurrency", "32", "--providers-file",
                            str(providers), "--report", str(report)), env=env)
        ledger, stats = emulator_get(url, "ledger"), emulator_get(url, "stats")
        bad_catalog = write_catalog(SOAK / "badkey.csv", 10)
        bad = run_child(cli(bad_catalog, bad_dest, "--report", str(bad_report)),
                        env={**env, "CATALOG_IMAGES_EMULATOR_KEY": CANARY_WRONG_KEY})
    totals, results = report_rows(report)
    statuses = Counter(r["status"] for r in results)
    failed = [r for r in results if r["status"] == "failed"]
    soak.check("exit 0/1 with a report", run.returncode in (0, 1) and bool(results))
    soak.check("report has every row", len(results) == rows == totals.get("rows"))
    soak.check("final statuses only", set(statuses) <= FINAL_STATUSES)
    soak.check("failed only for safety", all(
        r["error_class"] == "safety" and "safety" in (r["reason"] or "").lower()
        for r in failed))
    soak.check("safety failures == safety injected",
               len(failed) == stats["injected"].get("safety", 0))
    soak.check("every retryable class retried",
               set(totals.get("retries_by_class", {})) >= RETRIED_CLASSES)
    soak.check("failed rows not billed", not {r["prompt_sha256"] for r in failed}
               & set(ledger["by_prompt"]))
    twice = sum(1 for n in ledger["by_prompt"].values() if n > 1)
    soak.check("no prompt billed twice", twice == 0)
    soak.check("images billed == succeeded", ledger["images"] == statuses["succeeded"])
    soak.check("cost == ledger to the cent",
               round(totals.get("cost_usd", -1), 2) == round(ledger["usd"], 2))
    objects = keys_under(svc.s3, "soak/images/")
    soak.check("every succeeded image in S3 at its size", all(
        objects.get(r["s3_key"]) == r["bytes"] for r in results if r["status"] == "succeeded"))
    soak.figures = (
        f"{rows} rows: {statuses['succeeded']} ok, {len(failed)} failed (safety); "
        f"{stats['requests']} requests, {sum(stats['injected'].values())} faults injected, "
        f"retries {dict(sorted(totals.get('retries_by_class', {}).items()))}; "
        f"billed twice {twice}; ${totals.get('cost_usd', 0):.2f} = ledger "
        f"${ledger['usd']:.2f}; {run.wall_s:.0f} s")

    bad_totals, _ = report_rows(bad_report)
    canary.check("wrong key: every row failed auth",
                 bad.returncode == 1 and bad_totals.get("failures_by_class") == {"auth": 10})
    texts, controls = gather_texts(svc, [run, bad], [report, bad_report], spool,
                                   ["soak/", "soak-badkey/"])
    run_id = json.loads(report.read_text())["run_id"] if report.exists() else "?"
    canary.check("search reached the artifacts (run id in Prefect DB)",
                 run_id.encode() in controls)
    leaks = [name for name, data in texts.items()
             if any(c.encode() in data for c in (CANARY_KEY, CANARY_WRONG_KEY, CANARY_SECRET))]
    canary.check("no canary anywhere", not leaks)
    canary.figures = (f"searched {len(texts)} sources ({sum(map(len, texts.values())) >> 20} "
                      f"MiB): stdout/stderr, reports, manifests, every object and its "
                      f"metadata, spool, Prefect DB and logs; leaks: {leaks or 'none'}")
    return [soak, canary]


def gather_texts(svc: Services, runs: list[ChildRun], reports: list[Path], spool: Path,
                 prefixes: list[str]) -> tuple[dict[str, bytes], bytes]:
    """Everything a run left that a person or a tool could read, by name; and the Prefect
    database alone (the positive control: it must hold the run id)."""
    texts: dict[str, bytes] = {}
    for i, run in enumerate(runs):
        texts[f"run{i}.stdout+stderr"] = (run.stdout + run.stderr).encode()
    for path in reports:
        texts[path.name] = path.read_bytes() if path.exists() else b""
    client = svc.s3.client(max_pool_connections=16)
    objects = [k for prefix in prefixes for k in keys_under(svc.s3, prefix)]

    def read(key: str) -> bytes:
        head = client.head_object(Bucket=svc.s3.bucket, Key=key)
        data = json.dumps(head["Metadata"]).encode()
        if "/images/" not in key:
            body = client.get_object(Bucket=svc.s3.bucket, Key=key)["Body"].read()
            data += body
            if key.endswith(".parquet"):  # compressed pages: search the decoded rows too
                rows = pq.read_table(pa.BufferReader(body)).to_pylist()
                data += json.dumps(rows, default=str).encode()
        return data

    with ThreadPoolExecutor(16) as pool:
        for key, data in zip(objects, pool.map(read, objects), strict=True):
            texts[f"s3:{key}"] = data
    for root in (spool, SOAK / "client-home", svc.prefect.home):
        for path in (p for p in root.rglob("*") if p.is_file()):
            texts[str(path)] = path.read_bytes()
    database = b"".join(data for name, data in texts.items() if "prefect.db" in name)
    return texts, database


# --------------------------------------------------------------------------- crash and resume


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


def wait_for(condition: Callable[[], bool], timeout_s: float = 180) -> bool:
    """Poll ``condition`` every 20 ms until it holds or the time is up."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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


# --------------------------------------------------------------------------- storage faults


def s3_outage(svc: Services, rows: int, scenario: str, name: str, down_s: float | None,
              after_images: int) -> Outcome:
    """S3 stops once ``after_images`` are billed, for ``down_s`` seconds (None: until the
    run has ended); then the catalog runs again."""
    outcome = Outcome(scenario)
    catalog = write_catalog(SOAK / f"{name}.csv", rows)
    spool, first_report = SOAK / f"spool-{name}", SOAK / f"{name}1.json"
    report = SOAK / f"{name}2.json"
    with emulator_process("--latency", "0.1", "--jitter", "0.1", "--seed", "5") as url:
        command = cli(catalog, f"s3://{svc.s3.bucket}/{name}", "--concurrency", "8")

        def outage() -> None:
            wait_for(lambda: emulator_get(url, "ledger")["images"] >= after_images)
            if down_s is None:
                svc.s3.stop()  # our data dir is kept; start() below picks new ports
            else:
                svc.s3.restart(down_s=down_s)

        thread = threading.Thread(target=outage, daemon=True)
        thread.start()
        first = run_child(command + ["--report", str(first_report)], env=svc.env(url, spool))
        thread.join(timeout=120)
        if not svc.s3.running:
            svc.s3.start()
        in_spool = spooled(spool)
        second = run_child(command + ["--report", str(report)], env=svc.env(url, spool))
        ledger = emulator_get(url, "ledger")
    totals1, rows1 = report_rows(first_report)
    totals2, rows2 = report_rows(report)
    upload_failed = [r for r in rows1 if r["status"] == "failed"]
    from_spool = sum(1 for r in rows2 if (r["reason"] or "").startswith("uploaded from spool"))
    outcome.check("run 1 reports every row, exit 0/1",
                  len(rows1) == rows and first.returncode in (0, 1))
    if down_s is None:
        outcome.check("run 1 says the report was not uploaded",
                      "report was not uploaded" in first.stdout + first.stderr)
    outcome.check("failed only on upload", all(r["error_class"] == "upload"
                                               for r in upload_failed))
    outcome.check("failed uploads were spooled", in_spool == len(upload_failed))
    outcome.check("re-run exits 0, uploads the spool", second.returncode == 0
                  and from_spool == len(upload_failed) and totals2.get("failed") == 0)
    outcome.check("every image in S3", len(keys_under(svc.s3, f"{name}/images/")) == rows)
    outcome.check("billed once each", ledger["images"] == rows
                  and billing(outcome, ledger, prompts_of(rows), 0) == 0)
    outcome.figures = (f"{rows} rows: run 1 exit {first.returncode}, "
                       f"{totals1.get('succeeded', 0)} ok, "
                       f"{len(upload_failed)} upload failed (spooled {in_spool}); re-run "
                       f"{from_spool} from spool, {totals2.get('skipped', 0)} unchanged; "
                       f"{ledger['images']} billed for {rows} rows")
    return outcome


def spool_disk_full(svc: Services, rows: int) -> Outcome | None:
    """The spool on a real, full filesystem (a 64 KiB tmpfs filled up): every paid image must
    still reach S3. None when this machine cannot mount a tmpfs (it needs root)."""
    spool = SOAK / "spool-full"
    spool.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(spool)],
                             capture_output=True)
    if mounted.returncode != 0:
        print("4f. spool disk full: not run (cannot mount a tmpfs here)", flush=True)
        return None
    outcome = Outcome("4f. spool disk full (real tmpfs)")
    try:
        filler = spool / "filler"
        with open(filler, "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass  # full
        catalog = write_catalog(SOAK / "spool-full.csv", rows)
        report = SOAK / "spool-full.json"
        with emulator_process("--latency", "0.1", "--seed", "9") as url:
            run = run_child(cli(catalog, f"s3://{svc.s3.bucket}/spool-full", "--concurrency",
                                "8", "--report", str(report)), env=svc.env(url, spool))
            ledger = emulator_get(url, "ledger")
        left = sorted(p.name for p in spool.rglob("*") if p.is_file() and p != filler)
    finally:
        subprocess.run(["umount", str(spool)], check=False)
    totals, results = report_rows(report)
    unspooled = sum(1 for r in results if "without a spool copy" in (r["reason"] or ""))
    outcome.check("exit 0, every row an image", run.returncode == 0
                  and totals.get("succeeded") == rows)
    outcome.check("every image in S3", len(keys_under(svc.s3, "spool-full/images/")) == rows)
    outcome.check("each row says it had no spool copy", unspooled == rows)
    outcome.check("no partial file left in the spool", not left)
    twice = billing(outcome, ledger, prompts_of(rows), 0)
    outcome.figures = (f"{rows} rows, spool on a full 64 KiB tmpfs: exit {run.returncode}, "
                       f"{totals.get('succeeded', 0)} ok, {unspooled} uploaded without a "
                       f"spool copy, {len(left)} files left; billed twice {twice}")
    return outcome


def refused_before_any_request(svc: Services, scenario: str, dest: str, expect: str,
                               s3: LocalS3 | None = None, **env_extra: str) -> Outcome:
    """A destination the pipeline cannot use: exit 2 naming it, no provider request."""
    outcome = Outcome(scenario)
    catalog = write_catalog(SOAK / "small.csv", 5)
    with emulator_process() as url:
        env = svc.env(url, SOAK / "spool-refused", **env_extra)
        if s3 is not None:
            env["AWS_ENDPOINT_URL"] = s3.endpoint_url
        run = run_child(cli(catalog, dest), env=env)
        requests = emulator_get(url, "stats")["requests"]
    output = run.stdout + run.stderr
    message = re.sub(r"\s+", " ", output[output.find("error:"):]).split(")")[0] + ")"
    outcome.check("exit 2", run.returncode == 2)
    outcome.check(f"message says {expect!r}", re.search(expect, output) is not None)
    outcome.check("no provider request", requests == 0)
    outcome.check("no canary in output", CANARY_SECRET not in output)
    outcome.figures = f"exit {run.returncode}, {requests} requests: {message}"
    return outcome


def wrong_credentials(svc: Services) -> list[Outcome]:
    """A second SeaweedFS that enforces its credentials, called with wrong ones."""
    with LocalS3(data_dir=SOAK / "s3-auth", require_credentials=True) as strict:
        return [
            refused_before_any_request(
                svc, "4d. wrong S3 secret", f"s3://{strict.bucket}/p", "403|Forbidden|denied",
                s3=strict, AWS_SECRET_ACCESS_KEY=CANARY_SECRET),
            refused_before_any_request(
                svc, "4e. unknown S3 access key", f"s3://{strict.bucket}/p",
                "403|Forbidden|InvalidAccessKeyId|denied", s3=strict,
                AWS_ACCESS_KEY_ID="nobody-soak"),
        ]


# --------------------------------------------------------------------------- bad input


def bad_input() -> Outcome:
    """The bad-input corpus (tests/test_bad_input.py): planning of hostile catalogs."""
    outcome = Outcome("5. bad-input corpus")
    run = run_child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     str(ROOT / "tests" / "test_bad_input.py")])
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-200:]
    outcome.check("pytest passes", run.returncode == 0)
    outcome.check("no xfail left", "xfail" not in summary)
    outcome.figures = f"{summary.strip('= ')}"
    return outcome


# --------------------------------------------------------------------------- main


@contextmanager
def services() -> Iterator[Services]:
    """SeaweedFS and `prefect server` on loopback, in fresh directories, stopped by PID."""
    shutil.rmtree(SOAK, ignore_errors=True)
    SOAK.mkdir(parents=True)
    with LocalS3(data_dir=SOAK / "s3") as s3, PrefectServer(SOAK / "prefect-home") as prefect:
        yield Services(s3, prefect)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--crash-rows", type=int, default=400)
    parser.add_argument("--only", nargs="*", help="soak, kill-generation, kill-upload, "
                        "kill-report, kill-batch, sigterm, overlap, outage, outage-end, "
                        "spool-full, bucket, credentials, bad-input")
    args = parser.parse_args()
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with services() as svc:
        steps: dict[str, Callable[[], Any]] = {
            "soak": lambda: fault_soak(svc, args.rows),
            **{f"kill-{p}": (lambda p=p: crash_case(svc, p, args.crash_rows))
               for p in ("generation", "upload", "report")},
            "kill-batch": lambda: repeated_stops(svc, args.crash_rows // 2, 6, "batch",
                                                 signal.SIGKILL),
            "sigterm": lambda: repeated_stops(svc, args.crash_rows, 5, "standard",
                                              signal.SIGTERM),
            "overlap": lambda: overlapping_runs(svc, args.crash_rows // 2),
            "outage": lambda: s3_outage(svc, args.crash_rows, "4a. S3 down 12 s mid-run",
                                        "outage", 12.0, args.crash_rows // 5),
            "outage-end": lambda: s3_outage(
                svc, args.crash_rows, "4b. S3 down from the last images on", "outage-end",
                None, args.crash_rows - 10),
            "spool-full": lambda: spool_disk_full(svc, args.crash_rows // 4),
            "bucket": lambda: refused_before_any_request(
                svc, "4c. bucket does not exist", "s3://no-such-bucket-soak/p",
                "no-such-bucket-soak"),
            "credentials": lambda: wrong_credentials(svc),
            "bad-input": bad_input,
        }
        print(f"services up in {time.monotonic() - started:.0f} s", flush=True)
        for name, step in steps.items():
            if args.only and name not in args.only:
                continue
            begun = time.monotonic()
            result = step()
            if result is None:
                continue
            for item in result if isinstance(result, list) else [result]:
                outcomes.append(item)
                print(f"{item.row()[1]} {item.scenario} ({time.monotonic() - begun:.0f} s): "
                      f"{item.figures}", flush=True)
    print_table(f"Reliability soak ({time.monotonic() - started:.0f} s in all)",
                ["scenario", "result", "figures", "checks"], [o.row() for o in outcomes])
    sys.exit(0 if all(o.passed for o in outcomes) else 1)


if __name__ == "__main__":
    main()
