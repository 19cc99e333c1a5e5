"""Expected errors: their two lines, and no traceback for them in the run loggers."""

from __future__ import annotations

import logging

import pytest

from catalog_images.catalog.read import CatalogError
from catalog_images.destination.storage import StorageError
from catalog_images.errors import CleanExpectedErrors, explain, install_clean_errors, kind_of
from catalog_images.providers.config import ConfigError
from catalog_images.secrets import register_secret
from catalog_images.settings import SettingsError


@pytest.mark.parametrize(
    ("error", "kind", "advice"),
    [(CatalogError("catalog c.csv: empty file"), "catalog", "Fix the catalog file"),
     (SettingsError("invalid run settings: concurrency"), "settings", "Correct the setting"),
     (ConfigError("unknown provider 'x'"), "provider", "Fix the provider configuration"),
     (StorageError("bucket 'b' is not usable"), "storage", "Check the destination bucket")],
)
def test_an_expected_error_says_what_is_wrong_then_what_to_do(error, kind, advice):
    first, second = explain(error).split("\n")
    assert first == str(error) and second.startswith(advice)
    assert kind_of(error) == kind


def test_advice_already_in_the_message_is_not_repeated():
    text = explain(StorageError("bucket 'b' is not usable: 403 (check the bucket name, "
                                "AWS_ENDPOINT_URL and credentials)"))
    assert "\n" not in text and text.count("AWS_ENDPOINT_URL") == 1


def test_a_busy_destination_keeps_its_own_advice():
    from catalog_images.destination.lease import DestinationBusy

    message = "s3://b/p is being refreshed by run r1. Wait for it to end, or stop it."
    assert explain(DestinationBusy(message)) == message


def test_the_explanation_is_redacted_and_on_two_lines_at_most():
    register_secret("secret-in-message-42")
    text = explain(StorageError("denied\nfor secret-in-message-42"))
    assert text.count("\n") == 1 and "secret-in-message-42" not in text


def _record(exc: BaseException | None) -> logging.LogRecord:
    try:
        if exc is not None:
            raise exc
        raise LookupError("placeholder")
    except Exception:  # noqa: BLE001
        import sys

        info = sys.exc_info() if exc is not None else (None, None, None)
    return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "failed: %r",
                             (exc,), info)


def test_the_filter_drops_the_traceback_of_expected_errors_only():
    clean = CleanExpectedErrors()
    expected, unexpected, empty = (_record(CatalogError("no sku")), _record(KeyError("x")),
                                   _record(None))
    assert clean.filter(expected) and clean.filter(unexpected) and clean.filter(empty)
    assert expected.exc_info is None and empty.exc_info is None
    assert unexpected.exc_info is not None and unexpected.exc_info[0] is KeyError
    formatted = logging.Formatter().format(expected)
    assert "no sku" in formatted and "Traceback" not in formatted


def test_installing_twice_adds_one_filter_to_each_run_logger():
    install_clean_errors()
    install_clean_errors()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, CleanExpectedErrors) for f in filters) == 1
