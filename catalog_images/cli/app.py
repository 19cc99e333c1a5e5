"""The ``catalog-images`` command: run a refresh, serve the emulator, run the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.cli.automations import automations_app
from catalog_images.cli.execute import execute_run, fail, leave_with
from catalog_images.devtools.emulator.command import serve as serve_emulator
from catalog_images.prefect_env import apply_defaults
from catalog_images.settings import RUN_DEFAULTS, RunSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn product catalogs into generated product images in S3.")


# `run` options named differently from their RunSettings field (repeatable ones are singular);
# every other option of `run` except --progress has its field's name.
RUN_OPTION_FIELDS: dict[str, str] = {
    "fallback_provider": "fallback_providers", "priority_provider": "priority_providers",
    "report": "report_path", "max_cost": "max_cost_usd", "force_sku": "force_skus",
    "link_expiry": "link_expiry_s",
    "breaker_cooldown": "breaker_cooldown_s", "max_provider_wait": "max_provider_wait_s",
    "max_retry_hint": "max_retry_hint_s", "row_deadline": "row_deadline_s",
    "batch_deadline": "batch_deadline_s", "batch_poll": "batch_poll_s",
    "approve_above": "approve_above_usd", "approval_timeout": "approval_timeout_s",
}
_OPTION_OF = {field: option for option, field in RUN_OPTION_FIELDS.items()}
RUN = {_OPTION_OF.get(field, field): default for field, default in RUN_DEFAULTS.items()}


def _help(option: str, note: str = "") -> Any:
    """A typer option whose help is the RunSettings description of the option's field."""
    return typer.Option(
        help=RunSettings.model_fields[RUN_OPTION_FIELDS.get(option, option)].description + note)


def run_settings_of(options: dict[str, Any]) -> dict[str, Any]:
    """RunSettings keyword arguments from the values of the `run` options."""
    return {RUN_OPTION_FIELDS.get(name, name): str(value) if isinstance(value, Path) else value
            for name, value in options.items()}


@app.command()
def run(
    catalog: Annotated[str, _help("catalog")],
    dest: Annotated[str, _help("dest")],
    provider: Annotated[str, _help("provider")] = RUN["provider"],
    fallback_provider: Annotated[list[str] | None, _help(
        "fallback_provider", "; repeatable")] = RUN["fallback_provider"],
    priority_provider: Annotated[list[str] | None, _help(
        "priority_provider", "; repeatable")] = RUN["priority_provider"],
    model: Annotated[str | None, _help("model")] = RUN["model"],
    concurrency: Annotated[int, _help("concurrency")] = RUN["concurrency"],
    prompt_template: Annotated[str | None, _help("prompt_template")] = RUN["prompt_template"],
    report: Annotated[Path | None, _help("report")] = RUN["report"],
    link_expiry: Annotated[int, _help("link_expiry")] = RUN["link_expiry"],
    chunk_size: Annotated[int, _help("chunk_size")] = RUN["chunk_size"],
    max_attempts: Annotated[int, _help("max_attempts")] = RUN["max_attempts"],
    providers_file: Annotated[Path | None, _help("providers_file")] = RUN["providers_file"],
    aws_credentials_block: Annotated[str | None, _help(
        "aws_credentials_block")] = RUN["aws_credentials_block"],
    breaker_cooldown: Annotated[float, _help("breaker_cooldown")] = RUN["breaker_cooldown"],
    max_provider_wait: Annotated[float, _help("max_provider_wait")] = RUN["max_provider_wait"],
    max_retry_hint: Annotated[float, _help("max_retry_hint")] = RUN["max_retry_hint"],
    row_deadline: Annotated[float, _help("row_deadline")] = RUN["row_deadline"],
    max_cost: Annotated[float | None, _help("max_cost")] = RUN["max_cost"],
    approve_above: Annotated[float | None, _help("approve_above")] = RUN["approve_above"],
    approval_timeout: Annotated[float, _help(
        "approval_timeout", "; Prefect runs only: the CLI asks before it starts"
    )] = RUN["approval_timeout"],
    force: Annotated[bool, _help("force")] = RUN["force"],
    force_sku: Annotated[list[str] | None, _help(
        "force_sku", "; repeatable")] = RUN["force_sku"],
    wrong_shape: Annotated[str, _help("wrong_shape")] = RUN["wrong_shape"],
    mode: Annotated[str, _help("mode")] = RUN["mode"],
    batch_rows: Annotated[int, _help("batch_rows")] = RUN["batch_rows"],
    batch_deadline: Annotated[float, _help("batch_deadline")] = RUN["batch_deadline"],
    batch_poll: Annotated[float, _help("batch_poll")] = RUN["batch_poll"],
    global_limits: Annotated[bool, _help("global_limits")] = RUN["global_limits"],
    shards: Annotated[int, _help("shards", "; needs a Prefect server")] = RUN["shards"],
    shard_deployment: Annotated[str, _help("shard_deployment")] = RUN["shard_deployment"],
    dask_address: Annotated[str | None, _help("dask_address")] = RUN["dask_address"],
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="approve the spend without asking (see --approve-above)")] = False,
) -> None:
    """Run one catalog refresh and print its summary.

    Exit status 0 when every accepted row ended with an image, 1 when some did not,
    2 when the settings or the catalog are unusable, or the spend was not approved (nothing
    was sent).
    """
    options = {name: value for name, value in locals().items()
               if name not in ("progress", "yes")}
    apply_defaults(quiet_console=progress)
    raise typer.Exit(execute_run(**run_settings_of(options), show_progress=progress, yes=yes))


