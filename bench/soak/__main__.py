"""Reliability soak: faults, leaked secrets, crashes, storage faults, bad input and hostile
providers, for real.

    uv run python -m bench.soak [--rows 5000] [--crash-rows 400] [--only soak kill-upload ...]

Every scenario is a real `catalog-images run` in a child process against the emulator in its
own process, a SeaweedFS server (LocalS3) and a `prefect server` on loopback, all stopped by
PID. One table row per scenario, PASS or FAIL with its figures; exit status 1 when any check
fails. docs/reliability.md says what each check means and holds the latest table.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.harness import print_table
from bench.soak.common import SOAK, Outcome, Services
from bench.soak.crashes import crash_case, overlapping_runs, repeated_stops
from bench.soak.faults import fault_soak
from bench.soak.hostile import hostile_providers
from bench.soak.quota import huge_retry_after, per_day, sigterm_on_pause, spend_cap
from bench.soak.storage import (
    bad_input,
    refused_before_any_request,
    s3_outage,
    spool_disk_full,
    wrong_credentials,
)
from catalog_images.devtools.local_s3 import LocalS3
from catalog_images.devtools.prefect_server import PrefectServer


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
                        "spool-full, bucket, credentials, bad-input, hostile, daily, "
                        "daily-fallback, spend-cap, retry-after, sigterm-pause")
    parser.add_argument("--hostile-rows", type=int, default=60)
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
            "hostile": lambda: hostile_providers(svc, args.hostile_rows),
            "daily": lambda: per_day(svc, args.crash_rows // 2, fallback=False),
            "daily-fallback": lambda: per_day(svc, args.crash_rows // 2, fallback=True),
            "spend-cap": lambda: spend_cap(svc, args.crash_rows // 2),
            "retry-after": lambda: huge_retry_after(svc, args.crash_rows // 4),
            "sigterm-pause": lambda: sigterm_on_pause(svc, args.crash_rows // 2),
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
