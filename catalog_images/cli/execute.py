"""Run a refresh from the command line: validate, run the flow here, print the summary."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys

from catalog_images.cli.early_api import stop_launched

EXIT_OK, EXIT_ROWS_FAILED, EXIT_BAD_INPUT = 0, 1, 2
exit_code_at_once: int | None = None  # the code the command leaves with (set by leave_with)


def _exit_at_once() -> None:
    """Leave a run that has ended without tearing the interpreter down.

    Registered at import, before Prefect is imported, so it runs after every exit handler
    registered later (Prefect's log and event workers drain first, its temporary API is
    stopped). Freeing every module took 1.0-1.5 s after a 3-row run on an idle 2-core
    machine (a fifth of its time with a running server) and 1.7-8 s after a stop signal
    on a loaded one.
    """
    if exit_code_at_once is not None:
        stop_launched()  # its own exit handler was registered before this one
        logging.shutdown()  # registered before this handler: it would run after it
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(exit_code_at_once)


atexit.register(_exit_at_once)


def leave_with(code: int | str | None) -> None:
    """Have the process end with ``code`` (a ``SystemExit`` code) without its teardown; a
    message code (str) keeps Python's usual exit, which prints it."""
    global exit_code_at_once
    if code is None or isinstance(code, int):
        exit_code_at_once = code or 0


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print a one-line error (secrets redacted) and exit with ``code``."""
    from catalog_images.cli.console import fail as print_and_exit

    print_and_exit(message, code)


def execute_run(show_progress: bool = True, yes: bool = False, **params) -> int:
    """Validate, ask whether to spend (``approve_above_usd``; ``yes`` approves), run the flow
    in this process, print the summary; return the exit code."""
    from catalog_images.cli.console import console, print_summary, progress_bar, run_coroutine
    from catalog_images.errors import explain
    from catalog_images.providers.config import ConfigError, get_provider
    from catalog_images.settings import RunSettings, SettingsError

    try:
        settings = RunSettings(**params)
        for name in settings.provider_names:
            get_provider(name, settings.providers_file).resolve_api_key()
    except (SettingsError, ConfigError) as exc:
        fail(explain(exc))
    from catalog_images.cli.spend import confirm_spend

    confirm_spend(settings, yes)  # asked here, so the flow runs without its pause
    settings = settings.model_copy(update={"approve_above_usd": None})
    from catalog_images.cli.early_api import EarlyApiError, adopt
    from catalog_images.report.outcome import expected_error_of
    from catalog_images.run_sections import grouped_parameters
    from flows.catalog_refresh import catalog_refresh, outcome_of

    parameters = grouped_parameters(settings.model_dump())  # the flow's sections
    try:
        adopt()  # the temporary API launched on the first line (if any) answers
    except EarlyApiError as exc:
        fail(str(exc))
    with progress_bar(show_progress):
        state = run_coroutine(catalog_refresh(**parameters, return_state=True))
    expected = expected_error_of(state)
    if expected:  # catalog, storage, settings: the flow logged it without a traceback
        fail(expected)
    outcome = outcome_of(state)
    if outcome is not None:
        print_summary(outcome["summary"])
        if outcome.get("report_path"):
            console.print(f"Report written to {outcome['report_path']}")
        return EXIT_OK if state.is_completed() else EXIT_ROWS_FAILED
    fail(f"run failed before any image was generated: {state.message}")
    return EXIT_BAD_INPUT

