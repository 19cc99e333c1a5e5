"""Overload or noise: the adaptive window against random 503s and a real capacity limit.

    uv run python -m bench.overload [--rows 1000] [--concurrency 32] [--latency 0.5]

Three runs of the pipeline, each against a fresh emulator in its own process: no faults;
5 % random 503s (background noise, not caused by our load); and a model whose capacity
(``--max-concurrency``, half the pipeline's concurrency) answers every request beyond it
with an immediate 503. Throughput is images per second of generation; the 503 share is the
emulator's own count over the requests it received.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.harness import (
    WORK,
    emulator_get,
    emulator_process,
    local_s3,
    pipeline_env,
    print_table,
    run_child,
    steady_s,
    write_catalog,
)


def run_once(s3, url: str, catalog, concurrency: int, tag: str) -> dict:
    """One CLI run; its report's totals and the emulator's counters."""
    report = WORK / f"overload-{tag}.json"
    child = run_child(
        [sys.executable, "-m", "catalog_images.cli", "run", "--catalog", str(catalog),
         "--dest", f"s3://{s3.bucket}/overload-{tag}", "--concurrency", str(concurrency),
         "--report", str(report), "--no-progress"], env=pipeline_env(s3, url))
    if child.returncode not in (0, 1):
        raise RuntimeError(f"pipeline failed: {child.stderr[-3000:]}")
    totals = json.loads(report.read_text())["totals"]
    stats = emulator_get(url, "stats")
    unavailable = stats["by_status"].get("503", 0)
    return {"images": totals["succeeded"], "rate": totals["succeeded"] / steady_s(totals),
            "requests": stats["requests"], "503s": unavailable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    catalog = write_catalog(WORK / f"overload-{args.rows}.csv", args.rows)
    capacity = max(1, args.concurrency // 2)
    scenarios = [
        ("no faults", []),
        ("5 % random 503s", ["--fault", "503=0.05", "--seed", "5"]),
        (f"capacity {capacity} < concurrency", ["--max-concurrency", str(capacity)]),
    ]
    results = []
    with local_s3() as s3:
        for index, (name, options) in enumerate(scenarios):
            with emulator_process("--latency", str(args.latency), *options) as url:
                results.append((name, run_once(s3, url, catalog, args.concurrency, str(index))))
    clean = results[0][1]["rate"]
    rows = [[name, f"{r['images']}/{args.rows}", f"{r['rate']:.1f}", f"{r['rate'] / clean:.2f}",
             r["requests"], r["503s"], f"{r['503s'] / max(1, r['requests']):.1%}"]
            for name, r in results]
    print_table(
        f"Overload or noise: {args.rows} rows, concurrency {args.concurrency}, "
        f"latency {args.latency:g} s",
        ["emulator", "images", "images/s", "× no faults", "requests", "503s", "503 share"],
        rows)


if __name__ == "__main__":
    main()
