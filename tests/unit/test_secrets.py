"""Redaction reaches every log path: messages, tracebacks, stacks, Prefect's API handler."""

from __future__ import annotations

import io
import logging

from catalog_images.secrets import (
    RedactingFilter,
    install_log_redaction,
    redact,
    register_secret,
)

SECRET = "canary-secret-for-log-redaction-42"


def test_messages_tracebacks_and_stacks_are_masked():
    register_secret(SECRET)
    stream = io.StringIO()
    logger = logging.getLogger("catalog_images.test_secrets")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install_log_redaction()
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        logger.warning("key %s", SECRET, stack_info=True)
        try:
            raise RuntimeError(f"upstream said {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "RuntimeError: upstream said ***" in text and "Stack (most recent call last)" in text
    assert SECRET not in text
    assert redact(SECRET) == "***"


def test_prefects_api_log_handlers_get_the_filter():
    import prefect  # noqa: F401 - configures Prefect's logging
    from prefect.logging.configuration import setup_logging

    setup_logging()
    install_log_redaction()
    names = ("prefect.flow_runs", "prefect.task_runs", "prefect.extra")
    handlers = [h for name in names for h in logging.getLogger(name).handlers]
    assert handlers, "Prefect's API handlers were not found"
    for handler in handlers:
        assert any(isinstance(f, RedactingFilter) for f in handler.filters), handler
