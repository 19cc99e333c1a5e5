"""Prefect task: validate the whole catalog into a local plan before anything is paid."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from catalog_images.catalog.plan import PlanSummary, RowChoices, plan_catalog
from catalog_images.catalog.validate import DEFAULT_SKU_KEY_ROOM
from catalog_images.destination.index import load_index
from catalog_images.destination.layout import DestinationLayout
from catalog_images.destination.storage import S3Location, S3Settings
from catalog_images.providers.config import ProviderConfig


@task(name="plan-catalog", cache_policy=NO_CACHE, persist_result=False)
def plan_task(
    catalog: str, prompt_template: str | None, provider: ProviderConfig, s3: S3Settings,
    work_dir: str, dest: S3Location | None = None, choices: RowChoices | None = None,
) -> PlanSummary:
    """Read the destination's index, then validate the catalog into a local plan.

    No provider is called. The index is loaded here, not passed in, so Prefect never has
    to inspect a million-entry parameter.
    """
    index = load_index(s3, dest) if dest is not None else None
    room = DestinationLayout(dest).sku_key_room() if dest is not None else DEFAULT_SKU_KEY_ROOM
    return plan_catalog(catalog, prompt_template, provider, s3, Path(work_dir), index,
                        choices or RowChoices(), sku_key_room=room)
