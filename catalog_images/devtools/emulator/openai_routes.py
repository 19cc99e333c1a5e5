"""OpenAI-compatible images route: ``POST /v1/images/generations`` (Bearer auth)."""

from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from . import hostile
from . import openai_response as wire
from .core import Admission, Auth, EmulatorCore, GeneratedImage
from .http_util import (
    CORE_KEY,
    abort,
    answer,
    answer_image,
    bearer_token,
    file_url,
    origin,
    send_json,
)
from .openai_request import ImagesRequest, InvalidImagesRequest, parse_images_request

ERRORS: dict[str, tuple[int, str, str]] = {
    "503": (503, wire.OVERLOADED, "service_unavailable"),
    "500": (500, wire.SERVER_ERROR, "internal_error"),
    "hang": (504, wire.TIMEOUT, "timeout"),
}
NO_IMAGE_FAULTS = ("safety", "blocked")


def _item(request: web.Request, core: EmulatorCore, req: ImagesRequest,
          image: GeneratedImage, fault: str) -> dict[str, str]:
    """The answer's one data item: a URL to the published image or its base64."""
    data = image.data() if fault == "truncated" or req.response_format == "url" else b""
    if fault == "truncated":
        data = data[: len(data) // 2]
    if req.response_format == "url":
        data = hostile.image_bytes(fault) or data
        name = core.publish(data, image.mime_type, image.extension)
        url = file_url(core.result_origin(origin(request)), name)
        return {"url": hostile.result_url(fault, request, url)}
    if fault == "truncated":
        return {"b64_json": base64.b64encode(data).decode("ascii")}
    return {"b64_json": hostile.image_b64(fault) or image.b64()}


def add_routes(app: web.Application) -> None:
    """Register the images generation route."""
    app.router.add_post("/v1/images/generations", generate_images)


async def generate_images(request: web.Request) -> web.StreamResponse:
    """Authenticate, validate, apply quota and faults, then answer like an OpenAI relay."""
    core = request.app[CORE_KEY]
    core.count_request()
    auth = core.authenticate([bearer_token(request)])
    if auth is not Auth.OK:
        message = (
            "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
            if auth is Auth.MISSING
            else "Incorrect API key provided."
        )
        body = wire.error_body(message, "invalid_request_error", "invalid_api_key")
        return await answer(request, core, 401, body, "api_key_invalid")
    try:
        req = parse_images_request(await request.read())
    except InvalidImagesRequest as exc:
        body = wire.error_body(str(exc), "invalid_request_error", "invalid_value", exc.param)
        return await answer(request, core, 400, body, "invalid")
    if req.model not in core.config.models:
        message = f"The model '{req.model}' does not exist or you do not have access to it."
        body = wire.error_body(message, "invalid_request_error", "model_not_found", "model")
        return await answer(request, core, 404, body, "not_found")

    admission = core.admit(req.prompt)
    if admission.over_quota:
        assert admission.quota_wait_s is not None
        kind = admission.quota_kind
        return await _too_many(request, core, req.model, admission.quota_wait_s,
                               f"{'quota' if kind == 'minute' else kind}_429", kind)
    return await _generate(request, core, req, admission)


async def _too_many(
    request: web.Request, core: EmulatorCore, model: str, delay_s: float, outcome: str,
    kind: str = "minute",
) -> web.Response:
    limit = core.config.rpd if kind == "day" else core.config.rpm
    body, headers = wire.rate_limit(model, limit, delay_s, kind)
    return await answer(request, core, 429, body, outcome, headers)


async def _generate(
    request: web.Request, core: EmulatorCore, req: ImagesRequest, admission: Admission
) -> web.StreamResponse:
    cfg = core.config
    fault = hostile.applicable(admission.fault, urls=req.response_format == "url")
    if fault == "429":
        core.release(admission)
        return await _too_many(request, core, req.model, cfg.fault_retry_delay_s, fault)
    if fault in hostile.BODY_FAULTS:
        return await hostile.send_body_fault(request, core, fault)
    if fault in ERRORS:
        status, message, code = ERRORS[fault]
        body = wire.error_body(message, "server_error", code)
        if fault == "hang":
            core.count_outcome(fault)  # counted up front: the client usually gives up first
            await asyncio.sleep(cfg.hang_s)
            core.count_status(status)
            return (await send_json(request, status, body))[0]
        return await answer(request, core, status, body, fault)

    await asyncio.sleep(core.generation_delay())
    if fault == "reset":
        core.count_outcome(fault)
        return abort(request)
    if fault in NO_IMAGE_FAULTS:
        body = wire.error_body(wire.SAFETY, "invalid_request_error", "content_policy_violation")
        return await answer(request, core, 400, body, fault)

    image = await core.render(req.prompt, req.image_size, req.aspect_ratio, fault)
    pixels = f"{image.width}x{image.height}"
    items = [] if fault == "no_image" else [_item(request, core, req, image, fault)]
    body = wire.images_body(
        items, model=req.model, prompt=req.prompt, image_size=req.image_size, pixels=pixels,
        output_format=image.mime_type.removeprefix("image/"),
    )
    return await answer_image(request, core, body, fault,
                              (req.prompt, req.model, req.image_size))
