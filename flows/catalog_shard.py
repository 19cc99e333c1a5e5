"""One shard of a scaled-out catalog refresh: generate, upload, hand results back.

Started by the parent run (flows/catalog_refresh.py with ``shards`` > 1) through
``run_deployment``; any process worker of the deployment's pool may pick it up.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.shard_run import run_shard
from tasks.shards import ShardSpec


@flow(name="catalog-refresh-shard", description="One shard of a scaled-out catalog refresh.")
async def catalog_refresh_shard(shard: ShardSpec) -> dict:
    """Generate and upload the shard's rows; write its results next to the parent's report."""
    return await run_shard(shard, get_run_logger())
