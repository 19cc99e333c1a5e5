"""Scenarios 1-2: a fault soak through every retryable fault, and the secrets canary."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.harness import (
    ChildRun,
    emulator_get,
    emulator_post,
    emulator_process,
    run_child,
    write_catalog,
)
from bench.soak.common import (
    CANARY_KEY,
    CANARY_SECRET,
    CANARY_WRONG_KEY,
    FAULTS,
    FINAL_STATUSES,
    PROVIDERS_TOML,
    RETRIED_CLASSES,
    SOAK,
    Outcome,
    Services,
    cli,
    keys_under,
    report_rows,
)


def fault_soak(svc: Services, rows: int) -> list[Outcome]:
    """5,000 rows through every retryable fault plus safety blocks, with canary secrets."""
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
    return [_judge_soak(svc, rows, run, report, ledger, stats),
            _judge_canary(svc, run, bad, report, bad_report, spool)]


def _judge_soak(svc: Services, rows: int, run: ChildRun, report: Path, ledger: dict,
                stats: dict) -> Outcome:
    """Scenario 1's checks: every row reported, failed only for safety, billed once."""
    soak = Outcome("1. fault soak")
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
    return soak


def _judge_canary(svc: Services, run: ChildRun, bad: ChildRun, report: Path, bad_report: Path,
                  spool: Path) -> Outcome:
    """Scenario 2's checks: no canary secret in anything both runs left behind."""
    canary = Outcome("2. secrets canary")
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
    return canary


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
