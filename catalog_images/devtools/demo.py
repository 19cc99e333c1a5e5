"""``make demo``: the whole product on embedded defaults, on one machine, in one command."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

DEMO_DIR = Path(".demo")
CATALOG = Path("data/sample_catalog.csv")
BUCKET = "catalog-images"
DEST = f"s3://{BUCKET}/demo"
console = Console(stderr=True)


def run_demo(execute_run: Callable[..., int], rows: int | None = None) -> int:
    """Run the sample catalog through the emulator into a local SeaweedFS; return exit code.

    ``execute_run`` is the CLI's run (validate, run the flow, print the summary): passed in,
    so the dev tools never import the CLI that imports them.
    """
    from catalog_images.destination.layout import DestinationLayout
    from catalog_images.destination.storage import S3Location
    from catalog_images.devtools.emulator import Emulator, EmulatorConfig
    from catalog_images.devtools.local_s3 import LocalS3

    DEMO_DIR.mkdir(exist_ok=True)
    catalog = CATALOG
    if rows:
        catalog = _head(CATALOG, rows, DEMO_DIR / "catalog_head.csv")
    console.print("[bold]Starting[/] a local S3-compatible server (SeaweedFS) and the emulator")
    with LocalS3(data_dir=(DEMO_DIR / "s3").resolve(), bucket=BUCKET).start() as s3, Emulator(
        EmulatorConfig(latency_s=0.4, latency_jitter_s=0.4, seed=7)
    ).start() as emu:
        os.environ.update(s3.env())
        os.environ["CATALOG_IMAGES_EMULATOR_URL"] = emu.base_url
        os.environ.setdefault("CATALOG_IMAGES_SPOOL_DIR", str((DEMO_DIR / "spool").resolve()))
        report_path = (DEMO_DIR / "report.json").resolve()
        code = execute_run(
            catalog=str(catalog), dest=DEST, provider="emulator", concurrency=8,
            report_path=str(report_path),
        )
        report = json.loads(report_path.read_text())
        images = _download_images(s3, report, DEMO_DIR / "images")
        layout = DestinationLayout(S3Location.parse(DEST))
        for name in ("contact-sheet.png", "contact-sheet.html", "history.png"):
            key = layout.run_key(report["run_id"], name)
            body = s3.client().get_object(Bucket=BUCKET, Key=key)["Body"]
            (DEMO_DIR / name).write_bytes(body.read())
        ledger = emu.ledger()
    totals = report["totals"]
    console.print(
        f"\n[bold]Demo finished[/]: {totals['rows']} rows, {totals['succeeded']} images, "
        f"{totals['failed']} failed, {totals['rejected']} rejected, cost ${totals['cost_usd']:.3f} "
        f"(emulator billed ${ledger['usd']:.3f} for {ledger['images']} images), "
        f"{totals['images_per_s']} images/s over {totals['wall_s']} s."
    )
    console.print(f"Images: {layout.images_uri()} (copies of {images} in {DEMO_DIR / 'images'}/)")
    console.print(f"Report: {report['report_uri']} and {report_path}")
    console.print(f"Contact sheet and history chart: {DEMO_DIR}/contact-sheet.png, "
                  f"{DEMO_DIR}/contact-sheet.html, {DEMO_DIR}/history.png")
    return code


def _head(source: Path, rows: int, target: Path) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return target


def _download_images(s3, report: dict, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    client = s3.client()
    count = 0
    for row in report["rows"]:
        if row["s3_key"]:
            body = client.get_object(Bucket=s3.bucket, Key=row["s3_key"])["Body"].read()
            (folder / Path(row["s3_key"]).name).write_bytes(body)
            count += 1
    return count
