"""Quota utilization: how close the pipeline gets to a provider's RPM, and its 429 count.

    uv run python -m bench.quota [--rows 150] [--rpm 30] [--window 6]

The emulator enforces RPM requests per sliding window (scaled down from 60 s so a run takes
seconds). Utilization = requests sent ÷ the most the quota admits over the same span,
R·(span/W + 1); 1.0 is the quota used to the last request.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.harness import (
    WORK,
    emulator_get,
    emulator_post,
    emulator_process,
    local_s3,
    pipeline_env,
    print_table,
    run_child,
    write_catalog,
)

SCENARIOS = [
    ("configured RPM = real quota", 1.0),
    ("configured RPM = 2× real quota", 2.0),
    ("no RPM configured (adaptive only)", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150)
    parser.add_argument("--rpm", type=int, default=30)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    catalog = write_catalog(WORK / f"quota-{args.rows}.csv", args.rows)
    rows = []
    with local_s3() as s3, emulator_process("--latency", "0.2", "--rpm", str(args.rpm),
                                            "--window", str(args.window)) as url:
        for index, (name, factor) in enumerate(SCENARIOS):
            emulator_post(url, "reset", {})
            limits = "" if factor is None else (
                f"requests_per_window = {int(args.rpm * factor)}\nwindow_s = {args.window}\n")
            providers = WORK / f"quota-providers-{index}.toml"
            providers.write_text(
                f'[providers.bench]\nkind = "emulator"\nbase_url = "{url}"\n{limits}')
            report = WORK / f"quota-report-{index}.json"
            child = run_child(
                [sys.executable, "-m", "catalog_images.cli", "run", "--catalog", str(catalog),
                 "--dest", f"s3://{s3.bucket}/quota-{index}", "--provider", "bench",
                 "--providers-file", str(providers), "--concurrency", str(args.concurrency),
                 "--report", str(report), "--no-progress"], env=pipeline_env(s3, url))
            if child.returncode not in (0, 1):
                raise RuntimeError(child.stderr[-3000:])
            totals = json.loads(report.read_text())["totals"]
            stats = totals["providers"]["bench"]
            accepted = stats["requests"] - stats["429s"]
            utilization = accepted / (args.rpm * (stats["busy_s"] / args.window + 1))
            rows.append([name, f"{totals['succeeded']}/{args.rows}", stats["requests"],
                         emulator_get(url, "stats")["quota_429"], f"{utilization:.3f}",
                         f"{stats['busy_s']:.1f}"])
    print_table(
        f"Quota utilization: {args.rows} rows against {args.rpm} requests / {args.window:g} s",
        ["scenario", "images", "requests", "429s", "utilization", "busy s"], rows)


if __name__ == "__main__":
    main()
