"""One shard of a scaled-out catalog refresh: generate, upload, hand results back.

Started by the parent run (flows/catalog_refresh.py with ``shards`` > 1) through
``run_deployment``; any process worker of the deployment's pool may pick it up.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger

from tasks.fan_out import generate_here
from tasks.progress import RunProgress
from tasks.providers.config import get_provider
from tasks.results import ResultSink
from tasks.secrets import install_log_redaction
from tasks.settings import RunSettings
from tasks.shards import ShardSpec, shard_key, stats_bytes, thumbnails_bytes
from tasks.storage import S3Location, S3Settings


@flow(name="catalog-refresh-shard", description="One shard of a scaled-out catalog refresh.")
async def catalog_refresh_shard(shard: ShardSpec) -> dict:
    """Generate and upload the shard's rows; write its results next to the parent's report."""
    install_log_redaction()
    logger = get_run_logger()
    settings = RunSettings(**shard.settings)
    location = S3Location.parse(settings.dest)
    configs = [get_provider(n, settings.providers_file) for n in settings.provider_names]
    for config in configs:
        config.resolve_api_key()
    s3 = S3Settings.from_environment(settings.aws_credentials_block)
    logger.info("shard %d/%d of run %s: %d rows", shard.index + 1, shard.count,
                shard.parent_run_id, shard.rows)
    work_dir = Path(tempfile.mkdtemp(prefix=f"catalog-images-{shard.run_id}-"))
    try:
        client = s3.boto3_client()
        jobs_path = work_dir / "jobs.parquet"
        await asyncio.to_thread(client.download_file, location.bucket, shard.jobs_key,
                                str(jobs_path))
        sink = ResultSink(work_dir / "manifest.parquet")
        progress = RunProgress(shard.run_id, total=shard.rows, phase="generating")
        generated = await generate_here(shard.run_id, settings, configs, location, s3,
                                        str(jobs_path), sink, progress, logger,
                                        collect_batches=False)
        sink.close()
        outputs = {
            "stats.json": stats_bytes(generated.stats),
            "thumbnails.parquet": thumbnails_bytes(generated.thumbnails),
        }
        for name, body in outputs.items():
            await asyncio.to_thread(client.put_object, Bucket=location.bucket, Body=body,
                                    Key=shard_key(location, shard.parent_run_id, shard.index,
                                                  name))
        # The manifest last: the parent reads a shard's results only when it exists.
        await asyncio.to_thread(client.upload_file, str(work_dir / "manifest.parquet"),
                                location.bucket, shard_key(location, shard.parent_run_id,
                                                           shard.index, "manifest.parquet"))
        summary = sink.totals.summary(0.0)
        logger.info("shard %d done: %d succeeded, %d failed, $%.4f", shard.index,
                    summary["succeeded"], summary["failed"], summary["cost_usd"])
        return {"shard": shard.index, "succeeded": summary["succeeded"],
                "failed": summary["failed"], "cost_usd": summary["cost_usd"]}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
