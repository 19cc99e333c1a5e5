"""Error classes, retryability and retry-hint parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from catalog_images.providers.errors import (
    PROVIDER_FAULTS,
    RETRYABLE,
    ErrorClass,
    ProviderError,
    classify_status,
    parse_duration,
    parse_retry_after_header,
    retry_delay_from_error_body,
)
from catalog_images.secrets import register_secret


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, ErrorClass.RATE_LIMITED), (401, ErrorClass.AUTH), (403, ErrorClass.AUTH),
     (404, ErrorClass.NOT_FOUND), (408, ErrorClass.TIMEOUT), (500, ErrorClass.UNAVAILABLE),
     (502, ErrorClass.UNAVAILABLE), (503, ErrorClass.UNAVAILABLE), (504, ErrorClass.UNAVAILABLE),
     (520, ErrorClass.UNAVAILABLE), (400, ErrorClass.BAD_REQUEST), (409, ErrorClass.BAD_REQUEST),
     (422, ErrorClass.BAD_REQUEST)])
def test_classify_status(status, error_class):
    assert classify_status(status) is error_class


def test_only_transient_classes_are_retryable_and_a_billed_failure_never_is():
    assert {ErrorClass.RATE_LIMITED, ErrorClass.UNAVAILABLE, ErrorClass.TIMEOUT,
                         ErrorClass.CONNECTION, ErrorClass.BAD_RESPONSE} == RETRYABLE
    for error_class in ErrorClass:
        assert ProviderError(error_class, "x").retryable is (error_class in RETRYABLE)
    assert not ProviderError(ErrorClass.BAD_RESPONSE, "x", billed=True).retryable
    assert {ErrorClass.AUTH, ErrorClass.NOT_FOUND} <= PROVIDER_FAULTS
    assert ErrorClass.SAFETY not in PROVIDER_FAULTS


def test_the_message_names_class_and_status_hides_secrets_and_is_bounded():
    secret = "sk-unit-secret-000111222333"
    register_secret(secret)
    error = ProviderError(ErrorClass.AUTH, f"key {secret} refused " + "x" * 600, status=401)
    assert str(error).startswith("auth: HTTP 401 key *** refused")
    assert secret not in str(error) and len(error.message) == 500
    assert str(ProviderError(ErrorClass.TIMEOUT, "ReadTimeout")) == "timeout: ReadTimeout"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("26s", 26.0), ("45.837906927s", 45.837906927), (" 3s ", 3.0), ("39043s", 39043.0),
     ("26", None), ("1m", None), ("", None), ("-2s", None)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_header_as_seconds_or_an_http_date():
    assert parse_retry_after_header("2.5") == 2.5
    assert parse_retry_after_header("-4") == 0.0
    assert parse_retry_after_header(None) is None and parse_retry_after_header("") is None
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after_header(soon) <= 31
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after_header(past) == 0.0


@pytest.mark.parametrize(
    ("body", "delay"),
    [({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                              "retryDelay": "bogus"}], "message": "Please retry in 4s."}}, 4.0),
     ({"error": {"message": "Please retry in 250ms"}}, 0.25),
     ({"error": {"message": "Quota exceeded. RETRY IN 2.5S"}}, 2.5),
     ({"error": {"details": ["not a dict", {"retryDelay": "9s"}]}}, None),
     ({"error": "a string"}, None), ([], None), (None, None), ("text", None)])
def test_retry_delay_from_error_body_edge_cases(body, delay):
    assert retry_delay_from_error_body(body) == (
        pytest.approx(delay) if delay is not None else None)
