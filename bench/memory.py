"""Memory: peak RSS of a 4K run and of planning a million-row catalog.

    uv run python -m bench.memory [--rows 10000] [--concurrency 32] [--latency 0.2]
        [--plan-rows 1000000]

1. `catalog-images run` over ``--rows`` 4K rows against the emulator (own process) with the
   upload to SeaweedFS: peak RSS of the pipeline process and of the largest process of its
   tree (the ephemeral Prefect API included).
2. `catalog-images estimate` over a ``--plan-rows`` CSV and Parquet catalog: the run's own
   planning code (destination index + validation into the local plan file), no request;
   once into an empty destination, once into one whose index already holds every row.
Target: both well under 1 GiB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.harness import (
    WORK,
    emulator_process,
    local_s3,
    pipeline_env,
    print_table,
    run_cli_with_peaks,
    write_catalog,
)
from bench.noop import seed_index
from catalog_images.destination.storage import S3Location

HEADER = ["measure", "rows", "images", "wall s", "pipeline process MiB",
          "largest child MiB", "largest process of the tree MiB"]


def measured(label: str, args: list[str], env: dict, rows: int, images: int = 0) -> list:
    """Run the CLI once; its table row."""
    child, peaks = run_cli_with_peaks(args, env, WORK / "memory-peak")
    if child.returncode:
        raise RuntimeError(f"{label} failed: {child.stderr[-3000:]}")
    return [label, rows, images, f"{child.wall_s:.1f}", f"{peaks.own_mib:.0f}",
            f"{peaks.others_mib:.0f}" if peaks.others_mib else "none",
            f"{max(peaks.own_mib, peaks.others_mib):.0f}"]


def big_catalog(rows: int) -> tuple[Path, Path]:
    """A CSV and a Parquet catalog of ``rows`` distinct products (1K, 2K and 4K)."""
    csv_path, parquet_path = WORK / f"memory-{rows}.csv", WORK / f"memory-{rows}.parquet"
    if not (csv_path.exists() and parquet_path.exists()):
        ids = pa.array(range(rows)).cast(pa.string())
        table = pa.table({
            "sku": pc.binary_join_element_wise("M-", ids, ""),
            "prompt": pc.binary_join_element_wise(
                "Studio photo of memory benchmark product ", ids, ""),
            "resolution": pa.array(["1K", "2K", "4K"] * (rows // 3) + ["2K"] * (rows % 3)),
        })
        pacsv.write_csv(table, csv_path)
        pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--plan-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    table = []
    with local_s3() as s3, emulator_process("--latency", str(args.latency)) as url:
        env = pipeline_env(s3, url)
        catalog = write_catalog(WORK / f"memory-4k-{args.rows}.csv", args.rows, "4K")
        report = WORK / "memory-report.json"
        row = measured("run, 4K images, S3 upload", [
            "run", "--catalog", str(catalog), "--dest", f"s3://{s3.bucket}/memory-4k",
            "--concurrency", str(args.concurrency), "--report", str(report), "--no-progress",
        ], env, args.rows)
        totals = json.loads(report.read_text())["totals"]
        row[0] += f" ({totals['bytes'] / max(1, totals['succeeded']) / 1024:.0f} KiB each)"
        row[2] = totals["succeeded"]
        table.append(row)
        csv_path, parquet_path = big_catalog(args.plan_rows)
        for path in (csv_path, parquet_path):
            table.append(measured(f"plan (estimate), {path.suffix[1:]}, empty destination", [
                "estimate", "--catalog", str(path), "--dest", f"s3://{s3.bucket}/memory-new",
            ], env, args.plan_rows))
        seed_index(s3, parquet_path, S3Location(s3.bucket, "memory-indexed"))
        table.append(measured("plan (estimate), csv, every row in the destination's index", [
            "estimate", "--catalog", str(csv_path), "--dest", f"s3://{s3.bucket}/memory-indexed",
        ], env, args.plan_rows))
    print_table("Memory: peak RSS (target well under 1 GiB)", HEADER, table)


if __name__ == "__main__":
    main()
