"""No-op refresh: a catalog whose every row is unchanged at the destination.

    uv run python -m bench.noop [--rows 100000]

Setup writes the destination's index as a finished run would (a snapshot of the rows'
fingerprints), then one `catalog-images run` is measured: wall time, peak RSS, provider
requests (must be 0) and cost (must be $0). Targets: under 60 s and 1 GiB.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.harness import (
    WORK,
    emulator_get,
    emulator_process,
    local_s3,
    pipeline_env,
    print_table,
    run_child,
    write_catalog,
)
from catalog_images.catalog.read import iter_rows, open_catalog
from catalog_images.catalog.validate import RowValidator
from catalog_images.destination.index import INDEX_SCHEMA
from catalog_images.destination.storage import S3Location, S3Settings


def seed_index(s3, catalog: Path, location: S3Location) -> None:
    """Write a snapshot holding every row's current fingerprint, as a finished run would."""
    validator = RowValidator(None, str(catalog.parent), None)
    rows = []
    for batch in iter_rows(open_catalog(str(catalog), S3Settings(), catalog.parent)):
        for row in batch:
            job = validator.check(row)
            rows.append({"sku": job["sku"], "fingerprint": job["fingerprint"],
                         "s3_key": location.key("images", f"{job['sku']}.png"),
                         "run_id": "00000000T000000Z-seed00"})
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA), buffer)
    client = s3.client()
    base = location.key("state", "snapshots", "00000000T000000Z-seed00")
    client.put_object(Bucket=location.bucket, Key=f"{base}.json",
                      Body=json.dumps({"runs": ["00000000T000000Z-seed00"]}).encode())
    client.put_object(Bucket=location.bucket, Key=f"{base}.parquet", Body=buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    catalog = write_catalog(WORK / f"noop-{args.rows}.csv", args.rows)
    with local_s3() as s3, emulator_process("--latency", "0.5") as url:
        location = S3Location(s3.bucket, f"noop-{args.rows}")
        seed_index(s3, catalog, location)
        report = WORK / "noop-report.json"
        child = run_child(
            [sys.executable, "-m", "catalog_images.cli", "run", "--catalog", str(catalog),
             "--dest", f"s3://{location.bucket}/{location.prefix}", "--report", str(report),
             "--no-progress"], env=pipeline_env(s3, url))
        if child.returncode:
            raise RuntimeError(child.stderr[-3000:])
        totals = json.loads(report.read_text())["totals"]
        requests = emulator_get(url, "stats")["requests"]
    print_table(f"No-op refresh of {args.rows:,} unchanged rows",
                ["rows", "skipped", "provider requests", "cost", "wall s", "peak RSS MiB"],
                [[totals["rows"], totals["skipped"], requests, f"${totals['cost_usd']:.2f}",
                  f"{child.wall_s:.1f}", f"{child.max_rss_mib:.0f}"]])


if __name__ == "__main__":
    main()
