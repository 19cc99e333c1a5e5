"""What every soak scenario shares: verdicts, the services, the CLI line, S3 listings,
billing checks and report reading."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import WORK, pipeline_env
from catalog_images.catalog.fingerprint import sha256_hex
from catalog_images.destination.spool import waiting_images
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
    """Images waiting in a spool: entry files, and slots holding one."""
    return waiting_images(spool)


def prompts_of(rows: int) -> list[str]:
    """The prompts harness.write_catalog writes."""
    return [f"Studio photo of benchmark product {i}" for i in range(rows)]


def report_rows(path: Path) -> tuple[dict, list[dict]]:
    """(totals, rows) of a local report, or empty when the run wrote none."""
    if not path.exists():
        return {}, []
    report = json.loads(path.read_text())
    return report["totals"], report["rows"]


def wait_for(condition: Callable[[], bool], timeout_s: float = 180) -> bool:
    """Poll ``condition`` every 20 ms until it holds or the time is up."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
