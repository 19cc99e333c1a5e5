"""What a refresh run settles before its first provider call.

Its parameters validated, every provider's API key found, the bucket reachable, a scratch
folder, then the plan priced for the run's mode and the rows the plan already settled
recorded as results (report/results.py::settled_results).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from catalog_images.catalog.plan import PlanSummary
from catalog_images.destination.storage import S3Location, S3Settings, check_bucket
from catalog_images.providers.config import ProviderConfig, get_provider
from catalog_images.providers.model_check import check_models
from catalog_images.settings import RunSettings
from catalog_images.worker_policy import check_parameters, check_provider_keys

# Flow parameters a caller may pass as None for "none".
_LIST_PARAMETERS = ("fallback_providers", "priority_providers", "force_skus")


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus a short random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunSetup:
    """One run's validated settings, identity, destination and providers."""

    settings: RunSettings
    run_id: str
    location: S3Location
    s3: S3Settings
    provider_configs: list[ProviderConfig]
    started_at: str  # ISO UTC time
    started_wall: float  # time.monotonic() at the start
    approval: dict | None = None  # the spend approval gate's decision (generation/approval.py)

    @property
    def provider_config(self) -> ProviderConfig:
        """The first provider of the bulk route: the one the plan prices rows with."""
        return self.provider_configs[0]


def prepare_run(parameters: dict, logger) -> RunSetup:
    """Validate the flow's parameters, resolve every provider's key, check the bucket.

    Raises SettingsError, ConfigError or StorageError naming the problem; nothing is read
    from the catalog before these pass. A deployment run's parameters that reach into the
    worker are checked against the worker's allowlists first (worker_policy.py).
    """
    settings = RunSettings(**{
        **parameters, **{name: parameters.get(name) or [] for name in _LIST_PARAMETERS}})
    check_parameters(settings)
    started_wall = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    run_id = new_run_id()
    location = S3Location.parse(settings.dest)
    configs = [get_provider(name, settings.providers_file) for name in settings.provider_names]
    check_provider_keys(configs)
    for config in configs:
        config.resolve_api_key()
    s3 = S3Settings.from_environment(settings.aws_credentials_block)
    check_bucket(s3, location)
    logger.info(
        "run %s: catalog %s -> %s, routes %s, concurrency %d",
        run_id, settings.catalog, settings.dest, settings.routes, settings.concurrency,
    )
    return RunSetup(settings, run_id, location, s3, configs, started_at, started_wall)


@contextmanager
def scratch_dir(run_id: str) -> Iterator[Path]:
    """A private local folder for the run's plan, results and report, removed afterwards."""
    work_dir = Path(tempfile.mkdtemp(prefix=f"catalog-images-{run_id}-"))
    try:
        yield work_dir
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def priced_plan(plan: PlanSummary, run: RunSetup, logger) -> PlanSummary:
    """The plan with its projected cost at the run mode's price, logged in one line."""
    if run.settings.mode == "batch":
        plan.projected_cost_usd = plan.list_cost(run.provider_config, batch=True)
    logger.info(
        "plan: %d rows: %d to generate (%s), %d unchanged, %d rejected, %d removed from "
        "the catalog; projected cost $%.2f", plan.rows, plan.to_generate,
        plan.by_resolution, plan.unchanged, plan.rejected, plan.removed,
        plan.projected_cost_usd,
    )
    return plan


async def check_plan_models(run: RunSetup, plan: PlanSummary, logger) -> None:
    """Before the first paid request: ask each Gemini-format provider about every model the
    plan's rows will send it (models.get). Raises ConfigError naming a model it does not
    serve, and the replacement of a retired one; a provider without the endpoint passes."""
    if not plan.to_generate:
        return
    wanted = {config.name: (config, {config.model_for(m) for m in plan.models})
              for config in run.provider_configs}
    for check in await asyncio.to_thread(check_models, wanted):
        if check.note:
            logger.info("provider %s, model %s: %s", check.provider, check.model, check.note)