@app.command()
def estimate(
    catalog: Annotated[str, _help("catalog")],
    dest: Annotated[str, typer.Option(help="s3://BUCKET/PREFIX the run would write to")],
    provider: Annotated[str, _help("provider")] = RUN["provider"],
    priority_provider: Annotated[list[str] | None, _help(
        "priority_provider", "; repeatable")] = RUN["priority_provider"],
    model: Annotated[str | None, _help("model")] = RUN["model"],
    concurrency: Annotated[int, _help("concurrency")] = RUN["concurrency"],
    prompt_template: Annotated[str | None, _help("prompt_template")] = RUN["prompt_template"],
    force: Annotated[bool, typer.Option(
        help="count unchanged rows as to generate")] = RUN["force"],
    providers_file: Annotated[Path | None, _help("providers_file")] = RUN["providers_file"],
    mode: Annotated[str, typer.Option(
        help="standard, or batch (priced at Batch Mode prices)")] = RUN["mode"],
) -> None:
    """Print what a run would generate, skip and reject, its cost and duration: no request."""
    from catalog_images.cli.spend import project
    from catalog_images.errors import explain
    from catalog_images.settings import SettingsError

    try:
        settings = RunSettings(catalog=catalog, dest=dest, provider=provider,
                               priority_providers=priority_provider or [], model=model,
                               concurrency=concurrency, prompt_template=prompt_template,
                               force=force, mode=mode,
                               providers_file=str(providers_file) if providers_file else None)
    except SettingsError as exc:
        fail(explain(exc))
    json.dump(project(settings), sys.stdout, indent=2)
    print()


@app.command()
def history(
    dest: Annotated[str, typer.Option(help="s3://BUCKET/PREFIX of the runs")],
) -> None:
    """Print the runs ledger of a destination, oldest first."""
    from rich.table import Table

    from catalog_images.cli.console import console
    from catalog_images.destination.ledger import read_history
    from catalog_images.destination.storage import (
        S3Location,
        S3Settings,
        StorageError,
        describe_s3_error,
    )

    try:
        rows = read_history(S3Settings.from_environment(), S3Location.parse(dest))
    except (StorageError, ValueError) as exc:
        fail(str(exc))
    except (BotoCoreError, ClientError) as exc:
        fail(f"{dest}: {describe_s3_error(exc)}")
    table = Table("run", "finished", "rows", "ok", "failed", "rejected", "skipped", "cost",
                  "wall s", "providers")
    for row in rows:
        table.add_row(row["run_id"], row["finished_at"][:19], str(row["rows"]),
                      str(row["succeeded"]), str(row["failed"]), str(row["rejected"]),
                      str(row["skipped"]), f"${row['cost_usd']:.2f}", str(row["wall_s"]),
                      ", ".join(f"{k} {v}" for k, v in row["provider_mix"].items()))
    console.print(table)


app.command(name="emulator")(serve_emulator)
app.add_typer(automations_app, name="automations")


@app.command()
def demo(
    rows: Annotated[int | None, typer.Option(help="use only the first N catalog rows")] = None,
) -> None:
    """Start the emulator and a local S3 server, refresh data/sample_catalog.csv, summarise."""
    apply_defaults(quiet_console=True)
    from catalog_images.devtools.demo import run_demo

    raise typer.Exit(run_demo(execute_run, rows))


@app.command()
def report(path: Path) -> None:
    """Print the totals of a JSON run report."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"{path}: {exc}")
    json.dump({"run_id": data.get("run_id"), "totals": data.get("totals")}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    app()


def main() -> None:
    """The ``catalog-images`` program: the command, then an exit without the teardown of
    every module (cli/execute.py ``_exit_at_once``)."""
    try:
        app(prog_name="catalog-images")
    except SystemExit as done:
        leave_with(done.code)
        raise
