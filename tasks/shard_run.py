"""The work of one shard, wherever it runs: a child flow run on a Prefect worker
(flows/catalog_shard.py) or a Prefect task on a Dask cluster (tasks/prefect_tasks.py).

It downloads the shard's jobs, generates and uploads them, and writes its results next to
the parent's report: ``stats.json``, ``thumbnails.parquet``, then ``manifest.parquet`` last
(the parent reads a shard's results only once the manifest exists).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.fan_out import generate_here
from tasks.progress import RunProgress
from tasks.providers.config import get_provider
from tasks.results import ResultSink
from tasks.secrets import install_log_redaction
from tasks.settings import RunSettings
from tasks.shards import ShardSpec, shard_key, stats_bytes, thumbnails_bytes
from tasks.storage import S3Location, S3Settings


async def run_shard(shard: ShardSpec, logger) -> dict:
    """Generate and upload the shard's rows; return its counts and cost."""
    install_log_redaction()
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


@task(
    name="catalog-refresh-shard", cache_policy=NO_CACHE, persist_result=False,
    task_run_name="shard-{shard.index}",
)
async def shard_task(shard: ShardSpec) -> dict:
    """One shard as a Prefect task: what a Dask worker runs when the run names a scheduler."""
    return await run_shard(shard, get_run_logger())


@flow(name="catalog-refresh-dask-shards", description="The shards of a run on a Dask cluster.")
def _dask_shards(specs: list[ShardSpec]) -> list[tuple[str, str]]:
    futures = shard_task.map(specs)
    futures.wait()
    # Names and messages, not State objects: returned states would decide this flow's state.
    return [(future.state.name, future.state.message or "") for future in futures]


def run_shards_on_dask(specs: list[ShardSpec], address: str) -> list[tuple[str, str]]:
    """Run each shard as a task on the Dask scheduler at ``address``; how each ended."""
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=address)
    return _dask_shards.with_options(task_runner=runner)(specs)
