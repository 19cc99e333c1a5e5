"""``catalog-images automations install``: the ready-made automations of deployments/.

The file holds Prefect automations (the format ``prefect automation create --from-file``
reads) whose notification actions say ``block_document_id: NOTIFY_BLOCK``; installing puts
the id of the chosen notification block there and replaces automations of the same name, so
installing again is safe.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from catalog_images.cli.execute import fail

AUTOMATIONS_FILE = Path(__file__).resolve().parents[2] / "deployments" / "automations.yaml"
NOTIFY_BLOCK = "NOTIFY_BLOCK"

automations_app = typer.Typer(no_args_is_help=True,
                              help="Prefect automations on the pipeline's events.")


def load_automations(path: Path, notify_block_id: str) -> list[Any]:
    """The file's automations, validated, with NOTIFY_BLOCK replaced by the block's id."""
    from prefect.events.schemas.automations import AutomationCore

    data = yaml.safe_load(path.read_text())
    entries = data["automations"] if isinstance(data, dict) else data
    for entry in entries:
        for action in entry.get("actions", []):
            if action.get("block_document_id") == NOTIFY_BLOCK:
                action["block_document_id"] = notify_block_id
    return [AutomationCore.model_validate(entry) for entry in entries]


def split_block_reference(reference: str) -> tuple[str, str]:
    """``BLOCK-TYPE-SLUG/BLOCK-NAME`` → (slug, name); ValueError saying the expected form."""
    slug, _, name = reference.partition("/")
    if not slug or not name:
        raise ValueError(f"--notify-block {reference!r}: use BLOCK-TYPE-SLUG/BLOCK-NAME, "
                         "for example slack-webhook/catalog-alerts")
    return slug, name


async def install(path: Path, notify_block: str) -> list[tuple[str, str]]:
    """Create the file's automations (replacing same-named ones); their (name, id)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    slug, name = split_block_reference(notify_block)
    async with get_client() as client:
        try:
            block = await client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise ValueError(f"no notification block {notify_block!r} on this Prefect server; "
                             "create it (UI: Blocks) or name another one") from None
        installed = []
        for automation in load_automations(path, str(block.id)):
            for old in await client.read_automations_by_name(automation.name):
                await client.delete_automation(old.id)
            installed.append((automation.name, str(await client.create_automation(automation))))
    return installed


@automations_app.command(name="install")
def install_command(
    notify_block: Annotated[str, typer.Option(
        help="the notification block the automations use: BLOCK-TYPE-SLUG/BLOCK-NAME")],
    file: Annotated[Path, typer.Option(help="automations file")] = AUTOMATIONS_FILE,
) -> None:
    """Install the ready-made automations (failed refresh, budget reached, daily quota
    exhausted, report not uploaded) on the Prefect server in PREFECT_API_URL."""
    from httpx import HTTPError
    from pydantic import ValidationError

    from catalog_images.cli.console import console

    try:
        installed = asyncio.run(install(file, notify_block))
    except (ValueError, ValidationError, OSError, yaml.YAMLError, HTTPError) as exc:
        fail(" ".join(str(exc).split()))
    for name, automation_id in installed:
        console.print(f"installed {name!r} ({automation_id})", highlight=False, soft_wrap=True)
