"""Expected errors: problems the user fixes (catalog, settings, storage, provider configuration).

They end a run with one or two lines (what is wrong, what to do) and no traceback: the flow
turns them into a Failed state (``report/outcome.py::expected_failure``), the CLI prints them
and exits 2, and ``install_clean_errors`` keeps Prefect's engine from logging a traceback for
them (a plan task that raises ``CatalogError`` is logged in one line). Any other exception is
unexpected and keeps its traceback everywhere.
"""

from __future__ import annotations

import logging

from catalog_images.catalog.read import CatalogError
from catalog_images.destination.lease import DestinationBusy
from catalog_images.destination.storage import StorageError
from catalog_images.providers.config import ConfigError
from catalog_images.secrets import redact
from catalog_images.settings import SettingsError

# What to do, by kind of problem: the second line of the message (left out when the message
# already says it, as check_bucket's does).
_ADVICE: tuple[tuple[type[Exception], str], ...] = (
    (CatalogError, "Fix the catalog file and run again; nothing was sent or spent."),
    (SettingsError, "Correct the setting named above and run again; nothing was sent or spent."),
    (ConfigError, "Fix the provider configuration (--provider, --providers-file, the API key "
                  "variable) and run again; nothing was sent or spent."),
    (DestinationBusy, ""),  # its message says to wait for the other run or stop it
    (StorageError, "Check the destination bucket, the endpoint (AWS_ENDPOINT_URL) and the "
                   "credentials, then run again."),
)
EXPECTED_ERRORS: tuple[type[Exception], ...] = tuple(kind for kind, _ in _ADVICE)
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def is_expected(exc: BaseException | None) -> bool:
    """Is ``exc`` a problem the user fixes (no traceback wanted)?"""
    return isinstance(exc, EXPECTED_ERRORS)


def kind_of(exc: BaseException) -> str:
    """A short name for the kind of problem: catalog, settings, provider or storage."""
    names = {CatalogError: "catalog", SettingsError: "settings", ConfigError: "provider",
             DestinationBusy: "storage", StorageError: "storage"}
    return next((name for kind, name in names.items() if isinstance(exc, kind)), "error")


def explain(exc: BaseException) -> str:
    """What is wrong and, on a second line, what to do (secrets redacted)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    advice = next((text for kind, text in _ADVICE if isinstance(exc, kind)), "")
    if isinstance(exc, StorageError) and "AWS_ENDPOINT_URL" in message:
        advice = ""
    return redact(f"{message}\n{advice}" if advice else message)


class CleanExpectedErrors(logging.Filter):
    """Drops the traceback of a log record about an expected error (the message stays), and
    the empty ``NoneType: None`` one Prefect attaches when a task returns a Failed state."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        if info and (info[1] is None or is_expected(info[1])):
            record.exc_info, record.exc_text = None, None
        return True


def install_clean_errors() -> None:
    """Attach the filter to Prefect's flow-run and task-run loggers (once per process)."""
    for name in _RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, CleanExpectedErrors) for f in logger.filters):
            logger.addFilter(CleanExpectedErrors())
