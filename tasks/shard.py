"""Prefect task: one shard of a scaled-out run, as a Dask worker runs it."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from catalog_images.scale.shard_run import run_shard
from catalog_images.scale.shards import ShardSpec
from tasks.generate import generate_chunk_task


@task(
    name="catalog-refresh-shard", cache_policy=NO_CACHE, persist_result=False,
    task_run_name="shard-{shard.index}",
)
async def shard_task(shard: ShardSpec) -> dict:
    """One shard as a Prefect task: what a Dask worker runs when the run names a scheduler."""
    return await run_shard(shard, get_run_logger(), generate_chunk_task)
