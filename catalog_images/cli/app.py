"""The ``catalog-images`` command: run a refresh, serve the emulator, run the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from catalog_images.cli.execute import execute_run, fail
from catalog_images.prefect_env import apply_defaults

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn product catalogs into generated product images in S3.")



@app.command()
def run(
    catalog: Annotated[str, typer.Option(help="CSV or Parquet catalog, local path or s3:// URI")],
    dest: Annotated[str, typer.Option(help="s3://BUCKET/PREFIX for images and reports")],
    provider: Annotated[str, typer.Option(help="provider name")] = "emulator",
    fallback_provider: Annotated[list[str] | None, typer.Option(
        help="provider to fail over to, in order; repeatable")] = None,
    priority_provider: Annotated[list[str] | None, typer.Option(
        help="route for rows with priority=high, in order; repeatable")] = None,
    concurrency: Annotated[int, typer.Option(help="requests in flight at most")] = 16,
    prompt_template: Annotated[str | None, typer.Option(help="e.g. 'Photo of {title}'")] = None,
    report: Annotated[Path | None, typer.Option(help="write the JSON report here too")] = None,
    chunk_size: Annotated[int, typer.Option(help="rows per Prefect task run")] = 100,
    max_attempts: Annotated[int, typer.Option(help="provider attempts per row")] = 6,
    providers_file: Annotated[Path | None, typer.Option(help="TOML provider config")] = None,
    aws_credentials_block: Annotated[str | None, typer.Option(
        help="Prefect AwsCredentials block name")] = None,
    max_cost: Annotated[float | None, typer.Option(
        help="USD cap: no request starts that could take spend over it")] = None,
    force: Annotated[bool, typer.Option(help="regenerate unchanged rows too")] = False,
    force_sku: Annotated[list[str] | None, typer.Option(
        help="regenerate this sku even if unchanged; repeatable")] = None,
    mode: Annotated[str, typer.Option(
        help="standard, or batch (Gemini Batch Mode: half price, within 24 h)")] = "standard",
    batch_rows: Annotated[int, typer.Option(help="batch mode: rows per batch job")] = 1000,
    batch_deadline: Annotated[float, typer.Option(
        help="batch mode: seconds to wait for jobs; later ones the next run collects")] = 86_400.0,
    batch_poll: Annotated[float, typer.Option(
        help="batch mode: first poll interval in seconds (then backoff)")] = 30.0,
    global_limits: Annotated[bool, typer.Option(
        help="share rate limits with other runs via Prefect global concurrency limits")] = False,
    shards: Annotated[int, typer.Option(
        help="split the rows over this many shard runs (needs a Prefect server)")] = 1,
    dask_address: Annotated[str | None, typer.Option(
        help="run the shards on this dask.distributed scheduler, not a deployment")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run one catalog refresh and print its summary.

    Exit status 0 when every accepted row ended with an image, 1 when some did not,
    2 when the settings or the catalog are unusable (nothing was sent).
    """
    apply_defaults(quiet_console=progress)
    code = execute_run(
        catalog=catalog, dest=dest, provider=provider, concurrency=concurrency,
        fallback_providers=fallback_provider or [], priority_providers=priority_provider or [],
        prompt_template=prompt_template, report_path=str(report) if report else None,
        chunk_size=chunk_size, max_attempts=max_attempts,
        providers_file=str(providers_file) if providers_file else None,
        aws_credentials_block=aws_credentials_block, global_limits=global_limits,
        max_cost_usd=max_cost, force=force, force_skus=force_sku or [], mode=mode,
        batch_rows=batch_rows, batch_deadline_s=batch_deadline, batch_poll_s=batch_poll,
        shards=shards, dask_address=dask_address, show_progress=progress,
    )
    raise typer.Exit(code)


