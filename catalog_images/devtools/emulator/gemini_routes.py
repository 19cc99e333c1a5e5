"""Gemini native route: ``POST /v1beta/models/{model}:generateContent``."""

from __future__ import annotations

import asyncio
import base64
import math

from aiohttp import web

from . import gemini_response as wire
from . import hostile
from .core import Admission, Auth, EmulatorCore, GeneratedImage
from .gemini_request import GenerateRequest, InvalidRequest, parse_generate_request
from .http_util import CORE_KEY, answer, answer_image, gemini_keys, send_json

ERRORS: dict[str, tuple[int, str, str]] = {
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "500": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "hang": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


def _image_b64(image: GeneratedImage, fault: str) -> str:
    """The answer's base64 image: whole, cut in half (``truncated``) or hostile."""
    if fault == "truncated":
        data = image.data()
        return base64.b64encode(data[: len(data) // 2]).decode("ascii")
    return hostile.image_b64(fault) or image.b64()


def add_routes(app: web.Application) -> None:
    """Register generateContent and models.get (v1beta and v1 prefixes)."""
    for version in ("v1beta", "v1"):
        app.router.add_post(f"/{version}/models/{{model_action}}", generate_content)
        app.router.add_get(f"/{version}/models/{{model_action}}", get_model)


def _not_found(model: str, action: str) -> dict:
    message = (
        f"models/{model} is not found for API version v1beta, or is not supported for "
        f"{action}. Call ListModels to see the list of available models and their supported "
        "methods."
    )
    return wire.error_body(404, "NOT_FOUND", message)


async def get_model(request: web.Request) -> web.StreamResponse:
    """models.get: a description of a served model, 404 NOT_FOUND for any other (a retired
    ID included); 405 when the emulator plays a relay without the endpoint.

    Counted apart (``model_lookups`` by status), not as requests: a lookup is neither
    generation nor quota, and request counts stay those of generation."""
    core = request.app[CORE_KEY]
    if not core.config.models_endpoint:
        core.count_model_lookup(405)
        return web.Response(status=405, text="405: Method Not Allowed")
    model = request.match_info["model_action"]
    auth = core.authenticate(_presented_keys(request))
    if auth is Auth.MISSING:
        status, body = 403, wire.missing_key_body()
    elif auth is Auth.INVALID:
        status, body = 400, wire.api_key_invalid_body()
    elif model not in core.config.models:
        status, body = 404, _not_found(model, "get")
    else:
        status, body = 200, wire.model_body(model)
    core.count_model_lookup(status)
    return (await send_json(request, status, body))[0]


def _presented_keys(request: web.Request) -> list[str]:
    return gemini_keys(request)


async def generate_content(request: web.Request) -> web.StreamResponse:
    """Authenticate, validate, apply quota and faults, then answer like Gemini."""
    core = request.app[CORE_KEY]
    core.count_request()
    model, _, action = request.match_info["model_action"].partition(":")
    auth = core.authenticate(_presented_keys(request))
    if auth is Auth.MISSING:
        return await answer(request, core, 403, wire.missing_key_body(), "unauthenticated")
    if auth is Auth.INVALID:
        return await answer(request, core, 400, wire.api_key_invalid_body(), "api_key_invalid")
    if action != "generateContent" or model not in core.config.models:
        body = _not_found(model, action or "generateContent")
        return await answer(request, core, 404, body, "not_found")
    try:
        req = parse_generate_request(await request.read())
    except InvalidRequest as exc:
        body = wire.error_body(400, "INVALID_ARGUMENT", str(exc))
        return await answer(request, core, 400, body, "invalid")

    admission = core.admit(req.prompt, model)
    if admission.over_quota:
        assert admission.quota_wait_s is not None
        kind = admission.quota_kind
        return await _too_many(request, core, model, admission.quota_wait_s,
                               f"{'quota' if kind == 'minute' else kind}_429", kind)
    return await _generate(request, core, model, req, admission)


async def _too_many(
    request: web.Request, core: EmulatorCore, model: str, delay_s: float, outcome: str,
    kind: str = "minute",
) -> web.StreamResponse:
    cfg = core.config
    hint = cfg.retry_after_header and kind != "spend"
    headers = {"Retry-After": str(max(1, math.ceil(delay_s)))} if hint else None
    limit = cfg.rpd if kind == "day" else cfg.rpm
    body = wire.refusal_body(kind, model, limit, delay_s)
    return await answer(request, core, 429, body, outcome, headers)


async def _generate(
    request: web.Request,
    core: EmulatorCore,
    model: str,
    req: GenerateRequest,
    admission: Admission,
) -> web.StreamResponse:
    cfg = core.config
    fault = hostile.applicable(admission.fault)
    if fault == "429":
        core.release(admission)
        return await _too_many(request, core, model, cfg.fault_retry_delay_s, fault)
    if fault in hostile.BODY_FAULTS:
        return await hostile.send_body_fault(request, core, fault)
    if fault in ERRORS:
        code, status, message = ERRORS[fault]
        if fault == "hang":
            core.count_outcome(fault)  # counted up front: the client usually gives up first
            await asyncio.sleep(cfg.hang_s)
            core.count_status(code)
            return (await send_json(request, code, wire.error_body(code, status, message)))[0]
        return await answer(request, core, code, wire.error_body(code, status, message), fault)

    await asyncio.sleep(core.generation_delay())
    if fault == "reset":
        core.count_outcome(fault)
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # nothing reaches the client: the write fails silently
    no_image = _no_image_answer(model, req, fault)
    if no_image is not None:
        body, outcome = no_image
        core.bill_tokens(model, body.get("usageMetadata"))  # prompt and thinking are billed
        return await answer(request, core, 200, body, outcome)

    image = await core.render(req.prompt, req.image_size, req.aspect_ratio, fault)
    body = wire.success_body(
        model=model,
        prompt=req.prompt,
        image_size=req.image_size,
        references=req.reference_images,
        image_b64=_image_b64(image, fault),
        mime_type=image.mime_type,
        as_data_uri=cfg.image_as_data_uri,
        thought_parts=cfg.thought_parts,
    )
    return await answer_image(request, core, body, fault, (req.prompt, model, req.image_size),
                              body["usageMetadata"])


def _no_image_answer(model: str, req: GenerateRequest, fault: str) -> tuple[dict, str] | None:
    """(body, outcome) of an answer without an image (safety, blocked, text only), or None."""
    refs = req.reference_images
    if fault == "safety":
        return wire.safety_body(model, req.prompt, refs), fault
    if fault == "blocked":
        return wire.blocked_body(model, req.prompt, refs), fault
    if fault == "no_image" or not req.wants_image:
        outcome = fault if fault == "no_image" else "text_only"
        return wire.text_only_body(model, req.prompt, refs), outcome
    return None
