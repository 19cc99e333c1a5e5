"""What a run would cost (the `estimate` verb) and the CLI's spend question (`run`).

The CLI asks before the flow starts, from the same estimate `estimate` prints, and then runs
the flow without its approval gate (generation/approval.py): a CLI run never pauses. No
request is sent to a provider here.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import typer
from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.cli.console import fail
from catalog_images.settings import RunSettings


def project(settings: RunSettings) -> dict:
    """The estimate of a run with these settings: plan the catalog, price it; no request.
    A problem with the settings, the catalog or the destination exits 2 with its message."""
    from catalog_images.catalog.estimate import estimate
    from catalog_images.catalog.plan import RowChoices, plan_catalog
    from catalog_images.catalog.read import CatalogError
    from catalog_images.destination.index import load_index
    from catalog_images.destination.layout import DestinationLayout
    from catalog_images.destination.storage import (
        S3Location,
        S3Settings,
        StorageError,
        describe_s3_error,
    )
    from catalog_images.errors import explain
    from catalog_images.providers.config import ConfigError, get_provider
    from catalog_images.settings import SettingsError

    try:
        routes = {name: [get_provider(p, settings.providers_file) for p in names]
                  for name, names in settings.routes.items()}
        s3 = S3Settings.from_environment(settings.aws_credentials_block)
        location = S3Location.parse(settings.dest)
        with tempfile.TemporaryDirectory() as work:
            plan = plan_catalog(settings.catalog, settings.prompt_template, routes["bulk"][0], s3,
                                Path(work), load_index(s3, location),
                                RowChoices(settings.model, settings.force,
                                           frozenset(settings.force_skus)),
                                sku_key_room=DestinationLayout(location).sku_key_room())
    except (SettingsError, ConfigError, CatalogError, StorageError, ValueError) as exc:
        fail(explain(exc))
    except (BotoCoreError, ClientError) as exc:
        fail(f"{settings.dest}: {describe_s3_error(exc)}")
    return estimate(plan, routes, settings.concurrency, settings.mode)


def interactive() -> bool:
    """Whether a person can answer a question here (stdin and stderr are terminals)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def spend_question(projected: dict, settings: RunSettings) -> str:
    """The plan in a few lines, then "Spend up to $X?"."""
    lines = [f"Projected cost ${projected['cost_usd']:.2f} is above --approve-above "
             f"${settings.approve_above_usd:.2f}: {projected['to_generate']} rows to generate "
             f"of {projected['rows']} ({projected['unchanged']} unchanged, "
             f"{projected['rejected']} rejected)."]
    for table in ("model", "resolution"):
        costs = projected[f"cost_by_{table}"]
        lines.append(f"  by {table}: " + ", ".join(f"{k} ${v:.2f}" for k, v in costs.items()))
    if settings.max_cost_usd is None:
        lines.append(f"Spend about ${projected['cost_usd']:.2f} (no --max-cost cap)?")
    else:
        lines.append(f"Spend up to ${settings.max_cost_usd:.2f} (--max-cost)?")
    return "\n".join(lines)


def confirm_spend(settings: RunSettings, yes: bool) -> None:
    """Ask whether to spend when the run's estimate is above ``approve_above_usd``.

    Returns when the run may go on: no threshold, an estimate not above it, ``yes``, or the
    person at the terminal said yes. Exits 2 (nothing sent) when they said no, or when no one
    can be asked (not a terminal) and ``yes`` was not given.
    """
    if yes or settings.approve_above_usd is None:
        return
    from catalog_images.generation.approval import needs_approval

    projected = project(settings)
    if not needs_approval(projected["cost_usd"], settings.approve_above_usd):
        return
    question = spend_question(projected, settings)
    if not interactive():
        fail(f"{question.splitlines()[0]} Nothing was sent. Pass --yes to approve the spend, "
             "or raise --approve-above.")
    if not typer.confirm(question, default=False, err=True):
        fail("spend not approved: nothing was sent")
