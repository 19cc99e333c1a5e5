"""The work of one shard, wherever it runs: a child flow run on a Prefect worker
(flows/catalog_shard.py) or a Prefect task on a Dask cluster (tasks/shard.py).

It downloads the shard's jobs, generates and uploads them, and writes its results next to
the parent's report: ``stats.json``, ``thumbnails.parquet``, then ``manifest.parquet`` last
(the parent reads a shard's results only once the manifest exists).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.generation.run import ChunkRunner, generate_here
from catalog_images.providers.config import get_provider
from catalog_images.report.progress import RunProgress
from catalog_images.report.results import ResultSink
from catalog_images.run_setup import RunSetup
from catalog_images.scale.shards import ShardSpec, shard_key, stats_bytes, thumbnails_bytes
from catalog_images.secrets import install_log_redaction
from catalog_images.settings import RunSettings
from catalog_images.worker_policy import check_parameters, check_provider_keys


async def run_shard(shard: ShardSpec, logger, run_chunk: ChunkRunner) -> dict:
    """Generate and upload the shard's rows (chunks through ``run_chunk``); its counts and cost."""
    install_log_redaction()
    settings = RunSettings(**shard.settings)
    check_parameters(settings)  # the shard deployment can be started from the UI too
    location = S3Location.parse(settings.dest)
    configs = [get_provider(n, settings.providers_file) for n in settings.provider_names]
    check_provider_keys(configs)
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
        run = RunSetup(settings, shard.run_id, location, s3, configs,
                       started_at=datetime.now(UTC).isoformat(), started_wall=time.monotonic())
        generated = await generate_here(run, str(jobs_path), sink, progress, logger, run_chunk,
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

