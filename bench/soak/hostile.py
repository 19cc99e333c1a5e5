"""Scenario 6: hostile providers. Every wire format answers with the emulator's hostile mode
(oversized and gzip-bomb bodies, deep JSON, invalid base64, PNG bombs, result URLs to the
metadata address, another loopback address and a redirect), with the default caps.

Checks: each run ends by itself with a report of every row; each failed row failed for a
clear, known reason (refused or bad_response, never an internal error); the pipeline's peak
RSS stays under 1 GiB; the emulator's second host (where result URLs point) got no request
carrying the key; the next run of the same destination, without faults, delivers every row.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.harness import ChildRun, emulator_get, emulator_post, emulator_process, run_child
from bench.harness import write_catalog as bench_catalog
from bench.soak.common import CANARY_KEY, SOAK, Outcome, Services, cli, report_rows

HOSTILE = {
    "emulator": ("oversized", "gzip_bomb", "deep_json", "bad_base64", "png_bomb"),
    "openai-url": ("oversized", "gzip_bomb", "png_bomb", "url_link_local", "url_loopback",
                   "url_redirect"),
    "async-task": ("deep_json", "png_bomb", "url_link_local", "url_loopback", "url_redirect"),
}
CLEAR_CLASSES = {"refused", "bad_response"}
RSS_LIMIT_MIB = 1024
PROVIDERS = """
[providers.emulator]
timeout_s = 20.0

[providers.openai-url]
kind = "openai-images"
base_url = "{url}"
auth = "bearer"
api_key_env = "CATALOG_IMAGES_EMULATOR_KEY"
response_format = "url"
timeout_s = 20.0
results_allow_http = true
results_private_networks = ["127.0.0.1/32"]

[providers.async-task]
kind = "async-task"
base_url = "{url}"
auth = "bearer"
api_key_env = "CATALOG_IMAGES_EMULATOR_KEY"
model = "nano-banana-pro"
poll_initial_s = 0.05
poll_max_s = 0.5
task_deadline_s = 60.0
timeout_s = 20.0
results_allow_http = true
results_private_networks = ["127.0.0.1/32"]
"""


def hostile_providers(svc: Services, rows: int) -> Outcome:
    """Each wire format through its hostile faults, then a clean run of each destination."""
    outcome = Outcome("6. hostile providers")
    catalog = bench_catalog(SOAK / "hostile.csv", rows)
    providers = SOAK / "hostile-providers.toml"
    runs: list[tuple[str, ChildRun, Path]] = []
    with emulator_process("--latency", "0.05", "--seed", "13", "--second-host") as url:
        providers.write_text(PROVIDERS.format(url=url))
        env = svc.env(url, SOAK / "spool-hostile", CATALOG_IMAGES_EMULATOR_KEY=CANARY_KEY)
        emulator_post(url, "config", {"api_key": CANARY_KEY, "hang_s": 30.0})
        for name, kinds in HOSTILE.items():
            emulator_post(url, "config", {"faults": {k: 0.3 / len(kinds) for k in kinds}})
            report = SOAK / f"hostile-{name}.json"
            runs.append((name, _run(svc, catalog, name, providers, env, report), report))
        emulator_post(url, "config", {"faults": {}})
        again = [(name, _run(svc, catalog, name, providers, env, SOAK / f"again-{name}.json"),
                  SOAK / f"again-{name}.json") for name in HOSTILE]
        foreign = emulator_get(url, "foreign")
        stats = emulator_get(url, "stats")
    _judge(outcome, rows, runs, again, foreign)
    peak = max(run.max_rss_mib for _, run, _ in runs)
    failed = Counter(c for _, _, report in runs for c in _failures(report))
    outcome.figures = (
        f"{len(HOSTILE)} wire formats x {rows} rows, {sum(stats['injected'].values())} hostile "
        f"answers injected {dict(sorted(stats['injected'].items()))}; rows failed "
        f"{dict(sorted(failed.items()))}; peak RSS {peak:.0f} MiB; the second host got "
        f"{len(foreign['requests'])} requests")
    return outcome


def _run(svc: Services, catalog: Path, provider: str, providers: Path, env: dict,
         report: Path) -> ChildRun:
    dest = f"s3://{svc.s3.bucket}/hostile-{provider}"
    return run_child(cli(catalog, dest, "--provider", provider, "--providers-file",
                         str(providers), "--concurrency", "8", "--report", str(report)),
                     env=env, timeout=900)


def _failures(report: Path) -> list[str]:
    _, results = report_rows(report)
    return [r["error_class"] for r in results if r["status"] == "failed"]


def _judge(outcome: Outcome, rows: int, runs: list, again: list, foreign: dict) -> None:
    for name, run, report in runs:
        totals, results = report_rows(report)
        outcome.check("each run ends by itself with a report of every row",
                      run.returncode in (0, 1) and len(results) == rows)
        outcome.check("failed rows failed for a clear reason", all(
            r["error_class"] in CLEAR_CLASSES and r["reason"] for r in results
            if r["status"] == "failed"))
        outcome.check(f"{name}: hostile answers reached it", bool(_failures(report)))
        outcome.check(f"peak RSS under {RSS_LIMIT_MIB} MiB", run.max_rss_mib < RSS_LIMIT_MIB)
    requests = foreign.get("requests") or []
    outcome.check("result URLs reached the second host", bool(requests))
    outcome.check("no key reached the second host", not any(
        CANARY_KEY in str(r) or "authorization" in {k.lower() for k in r["headers"]}
        for r in requests))
    outcome.check("next run of each destination delivers every row", all(
        run.returncode == 0 and not _failures(report) for _, run, report in again))
