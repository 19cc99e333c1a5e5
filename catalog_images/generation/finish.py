"""After a run's last row: the index snapshot, the run's totals, the closing log line."""

from __future__ import annotations

import asyncio
import time

from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.destination.index import write_snapshot
from catalog_images.destination.storage import StorageError
from catalog_images.generation.routing import summarize_providers
from catalog_images.generation.run import Generated
from catalog_images.report.progress import RunProgress
from catalog_images.report.publish import s3_problem
from catalog_images.report.results import ResultSink
from catalog_images.run_setup import RunSetup


async def snapshot_index(generated: Generated, run: RunSetup, logger) -> None:
    """Fold the index parts into one snapshot when this run added entries; warn if S3 fails.

    The index only saves work: the next run reads this run's parts, or HEADs the images,
    and pays for nothing twice. So a run stopped by a signal leaves the folding to the next
    run: its report comes first, within seconds.
    """
    if not generated.index_entries:
        return
    if generated.stopped_by:
        logger.info("index snapshot left to the next run (stopped by %s): it reads this run's "
                    "index parts", generated.stopped_by)
        return
    try:
        await asyncio.to_thread(write_snapshot, run.s3, run.location, run.run_id)
    except (StorageError, ClientError, BotoCoreError, OSError) as exc:
        logger.warning("index snapshot not written: %s", s3_problem(exc))


def close_results(sink: ResultSink, progress: RunProgress, run: RunSetup,
                  generated: Generated, generation_started: float) -> dict:
    """Close the result sink, show the reporting phase; the run's totals for the report."""
    generation_s = time.monotonic() - generation_started
    sink.close()
    progress.phase = "reporting"
    progress.publish()
    totals = sink.totals.summary(time.monotonic() - run.started_wall, generation_s)
    # requests and uploads only, as a bare loop would time itself (generation_s includes
    # opening clients, listing the destination and writing the index snapshot)
    totals["steady_s"] = round(generated.steady_s, 3) if generated.steady_s else None
    totals["providers"] = summarize_providers(
        generated.stats, {c.name: c for c in run.provider_configs})
    return totals


def log_done(progress: RunProgress, totals: dict, report_uri: str, logger) -> None:
    """Show the done phase and log the run's closing line."""
    progress.phase = "done"
    progress.publish()
    logger.info(
        "done: %d succeeded, %d failed, %d rejected, %d skipped, %d quarantined; cost $%.4f; "
        "%s images/s; report %s", totals["succeeded"], totals["failed"], totals["rejected"],
        totals["skipped"], totals.get("quarantined", 0), totals["cost_usd"],
        totals["images_per_s"], report_uri,
    )
