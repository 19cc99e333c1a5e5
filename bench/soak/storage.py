"""Scenarios 4 and 5: S3 outages, a full spool disk, unusable destinations, bad input."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from bench.harness import ROOT, emulator_get, emulator_process, run_child, write_catalog
from bench.soak.common import (
    CANARY_SECRET,
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


def bad_input() -> Outcome:
    """The bad-input corpus (tests/e2e/test_bad_input.py): planning of hostile catalogs."""
    outcome = Outcome("5. bad-input corpus")
    run = run_child([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     str(ROOT / "tests" / "e2e" / "test_bad_input.py")])
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-200:]
    outcome.check("pytest passes", run.returncode == 0)
    outcome.check("no xfail left", "xfail" not in summary)
    outcome.figures = f"{summary.strip('= ')}"
    return outcome
