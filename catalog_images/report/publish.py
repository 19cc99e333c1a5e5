"""Publishing a run's report: report.json, manifest and ledger row locally and to S3,
the pictures beside them, and the Prefect artifacts of the run.

S3 failing at this point must not lose what the run did and paid for: the summary still
comes out, with a local copy of the report when the run named a path for it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from prefect.artifacts import (
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_table_artifact,
)

from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.ledger import history_row, read_history
from catalog_images.destination.storage import (
    S3Location,
    S3Settings,
    StorageError,
    describe_s3_error,
    put_file,
)
from catalog_images.report.contact_sheet import SheetItem, contact_sheet_html, contact_sheet_png
from catalog_images.report.history_chart import history_chart_png
from catalog_images.report.links import Presigner, links_markdown, presigner, summary_links
from catalog_images.report.render import (
    problem_examples,
    problem_rows,
    summary_markdown,
    write_report_json,
)


async def publish_report(header: dict, totals: dict, work_dir: Path, location: S3Location,
                         s3: S3Settings, report_path: str | None,
                         thumbnails: list[SheetItem], link_expiry_s: int) -> dict:
    """Write the report locally and to S3, pictures beside it, and Prefect artifacts.

    The summary links its files by URLs presigned for ``link_expiry_s`` (report/links.py).
    Returns the run's outcome: run and flow run ids, totals, the report's URI (None when
    it was not uploaded), the summary markdown, the local report path and the upload error.
    """
    manifest = work_dir / "manifest.parquet"
    report = work_dir / "report.json"
    header = _note_pictures_skipped(header)
    write_report_json(report, header, totals, manifest)
    local_report = None
    if report_path:  # first: the local copy must not depend on S3
        local_report = Path(report_path).expanduser().resolve()
        local_report.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, local_report)
    layout, run_id = DestinationLayout(location), header["run_id"]
    ledger_row = work_dir / "summary.json"
    ledger_row.write_text(json.dumps(history_row(header, totals)))
    upload_error, links = None, {}
    presign = await asyncio.to_thread(presigner, s3, location, link_expiry_s)
    try:  # S3 down now must not lose what the run did and paid: the summary still comes out
        await asyncio.gather(*(  # at once: each is a round trip, slow on a loaded machine
            asyncio.to_thread(put_file, s3, location, layout.run_key(run_id, name), path,
                              content_type) for name, path, content_type in (
                ("report.json", report, "application/json"),
                ("manifest.parquet", manifest, "application/vnd.apache.parquet"),
                ("summary.json", ledger_row, "application/json"))))
        if not header.get("pictures_skipped"):
            pictures = await publish_pictures(header, totals, work_dir, presign, s3, thumbnails)
            header = {**header, "contact_sheet_uri": pictures["contact-sheet.html"],
                      "history_chart_uri": pictures["history.png"]}
            links = summary_links(presign, run_id)
    except (StorageError, ClientError, BotoCoreError, OSError) as exc:
        upload_error = s3_problem(exc)
    markdown = "\n".join([summary_markdown(header, totals, problem_examples(manifest)), "",
                          *links_markdown(links)])
    if header.get("pictures_skipped"):
        markdown += f"\n\n*No contact sheet or history chart: {header['pictures_skipped']}.*\n"
    if upload_error:
        markdown += (f"\n\n**The report was not uploaded to S3** ({upload_error}); "
                     f"local copy: `{local_report or 'none (use --report PATH)'}`.\n")
    await _publish_artifacts(header, markdown, manifest, location, links)
    return {
        "run_id": header["run_id"], "flow_run_id": header["flow_run_id"], "totals": totals,
        "report_uri": None if upload_error else header["report_uri"], "summary": markdown,
        "report_path": str(local_report) if local_report else None,
        "report_upload_error": upload_error,
    }


def _note_pictures_skipped(header: dict) -> dict:
    """The header, saying why the pictures are left out when a signal stopped the run: its
    report must be out within seconds, whatever the load (the next run's chart has it)."""
    if not header.get("stopped_by"):
        return header
    return {**header, "pictures_skipped": f"the run was stopped by {header['stopped_by']}, "
            "so its report was written first; the next run's history chart includes it"}


async def _publish_artifacts(header: dict, markdown: str, manifest: Path, location: S3Location,
                             links: dict[str, str]) -> None:
    """The summary, a link to the run folder and, if any, the table of problem rows."""
    await acreate_markdown_artifact(markdown, key="catalog-refresh-summary",
                                    description=f"Run {header['run_id']}")
    layout, run_id = DestinationLayout(location), header["run_id"]
    run_folder = layout.run_uri(run_id)
    await acreate_link_artifact(
        link=links.get("run_folder") or run_folder,
        link_text=f"Run folder {run_folder}", key="catalog-refresh-run-folder",
        description="Report, manifest and ledger row of this run")
    problems = problem_rows(manifest)
    if problems:
        await acreate_table_artifact(problems, key="catalog-refresh-problems",
                                     description="Failed and rejected rows")


async def publish_pictures(header: dict, totals: dict, work_dir: Path, presign: Presigner,
                           s3: S3Settings, thumbnails: list[SheetItem]) -> dict[str, str]:
    """Contact sheet (PNG + HTML) and history chart next to the report; their URIs.

    The page links its images by presigned URLs (relative ones when the store cannot sign),
    so it shows them from a private bucket too.
    """
    location, run_id = presign.location, header["run_id"]
    layout = DestinationLayout(location)
    title = (f"Run {header['run_id']}: {totals['succeeded']} images, {totals['failed']} "
             f"failed, ${totals['cost_usd']:.2f}")
    extra = [SheetItem("", b"")] * max(0, totals["succeeded"] - len(thumbnails))
    files = {
        "contact-sheet.png": (await asyncio.to_thread(
            contact_sheet_png, [*thumbnails, *extra], title=title,
            max_items=len(thumbnails)), "image/png"),
        "contact-sheet.html": (contact_sheet_html(
            [(t.sku, presign.url(t.key) or layout.image_link_from_run_folder(t.key))
             for t in thumbnails], title=title,
            sheet_png_name=presign.url(layout.run_key(run_id, "contact-sheet.png"))
            or "contact-sheet.png").encode(),
            "text/html; charset=utf-8"),
        "history.png": (await asyncio.to_thread(
            history_chart_png, await asyncio.to_thread(read_history, s3, location)),
            "image/png"),
    }
    uris = {}
    for name, (data, content_type) in files.items():
        path = work_dir / name
        path.write_bytes(data)
        await asyncio.to_thread(put_file, s3, location, layout.run_key(run_id, name), path,
                                content_type)
        uris[name] = layout.run_uri(run_id, name)
    return uris


def s3_problem(exc: BaseException) -> str:
    """A StorageError's own message, or a boto error described without secrets."""
    return str(exc) if isinstance(exc, StorageError) else describe_s3_error(exc)