@app.command()
def estimate(
    catalog: Annotated[str, typer.Option(help="CSV or Parquet catalog, local path or s3:// URI")],
    dest: Annotated[str, typer.Option(help="s3://BUCKET/PREFIX the run would write to")],
    provider: Annotated[str, typer.Option(help="provider name")] = "emulator",
    priority_provider: Annotated[list[str] | None, typer.Option(
        help="route for rows with priority=high; repeatable")] = None,
    concurrency: Annotated[int, typer.Option(help="requests in flight at most")] = 16,
    prompt_template: Annotated[str | None, typer.Option(help="e.g. 'Photo of {title}'")] = None,
    force: Annotated[bool, typer.Option(help="count unchanged rows as to generate")] = False,
    providers_file: Annotated[Path | None, typer.Option(help="TOML provider config")] = None,
    mode: Annotated[str, typer.Option(
        help="standard, or batch (priced at Batch Mode prices)")] = "standard",
) -> None:
    """Print what a run would generate, skip and reject, its cost and duration: no request."""
    import tempfile

    from catalog_images.catalog.estimate import estimate as project
    from catalog_images.catalog.plan import plan_catalog
    from catalog_images.catalog.read import CatalogError
    from catalog_images.destination.index import load_index
    from catalog_images.destination.storage import (
        S3Location,
        S3Settings,
        StorageError,
        describe_s3_error,
    )
    from catalog_images.providers.config import ConfigError, get_provider
    from catalog_images.settings import RunSettings, SettingsError

    try:
        settings = RunSettings(catalog=catalog, dest=dest, provider=provider,
                               priority_providers=priority_provider or [],
                               concurrency=concurrency, prompt_template=prompt_template,
                               force=force, mode=mode,
                               providers_file=str(providers_file) if providers_file else None)
        routes = {name: [get_provider(p, settings.providers_file) for p in names]
                  for name, names in settings.routes.items()}
        s3 = S3Settings.from_environment()
        location = S3Location.parse(dest)
        with tempfile.TemporaryDirectory() as work:
            plan = plan_catalog(catalog, settings.prompt_template, routes["bulk"][0], s3,
                                Path(work), load_index(s3, location), force)
    except (SettingsError, ConfigError, CatalogError, StorageError, ValueError) as exc:
        fail(str(exc))
    except (BotoCoreError, ClientError) as exc:
        fail(f"{dest}: {describe_s3_error(exc)}")
    json.dump(project(plan, routes, concurrency, settings.mode), sys.stdout, indent=2)
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


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8790,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    latency: Annotated[float, typer.Option(help="seconds per image")] = 0.5,
    jitter: Annotated[float, typer.Option(help="extra random seconds per image")] = 0.0,
    rpm: Annotated[int | None, typer.Option(help="requests per quota window")] = None,
    window: Annotated[float, typer.Option(help="quota window in seconds")] = 60.0,
    fault: Annotated[list[str] | None, typer.Option(
        help="KIND=RATE, e.g. 503=0.1 (kinds: 429 503 500 hang reset malformed truncated "
             "safety no_image blocked); repeatable")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed for faults")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        help="require the key held in this environment variable")] = None,
    image_format: Annotated[str, typer.Option(
        help="type of the images answered: png, jpeg or webp")] = "png",
) -> None:
    """Serve the built-in provider emulator (Gemini wire format) until Ctrl-C."""
    import os

    from catalog_images.devtools.emulator import EmulatorConfig, run_server

    faults: dict[str, float] = {}
    for item in fault or []:
        kind, _, rate = item.partition("=")
        try:
            faults[kind] = float(rate)
        except ValueError:
            fail(f"--fault {item!r}: expected KIND=RATE, e.g. 503=0.1")
    api_key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        fail(f"--api-key-env {api_key_env}: that variable is not set")
    try:
        config = EmulatorConfig(latency_s=latency, latency_jitter_s=jitter, rpm=rpm,
                                quota_window_s=window, faults=faults, seed=seed, api_key=api_key,
                                image_format=image_format)
    except ValueError as exc:
        fail(f"emulator: {exc}")
    run_server(config, host, port)


@app.command()
def demo(
    rows: Annotated[int | None, typer.Option(help="use only the first N catalog rows")] = None,
) -> None:
    """Start the emulator and a local S3 server, refresh data/sample_catalog.csv, summarise."""
    apply_defaults(quiet_console=True)
    from catalog_images.devtools.demo import run_demo

    raise typer.Exit(run_demo(rows))


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
