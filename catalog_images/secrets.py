"""Keep secrets out of every string the pipeline emits.

Every API key or S3 secret the pipeline loads is registered here; ``redact`` replaces
them in any text (exception messages, log lines, report reasons) and ``RedactingFilter``
does the same for every log record that passes through a handler it is attached to.
"""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that ``redact`` hides it; short values are ignored."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    if not _secrets or not text:
        return text
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter that masks registered secrets in the message, its traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:  # formatters reuse this text
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler of every logger configured so far.

    That includes Prefect's API log handler (on ``prefect.flow_runs``, ``prefect.task_runs``
    and ``prefect.extra``, which do not all propagate), so run logs in the UI are masked too.
    """
    filt = RedactingFilter()
    loggers = [logging.getLogger(), *(logger for logger in list(
        logging.root.manager.loggerDict.values()) if isinstance(logger, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(filt)
