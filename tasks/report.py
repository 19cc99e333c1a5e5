"""Prefect task: publish a run's report, pictures and artifacts (a task run in the UI)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.report.contact_sheet import SheetItem
from catalog_images.report.publish import publish_report


@task(name="publish-report", cache_policy=NO_CACHE, persist_result=False)
async def publish_report_task(
    header: dict, totals: dict, work_dir: str, location: S3Location, s3: S3Settings,
    report_path: str | None, thumbnails: list[SheetItem], link_expiry_s: int,
) -> dict:
    """Write the report locally and to S3, the pictures beside it, and the run's artifacts.

    An S3 failure does not fail the task: the outcome names it and the summary still
    comes out; the returned dict is the run's outcome.
    """
    return await publish_report(header, totals, Path(work_dir), location, s3, report_path,
                                thumbnails, link_expiry_s)
