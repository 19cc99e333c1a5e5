"""Terminal output of a run: a rich progress bar while it runs, a summary at the end."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from catalog_images.report.progress import RunProgress, subscribe, unsubscribe

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error (secrets redacted) and exit with ``code`` (2: bad input)."""
    from catalog_images.secrets import redact

    console.print(f"[bold red]error:[/] {redact(message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def progress_bar(enabled: bool = True):
    """Show a progress bar fed by the run's progress events."""
    if not enabled:
        yield
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )
    task_id = bar.add_task("planning", total=None, detail="")

    def listener(p: RunProgress) -> None:
        detail = (f"ok {p.counts['succeeded']} failed {p.counts['failed']} "
                  f"${p.cost_usd:.2f}")
        bar.update(task_id, description=p.phase, total=p.total or None, completed=p.done,
                   detail=detail)

    subscribe(listener)
    with bar:
        try:
            yield
        finally:
            unsubscribe(listener)


def print_summary(markdown: str) -> None:
    """Render the run's markdown summary."""
    console.print(Markdown(markdown))


def run_coroutine(coro):
    """Run a coroutine to completion from synchronous CLI code."""
    return asyncio.run(coro)
