"""The flows a scaled-out catalog refresh starts for its shards.

``catalog_refresh_shard`` is started by the parent run (flows/catalog_refresh.py with
``shards`` > 1) through ``run_deployment``; any process worker of the deployment's pool may
pick it up. ``run_shards_on_dask`` runs the shards as tasks on a Dask cluster instead.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from catalog_images.scale.shard_run import run_shard
from catalog_images.scale.shards import ShardSpec
from tasks.generate import generate_chunk_task
from tasks.shard import shard_task


@flow(name="catalog-refresh-shard", description="One shard of a scaled-out catalog refresh.")
async def catalog_refresh_shard(shard: ShardSpec) -> dict:
    """Generate and upload the shard's rows; write its results next to the parent's report."""
    return await run_shard(shard, get_run_logger(), generate_chunk_task)


@flow(name="catalog-refresh-dask-shards", description="The shards of a run on a Dask cluster.")
def dask_shards(specs: list[ShardSpec]) -> list[tuple[str, str]]:
    """Each shard as a task of this flow; how each ended, as (state name, message)."""
    futures = shard_task.map(specs)
    futures.wait()
    # Names and messages, not State objects: returned states would decide this flow's state.
    return [(future.state.name, future.state.message or "") for future in futures]


def run_shards_on_dask(specs: list[ShardSpec], address: str) -> list[tuple[str, str]]:
    """Run each shard as a task on the Dask scheduler at ``address``; how each ended."""
    from prefect_dask import DaskTaskRunner

    return dask_shards.with_options(task_runner=DaskTaskRunner(address=address))(specs)
