"""Throughput and orchestration cost: the pipeline against the ideal and a bare loop.

    uv run python -m bench.throughput [--rows 2000] [--concurrency 64] [--latency 0.5]
        [--cpu-rows 1000,10000]

The emulator runs in its own process at a fixed latency; SeaweedFS on loopback. The bare
loop (bench/bare_loop.py) calls the same emulator and uploads the same bytes to the same S3
with no orchestration. Steady state is first request to last upload; wall is the whole
process, Prefect's ephemeral API start included. CPU is user + sys of the measured process
and its children (the ephemeral Prefect API included), per image.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.harness import (
    WORK,
    emulator_process,
    local_s3,
    pipeline_env,
    print_table,
    run_child,
    write_catalog,
)


def run_bare(s3, url: str, rows: int, concurrency: int) -> dict:
    """The minimal asyncio + httpx + semaphore loop."""
    child = run_child([sys.executable, "-m", "bench.bare_loop", url, s3.bucket, str(rows),
                       str(concurrency)], env=pipeline_env(s3, url))
    if child.returncode:
        raise RuntimeError(f"bare loop failed: {child.stderr[-2000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return {"images": result["images"], "steady_s": result["steady_s"], "wall_s": child.wall_s,
            "cpu_s": child.cpu_s, "rss_mib": child.max_rss_mib}


def run_pipeline(s3, url: str, rows: int, concurrency: int, tag: str) -> dict:
    """The catalog-images CLI, one run, in its own process."""
    catalog = write_catalog(WORK / f"catalog-{rows}.csv", rows)
    report = WORK / f"report-{tag}.json"
    child = run_child(
        [sys.executable, "-m", "catalog_images.cli", "run", "--catalog", str(catalog),
         "--dest", f"s3://{s3.bucket}/bench-{tag}", "--concurrency", str(concurrency),
         "--report", str(report), "--no-progress"], env=pipeline_env(s3, url))
    if child.returncode:
        raise RuntimeError(f"pipeline failed: {child.stderr[-3000:]}")
    totals = json.loads(report.read_text())["totals"]
    return {"images": totals["succeeded"], "steady_s": totals["generation_s"],
            "wall_s": child.wall_s, "cpu_s": child.cpu_s, "rss_mib": child.max_rss_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--cpu-rows", default="1000,10000")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    ideal = args.concurrency / args.latency
    with local_s3() as s3, emulator_process("--latency", str(args.latency)) as url:
        bare = run_bare(s3, url, args.rows, args.concurrency)
        pipe = run_pipeline(s3, url, args.rows, args.concurrency, f"t{args.rows}")
        rows = []
        for name, r in (("bare asyncio + httpx + aiobotocore", bare), ("catalog-images", pipe)):
            steady = r["images"] / r["steady_s"]
            rows.append([name, r["images"], f"{steady:.1f}", f"{steady / ideal:.2f}",
                         f"{steady / (bare['images'] / bare['steady_s']):.2f}",
                         f"{r['wall_s']:.1f}", f"{r['wall_s'] - bare['wall_s']:+.1f}"])
        print_table(
            f"Throughput: {args.rows} rows, C={args.concurrency}, latency {args.latency}s "
            f"(ideal {ideal:.0f} images/s)",
            ["design", "images", "steady images/s", "× ideal", "× bare", "wall s",
             "wall − bare s"], rows)
        cpu_rows = []
        for count in (int(n) for n in args.cpu_rows.split(",") if n):
            b = run_bare(s3, url, count, args.concurrency)
            p = run_pipeline(s3, url, count, args.concurrency, f"c{count}")
            cpu_rows.append([
                count, f"{1000 * b['cpu_s'] / b['images']:.2f}",
                f"{1000 * p['cpu_s'] / p['images']:.2f}",
                f"{(p['cpu_s'] / p['images']) / (b['cpu_s'] / b['images']):.2f}",
                f"{p['rss_mib']:.0f}"])
        print_table("Orchestration cost: CPU ms per image (user + sys, Prefect API included)",
                    ["rows", "bare loop", "catalog-images", "ratio", "peak RSS MiB"],
                    cpu_rows)


if __name__ == "__main__":
    main()
