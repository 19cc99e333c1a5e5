"""Gemini emulator: real HTTP with httpx against an in-process server on a free port."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from catalog_images.devtools.emulator import (
    ASPECT_RATIOS,
    IMAGE_SIZES,
    Emulator,
    EmulatorConfig,
    image_dimensions,
)

MODEL = "gemini-3-pro-image"
PATH = f"/v1beta/models/{MODEL}:generateContent"
BASE = EmulatorConfig(latency_s=0.002, seed=1234)
API_KEY = "sekret-KEY-0123456789"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(BASE).start() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(emu: Emulator) -> None:
    emu.configure(**{f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE)})
    emu.clear_scripts()
    emu.reset_counters()


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, timeout=10) as c:
        yield c


def body(prompt: str, ratio: str | None = None, size: str | None = None) -> dict[str, Any]:
    image_config = {k: v for k, v in (("aspectRatio", ratio), ("imageSize", size)) if v}
    return {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
    }


def parts_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return payload["candidates"][0]["content"]["parts"]


def image_part(payload: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in parts_of(payload) if "inlineData" in p), None)


def decode(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def sha(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


# ---- success ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "ratio"), [("1K", "1:1"), ("2K", "16:9"), ("1K", "21:9"), ("4K", "3:4")]
)
def test_success_image_not_first_part_and_right_size(
    client: httpx.Client, size: str, ratio: str
) -> None:
    r = client.post(PATH, json=body(f"red sneaker {size} {ratio}", ratio, size))
    assert r.status_code == 200
    payload = r.json()
    candidate = payload["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    parts = parts_of(payload)
    assert "inlineData" not in parts[0]
    assert any(p.get("thought") is True for p in parts)
    part = image_part(payload)
    assert part is not None and part["thoughtSignature"]
    assert part["inlineData"]["mimeType"] == "image/png"
    img = decode(part["inlineData"]["data"])
    assert img.format == "PNG"
    assert img.size == image_dimensions(size, ratio)
    a, b = (int(x) for x in ratio.split(":"))
    assert abs(img.width / img.height / (a / b) - 1) < 0.01
    if ratio == "1:1":
        assert img.size == ({"1K": 1024, "2K": 2048, "4K": 4096}[size],) * 2
    usage = payload["usageMetadata"]
    tokens = 2000 if size == "4K" else 1120
    assert usage["candidatesTokenCount"] == tokens
    assert usage["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": tokens}]
    assert usage["totalTokenCount"] >= usage["promptTokenCount"] + tokens
    assert payload["modelVersion"] == MODEL and payload["responseId"]


def test_dimensions_keep_ratio_and_pixel_count() -> None:
    for size in IMAGE_SIZES:
        side = {"1K": 1024, "2K": 2048, "4K": 4096}[size]
        for ratio in ASPECT_RATIOS:
            w, h = image_dimensions(size, ratio)
            a, b = (int(x) for x in ratio.split(":"))
            assert abs(w / h / (a / b) - 1) < 0.01
            assert abs(w * h / side**2 - 1) < 0.02


def test_snake_case_reference_image_and_colours_per_prompt(client: httpx.Client) -> None:
    ref = base64.b64encode(b"\x89PNG\r\n\x1a\nnot-really-a-png").decode()
    snake = {
        "contents": [
            {
                "parts": [
                    {"text": "blue mug"},
                    {"inline_data": {"mime_type": "image/png", "data": ref}},
                ]
            }
        ],
        "generation_config": {
            "response_modalities": ["TEXT", "IMAGE"],
            "image_config": {"aspect_ratio": "4:5", "image_size": "1K"},
        },
    }
    first = client.post(PATH, json=snake)
    assert first.status_code == 200
    assert first.json()["usageMetadata"]["promptTokenCount"] > 560
    img = decode(image_part(first.json())["inlineData"]["data"])
    assert img.size == image_dimensions("1K", "4:5")
    again = client.post(PATH, json=snake).json()
    other = client.post(PATH, json=body("green mug", "4:5")).json()
    data = image_part(first.json())["inlineData"]["data"]
    assert image_part(again)["inlineData"]["data"] == data
    assert image_part(other)["inlineData"]["data"] != data


def test_data_uri_option_and_no_thought_parts(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(image_as_data_uri=True, thought_parts=False)
    payload = client.post(PATH, json=body("lamp")).json()
    parts = parts_of(payload)
    assert len(parts) == 1 and image_part(payload) is None
    prefix = "data:image/png;base64,"
    assert parts[0]["text"].startswith(prefix)
    assert decode(parts[0]["text"][len(prefix) :]).size == (1024, 1024)
    assert emu.ledger()["images"] == 1


def test_concurrent_requests_all_billed(emu: Emulator) -> None:
    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=emu.base_url, limits=limits, timeout=10) as c:
            rs = await asyncio.gather(*(c.post(PATH, json=body(f"item {i}")) for i in range(48)))
            return [r.status_code for r in rs]

    assert asyncio.run(run()) == [200] * 48
    ledger = emu.ledger()
    assert ledger["images"] == 48 and len(ledger["by_prompt"]) == 48
    assert emu.duplicates() == {}


# ---- billing ------------------------------------------------------------------------------
def test_ledger_bills_delivered_images_only(emu: Emulator, client: httpx.Client) -> None:
    faults = ["429", "503", "500", "malformed", "truncated", "safety", "no_image", "blocked"]
    emu.script("chair", [*faults, "reset", "ok"])
    for _ in faults:
        client.post(PATH, json=body("oak chair", size="4K"))
    with pytest.raises(httpx.TransportError):
        client.post(PATH, json=body("oak chair", size="4K"))
    assert emu.ledger()["images"] == 0
    assert client.post(PATH, json=body("oak chair", size="4K")).status_code == 200
    ledger = emu.ledger()
    assert ledger["images"] == 1
    assert ledger["usd"] == pytest.approx(0.24)
    assert ledger["by_prompt"] == {sha("oak chair"): 1}
    assert ledger["by_size"] == {"4K": 1}
    assert emu.duplicates() == {}

    client.post(PATH, json=body("oak chair", size="4K"))
    client.post(PATH, json=body("pine table", size="2K"))
    ledger = emu.ledger()
    assert ledger["images"] == 3
    assert ledger["usd"] == pytest.approx(0.24 * 2 + 0.134)
    assert emu.duplicates() == {sha("oak chair"): 2}
    stats = emu.stats()
    assert stats["requests"] == 12
    assert stats["injected"] == {k: 1 for k in [*faults, "reset"]}
    assert stats["by_status"]["200"] == 8


def test_client_that_gives_up_is_not_billed(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(latency_s=0.4)
    with pytest.raises(httpx.TimeoutException):
        client.post(PATH, json=body("abandoned"), timeout=0.1)
    time.sleep(0.5)
    assert emu.ledger()["images"] == 0


# ---- faults -------------------------------------------------------------------------------
def _error(r: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert r.status_code == code
    error = r.json()["error"]
    assert error["code"] == code and error["status"] == status
    return error


def _retry_delay(error: dict[str, Any]) -> float:
    infos = [d for d in error["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
    assert len(infos) == 1
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", infos[0]["retryDelay"])
    assert match, infos[0]["retryDelay"]
    return float(match.group(1))


def test_fault_429(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["429"])
    error = _error(client.post(PATH, json=body("x")), 429, "RESOURCE_EXHAUSTED")
    assert _retry_delay(error) > 0
    assert any(d["@type"].endswith("QuotaFailure") for d in error["details"])


@pytest.mark.parametrize(
    ("kind", "code", "status"), [("503", 503, "UNAVAILABLE"), ("500", 500, "INTERNAL")]
)
def test_fault_server_errors(
    emu: Emulator, client: httpx.Client, kind: str, code: int, status: str
) -> None:
    emu.script("x", [kind])
    error = _error(client.post(PATH, json=body("x")), code, status)
    if kind == "503":
        assert error["message"] == "The model is overloaded. Please try again later."


def test_fault_malformed(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["malformed"])
    r = client.post(PATH, json=body("x"))
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


def test_fault_truncated(emu: Emulator, client: httpx.Client) -> None:
    good = image_part(client.post(PATH, json=body("x")).json())["inlineData"]["data"]
    emu.script("x", ["truncated"])
    r = client.post(PATH, json=body("x"))
    assert r.status_code == 200
    data = image_part(r.json())["inlineData"]["data"]
    assert len(base64.b64decode(data)) == len(base64.b64decode(good)) // 2
    with pytest.raises(OSError):  # PIL raises OSError subclasses for cut images
        decode(data)


def test_fault_safety_no_image_blocked(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["safety", "no_image", "blocked"])
    safety = client.post(PATH, json=body("x")).json()
    assert safety["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert "inlineData" not in json.dumps(safety)

    no_image = client.post(PATH, json=body("x")).json()
    assert no_image["candidates"][0]["finishReason"] == "STOP"
    assert [list(p) for p in parts_of(no_image)] == [["text"]]

    blocked = client.post(PATH, json=body("x"))
    assert blocked.status_code == 200
    assert "candidates" not in blocked.json()
    assert blocked.json()["promptFeedback"] == {"blockReason": "SAFETY"}


def test_fault_reset_is_a_transport_error(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["reset"])
    with pytest.raises(httpx.TransportError):
        client.post(PATH, json=body("x"))
    assert client.post(PATH, json=body("x")).status_code == 200


def test_fault_hang_times_out_client_then_504(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(hang_s=2.0)
    emu.script("x", ["hang"])
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        client.post(PATH, json=body("x"), timeout=0.3)
    assert time.monotonic() - started < 1.5
    emu.configure(hang_s=0.1)
    emu.script("x", ["hang"])
    _error(client.post(PATH, json=body("x")), 504, "DEADLINE_EXCEEDED")
    assert emu.ledger()["images"] == 0


def test_random_faults_are_seeded(emu: Emulator, client: httpx.Client) -> None:
    def run() -> list[int]:
        emu.configure(faults={"503": 0.5}, seed=7)
        return [client.post(PATH, json=body(f"r{i}")).status_code for i in range(24)]

    first = run()
    assert set(first) == {200, 503}
    assert run() == first
    emu.configure(faults={"503": 1.0})
    emu.script("r", ["ok"])  # scripted faults win over random ones
    assert client.post(PATH, json=body("r")).status_code == 200
    assert client.post(PATH, json=body("r")).status_code == 503


# ---- quota --------------------------------------------------------------------------------
def test_quota_sixth_request_in_window_gets_429(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(rpm=5, quota_window_s=1.0, retry_after_header=True)
    emu.script("q", ["503"])
    codes = [client.post(PATH, json=body(f"q{i}")).status_code for i in range(5)]
    assert codes == [503, 200, 200, 200, 200]
    r = client.post(PATH, json=body("q-sixth"))
    error = _error(r, 429, "RESOURCE_EXHAUSTED")
    delay = _retry_delay(error)
    assert 0 < delay <= 1.0
    assert "Please retry in" in error["message"]
    assert any(d["@type"].endswith("QuotaFailure") for d in error["details"])
    assert r.headers["Retry-After"] == "1"
    assert client.post(PATH, json=body("q-seventh")).status_code == 429  # 429s take no slot
    time.sleep(delay + 0.02)
    assert client.post(PATH, json=body("q-after")).status_code == 200
    assert emu.stats()["quota_429"] == 2


# ---- auth ---------------------------------------------------------------------------------
def test_auth_wrong_key_missing_key_and_accepted_forms(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(api_key=API_KEY)
    wrong = "wrong-KEY-9876543210"
    r = client.post(PATH, json=body("x"), headers={"x-goog-api-key": wrong})
    error = _error(r, 400, "INVALID_ARGUMENT")
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert wrong not in r.text and API_KEY not in r.text

    r = client.post(PATH, json=body("x"), params={"key": wrong})
    assert r.status_code == 400 and wrong not in r.text
    _error(client.post(PATH, json=body("x")), 403, "PERMISSION_DENIED")

    for kwargs in (
        {"headers": {"x-goog-api-key": API_KEY}},
        {"headers": {"Authorization": f"Bearer {API_KEY}"}},
        {"params": {"key": API_KEY}},
    ):
        assert client.post(PATH, json=body("x"), **kwargs).status_code == 200
    config = client.get("/_emulator/config").json()
    assert config["api_key"] == "***"


# ---- scripts and validation ----------------------------------------------------------------
def test_scripted_faults_consumed_in_order(emu: Emulator, client: httpx.Client) -> None:
    emu.script("alpha", ["503", "ok", "500"])
    assert client.post(PATH, json=body("beta boot")).status_code == 200
    codes = [client.post(PATH, json=body(f"alpha boot {i}")).status_code for i in range(4)]
    assert codes == [503, 200, 500, 200]
    with pytest.raises(ValueError):
        emu.script("alpha", ["404"])


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (body("x", ratio="7:3"), 400),
        (body("x", ratio="auto"), 400),
        (body("x", size="8K"), 400),
        (body("   "), 400),
        ({"contents": []}, 400),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "@@"}}]}]}, 400),
        (
            {
                "contents": [
                    {
                        "parts": [
                            {"text": "x"},
                            {"inlineData": {"mimeType": "image/png", "data": "*"}},
                        ]
                    }
                ]
            },
            400,
        ),
        ({**body("x"), "generationConfig": {"candidateCount": 2}}, 400),
    ],
)
def test_invalid_requests_get_400(
    emu: Emulator, client: httpx.Client, payload: dict[str, Any], code: int
) -> None:
    error = _error(client.post(PATH, json=payload), code, "INVALID_ARGUMENT")
    assert error["message"]
    assert emu.ledger()["images"] == 0


def test_not_json_unknown_model_and_wrong_action(client: httpx.Client) -> None:
    _error(client.post(PATH, content=b"{not json"), 400, "INVALID_ARGUMENT")
    _error(client.post("/v1beta/models/imagen-9:generateContent", json=body("x")), 404, "NOT_FOUND")
    other = f"/v1beta/models/{MODEL}:streamGenerateContent"
    _error(client.post(other, json=body("x")), 404, "NOT_FOUND")


# ---- control API and lifecycle --------------------------------------------------------------
def test_http_control_routes(emu: Emulator, client: httpx.Client) -> None:
    r = client.post("/_emulator/config", json={"latency_s": 0.001, "faults": {"503": 0.0}})
    assert r.status_code == 200 and r.json()["latency_s"] == 0.001
    assert client.post("/_emulator/config", json={"nope": 1}).status_code == 400
    assert client.post("/_emulator/config", json={"faults": {"boom": 1}}).status_code == 400
    script = {"prompt_contains": "vase", "faults": ["500"]}
    assert client.post("/_emulator/script", json=script).status_code == 200
    assert client.post(PATH, json=body("vase")).status_code == 500
    assert client.post(PATH, json=body("vase")).status_code == 200
    assert client.get("/_emulator/ledger").json()["images"] == 1
    stats = client.get("/_emulator/stats").json()
    assert stats["requests"] == 2 and stats["injected"] == {"500": 1}
    assert client.post("/_emulator/reset").status_code == 200
    assert client.get("/_emulator/ledger").json()["images"] == 0


def test_context_manager_stops_server() -> None:
    with Emulator(EmulatorConfig(latency_s=0)).start() as emu:
        url = emu.base_url
        assert httpx.post(url + PATH, json=body("x")).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.post(url + PATH, json=body("x"), timeout=2)


# ---- models and the token ledger ----------------------------------------------------------
@pytest.mark.parametrize("retired", ["gemini-3-pro-image-preview",
                                     "gemini-3.1-flash-image-preview", "gemini-2.5-flash-image"])
def test_ga_models_are_described_and_retired_ids_are_not_found_everywhere(
    emu: Emulator, client: httpx.Client, retired: str
) -> None:
    described = client.get("/v1beta/models/gemini-3.1-flash-image")
    assert described.status_code == 200
    assert described.json()["name"] == "models/gemini-3.1-flash-image"
    assert "generateContent" in described.json()["supportedGenerationMethods"]
    for answer in (client.get(f"/v1beta/models/{retired}"),
                   client.post(f"/v1beta/models/{retired}:generateContent", json=body("cup"))):
        _error(answer, 404, "NOT_FOUND")
    emu.configure(models_endpoint=False)  # a relay without models.get
    assert client.get("/v1beta/models/gemini-3-pro-image").status_code == 405
    assert emu.ledger()["tokens"]["answers"] == 0


def test_usage_reports_thinking_and_the_token_ledger_bills_every_answer(
    emu: Emulator, client: httpx.Client
) -> None:
    emu.script("unsafe", ["safety"])
    emu.script("nope", ["blocked"])
    usages = [client.post(PATH, json=body(p, size="4K")).json()["usageMetadata"]
              for p in ("oak chair", "pine table", "unsafe lamp", "nope")]
    chair, table, unsafe, blocked = usages
    assert chair["thoughtsTokenCount"] != table["thoughtsTokenCount"]  # varies by prompt
    assert all(u["thoughtsTokenCount"] >= 184 for u in (chair, table, unsafe))
    assert chair["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": 2000}]
    assert unsafe["candidatesTokenCount"] == 0 and "thoughtsTokenCount" not in blocked
    tokens = emu.ledger()["tokens"]
    expected = sum((u["promptTokenCount"] * 2 + u["candidatesTokenCount"] * 120
                    + u.get("thoughtsTokenCount", 0) * 12) / 1e6 for u in usages)
    assert tokens["answers"] == 4 and tokens["usd"] == pytest.approx(expected, abs=1e-6)
    assert emu.ledger()["images"] == 2  # the per-image ledger bills delivered images only
    flash = client.post("/v1beta/models/gemini-3.1-flash-image:generateContent",
                        json=body("mug", size="2K")).json()["usageMetadata"]
    assert flash["candidatesTokenCount"] == 1680
    assert emu.ledger()["tokens"]["usd_by_model"]["gemini-3.1-flash-image"] > 0
