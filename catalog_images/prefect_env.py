"""Prefect defaults for this product, set before Prefect is imported."""

from __future__ import annotations

import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_ENABLED": "false",
    # The run report is the record of a run; task results need not be persisted.
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    # The first start of the ephemeral API migrates a new database: slow on a busy 2-core box.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def apply_defaults(quiet_console: bool = False) -> None:
    """Set Prefect variables the user has not set; optionally keep INFO logs off the terminal."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    if quiet_console:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
