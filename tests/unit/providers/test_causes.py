"""Every 429 by its cause, and the configuration errors, from real error-body shapes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from catalog_images.models import ImageRequest
from catalog_images.providers.causes import cause_of_429, classify_answer, quota_ids
from catalog_images.providers.errors import ErrorClass, ProviderError
from catalog_images.providers.gemini import GeminiProvider
from catalog_images.providers.openai_images import OpenAIImagesProvider
from tests.unit.providers.wire import KEY, config, json_response

RPC = "type.googleapis.com/google.rpc."


def gemini_429(quota_id: str, metric: str, delay: str | None, message: str) -> dict:
    details = [{"@type": RPC + "QuotaFailure", "violations": [
        {"quotaMetric": metric, "quotaId": quota_id, "quotaValue": "250"}]},
        {"@type": RPC + "Help", "links": [{"description": "Learn more",
                                           "url": "https://ai.google.dev/gemini-api/docs"}]}]
    if delay:
        details.append({"@type": RPC + "RetryInfo", "retryDelay": delay})
    return {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED",
                      "details": details}}


PER_MINUTE = gemini_429(
    "GenerateRequestsPerMinutePerProjectPerModel",
    "generativelanguage.googleapis.com/generate_content_requests", "26s",
    "You exceeded your current quota, please check your plan and billing details. "
    "Please retry in 26.6s.")
PER_DAY = gemini_429(
    "GenerateRequestsPerDayPerProjectPerModel",
    "generativelanguage.googleapis.com/generate_content_requests_per_day", "39043s",
    "You exceeded your current quota, please check your plan and billing details.")
SPEND = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
                   "Your project has exceeded its monthly spending cap. Raise the cap in "
                   "Google AI Studio to continue."}}
PREPAY = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
                    "Your prepay balance is depleted. Add credits to continue."}}
TIER = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
                  "You reached the Tier 1 cap of $250 for this month (billing tier limit)."}}


@pytest.mark.parametrize(("body", "cause"), [
    (PER_MINUTE, ErrorClass.RATE_LIMITED), (PER_DAY, ErrorClass.DAILY_QUOTA),
    (SPEND, ErrorClass.SPEND_CAP), (PREPAY, ErrorClass.SPEND_CAP), (TIER, ErrorClass.SPEND_CAP),
    ({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota)."}},
     ErrorClass.RATE_LIMITED),
    (None, ErrorClass.RATE_LIMITED)])
def test_a_429_is_classified_by_its_cause(body, cause):
    assert cause_of_429(body) is cause


def test_quota_ids_come_from_every_violation():
    assert quota_ids(PER_DAY) == [
        "GenerateRequestsPerDayPerProjectPerModel",
        "generativelanguage.googleapis.com/generate_content_requests_per_day"]
    assert quota_ids({"error": {"details": "not a list"}}) == []


@pytest.mark.parametrize(("status", "body", "error_class"), [
    (403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "This API method "
     "requires billing to be enabled.", "details": [{"@type": RPC + "ErrorInfo",
                                                     "reason": "BILLING_DISABLED"}]}},
     ErrorClass.BILLING_DISABLED),
    (400, {"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "Gemini API free "
     "tier is not available in your country. Please enable billing on your project."}},
     ErrorClass.BILLING_DISABLED),
    (400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "API key not valid.",
     "details": [{"@type": RPC + "ErrorInfo", "reason": "API_KEY_INVALID"}]}}, ErrorClass.AUTH),
    (404, {"error": {"code": 404, "status": "NOT_FOUND"}}, ErrorClass.NOT_FOUND),
    (402, {"code": 402, "msg": "insufficient credits"}, ErrorClass.SPEND_CAP),
    (400, {"error": {"code": 400, "message": "bad aspect ratio"}}, ErrorClass.BAD_REQUEST)])
def test_config_and_billing_errors_are_told_apart(status, body, error_class):
    assert classify_answer(status, body) is error_class


def _gemini_error(status: int, body: dict, headers: dict | None = None) -> ProviderError:
    transport = httpx.MockTransport(lambda request: json_response(status, body, headers))
    client = GeminiProvider(config(), KEY, 1, transport=transport)

    async def go() -> ProviderError:
        try:
            await client.generate(ImageRequest("a mug", "1K", "1:1"))
        except ProviderError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("no error")

    return asyncio.run(go())


def test_the_gemini_client_keeps_the_cause_and_the_hours_long_hint():
    daily = _gemini_error(429, PER_DAY)
    assert daily.error_class is ErrorClass.DAILY_QUOTA and daily.retry_after_s == 39043.0
    assert _gemini_error(429, PER_MINUTE).error_class is ErrorClass.RATE_LIMITED
    assert _gemini_error(429, SPEND).error_class is ErrorClass.SPEND_CAP
    huge = _gemini_error(429, {"error": {"code": 429, "message": "slow down"}},
                         {"retry-after": "1000000000"})
    assert huge.error_class is ErrorClass.RATE_LIMITED and huge.retry_after_s == 1e9


def _openai_error(status: int, body: dict) -> ProviderError:
    transport = httpx.MockTransport(lambda request: json_response(status, body))
    client = OpenAIImagesProvider(config("openai-images"), KEY, 1, transport=transport)

    async def go() -> ProviderError:
        try:
            await client.generate(ImageRequest("a mug", "1K", "1:1"))
        except ProviderError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("no error")

    return asyncio.run(go())


def test_the_openai_relay_client_tells_insufficient_quota_and_per_day_from_pacing():
    spend = _openai_error(429, {"error": {"message": "You exceeded your current quota, please "
                                "check your plan and billing details.",
                                "type": "insufficient_quota", "code": "insufficient_quota"}})
    assert spend.error_class is ErrorClass.SPEND_CAP
    daily = _openai_error(429, {"error": {"message": "Rate limit reached for images on requests "
                                "per day (RPD): Limit 500, Used 500.",
                                "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"}})
    assert daily.error_class is ErrorClass.DAILY_QUOTA
    pacing = _openai_error(429, {"error": {"message": "Rate limit reached for images per min.",
                                 "type": "rate_limit_exceeded"}})
    assert pacing.error_class is ErrorClass.RATE_LIMITED
