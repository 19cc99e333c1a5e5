"""Emulator wire formats beyond Gemini native: OpenAI-compatible images, Kie-style async
tasks and Gemini Batch Mode (real HTTP with httpx against an in-process server)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from catalog_images.devtools.emulator import Emulator, EmulatorConfig, image_dimensions

MODEL = "gemini-3-pro-image"
IMAGES = "/v1/images/generations"
CREATE = "/api/v1/jobs/createTask"
RECORD = "/api/v1/jobs/recordInfo"
BATCH = f"/v1beta/models/{MODEL}:batchGenerateContent"
BASE = EmulatorConfig(latency_s=0.002, seed=4321, batch_delay_s=0.2)
API_KEY = "sekret-KEY-0123456789"
WRONG_KEY = "wrong-KEY-9876543210"


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


def sha(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def wait_for(poll: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """Call ``poll`` every 20 ms until ``done(result)``; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = poll()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


# ---- OpenAI-compatible images ----------------------------------------------------------------
def images(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "n": 1, **extra}


@pytest.mark.parametrize(
    ("extra", "size", "ratio"),
    [
        ({"size": "16:9", "image_size": "2K"}, "2K", "16:9"),
        ({"size": "1024x1024"}, "1K", "1:1"),
        ({"size": "1792x1024", "quality": "hd"}, "1K", "16:9"),
        ({"size": "auto", "aspect_ratio": "3:4", "image_size": "4K"}, "4K", "3:4"),
        ({}, "1K", "1:1"),
    ],
)
def test_openai_b64_success_right_size_billed_once(
    emu: Emulator, client: httpx.Client, extra: dict[str, Any], size: str, ratio: str
) -> None:
    prompt = f"teapot {size} {ratio}"
    r = client.post(IMAGES, json=images(prompt, **extra))
    assert r.status_code == 200
    payload = r.json()
    assert isinstance(payload["created"], int) and len(payload["data"]) == 1
    img = decode(base64.b64decode(payload["data"][0]["b64_json"]))
    assert img.format == "PNG" and img.size == image_dimensions(size, ratio)
    assert payload["usage"]["output_tokens"] == (2000 if size == "4K" else 1120)
    ledger = emu.ledger()
    assert ledger["images"] == 1 and ledger["by_prompt"] == {sha(prompt): 1}
    assert ledger["by_mode"] == {"standard": 1}
    assert ledger["usd"] == pytest.approx(0.24 if size == "4K" else 0.134)


def test_openai_url_mode_serves_png(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(IMAGES, json=images("url vase", size="9:16", response_format="url"))
    assert r.status_code == 200
    url = r.json()["data"][0]["url"]
    assert re.fullmatch(rf"{re.escape(emu.base_url)}/_emulator/files/[0-9a-f]+\.png", url)
    assert emu.ledger()["images"] == 1  # billed when the generation response went out
    with httpx.Client(timeout=10) as anonymous:  # no auth needed for the download
        got = anonymous.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert decode(got.content).size == image_dimensions("1K", "9:16")
    assert emu.ledger()["images"] == 1
    assert client.get("/_emulator/files/nope.png").status_code == 404


def test_openai_429_quota_and_fault_with_retry_after(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(fault_retry_delay_s=1.2)
    emu.script("x", ["429"])
    r = client.post(IMAGES, json=images("x"))
    assert r.status_code == 429
    error = r.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and error["message"]
    assert r.headers["Retry-After"] == "2" and r.headers["retry-after-ms"] == "1200"

    emu.configure(rpm=1, quota_window_s=0.5)
    assert client.post(IMAGES, json=images("q1")).status_code == 200
    r = client.post(IMAGES, json=images("q2"))
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert 0 < int(r.headers["retry-after-ms"]) <= 500
    assert emu.ledger()["images"] == 1


def test_openai_faults_bill_nothing(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["safety", "blocked", "no_image", "503", "500", "malformed", "truncated"])
    for _ in range(2):
        r = client.post(IMAGES, json=images("x"))
        assert r.status_code == 400
        error = r.json()["error"]
        assert error["code"] == "content_policy_violation"
        assert error["type"] == "invalid_request_error"
    r = client.post(IMAGES, json=images("x"))
    assert r.status_code == 200 and r.json()["data"] == []
    for status in (503, 500):
        r = client.post(IMAGES, json=images("x"))
        assert r.status_code == status and r.json()["error"]["type"] == "server_error"
    r = client.post(IMAGES, json=images("x"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    r = client.post(IMAGES, json=images("x"))
    with pytest.raises(OSError):
        decode(base64.b64decode(r.json()["data"][0]["b64_json"]))
    assert emu.ledger()["images"] == 0
    emu.script("x", ["reset"])
    with pytest.raises(httpx.TransportError):
        client.post(IMAGES, json=images("x"))
    assert emu.ledger()["images"] == 0


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (images("x", n=2), "n"),
        (images("x", size="7:3"), "size"),
        (images("x", size="1000x300"), "size"),
        (images("x", image_size="8K"), "image_size"),
        (images("x", response_format="b64"), "response_format"),
        ({"model": MODEL, "prompt": " "}, "prompt"),
    ],
)
def test_openai_invalid_requests(client: httpx.Client, payload: dict[str, Any], param: str) -> None:
    r = client.post(IMAGES, json=payload)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_openai_auth_never_echoes_key(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(api_key=API_KEY)
    r = client.post(IMAGES, json=images("x"), headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert WRONG_KEY not in r.text and API_KEY not in r.text
    assert client.post(IMAGES, json=images("x")).status_code == 401
    ok = client.post(IMAGES, json=images("x"), headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200
    r = client.post(
        IMAGES, json=images("x", model="dall-e-3"), headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


# ---- Kie-style async tasks -------------------------------------------------------------------
def task(prompt: str, **inputs: Any) -> dict[str, Any]:
    return {"model": "nano-banana-pro", "input": {"prompt": prompt, **inputs}}


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(CREATE, json=body)
    assert r.status_code == 200  # always HTTP 200; the outcome is the body's code
    return r.json()


def record(client: httpx.Client, task_id: str) -> dict[str, Any]:
    r = client.get(RECORD, params={"taskId": task_id})
    assert r.status_code == 200
    return r.json()


def finished(client: httpx.Client, task_id: str) -> dict[str, Any]:
    body = wait_for(
        lambda: record(client, task_id), lambda b: b["data"]["state"] in ("success", "fail")
    )
    return body["data"]


def test_task_states_progress_and_bill_at_success(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(task_queue_s=0.15, latency_s=0.15)
    body = task("kettle", aspect_ratio="4:5", resolution="2K", image_input=["https://x/ref.png"])
    created = create(client, body)
    assert created["code"] == 200 and created["msg"] == "success"
    task_id = created["data"]["taskId"]
    states: list[str] = []

    def poll() -> dict[str, Any]:
        billed = emu.ledger()["images"]  # read first: the task may end right after
        data = record(client, task_id)["data"]
        if not states or states[-1] != data["state"]:
            states.append(data["state"])
        if data["state"] != "success":
            assert billed == 0 and data["resultJson"] == ""
        return data

    data = wait_for(poll, lambda d: d["state"] == "success")
    assert states == ["waiting", "generating", "success"]
    assert json.loads(data["param"]) == body and data["model"] == "nano-banana-pro"
    assert data["createTime"] <= data["updateTime"] == data["completeTime"]
    assert data["failCode"] == "" and data["failMsg"] == ""
    [url] = json.loads(data["resultJson"])["resultUrls"]
    got = httpx.get(url, timeout=10)
    assert got.headers["content-type"] == "image/png"
    assert decode(got.content).size == image_dimensions("2K", "4:5")
    for _ in range(3):
        record(client, task_id)
    ledger = emu.ledger()
    assert ledger["images"] == 1 and ledger["by_prompt"] == {sha("kettle"): 1}
    assert ledger["by_model"] == {"nano-banana-pro": 1} and ledger["usd"] == pytest.approx(0.134)


def test_task_429_in_body_and_polls_are_free(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(rpm=1, quota_window_s=5.0)
    first = create(client, task("q1"))
    assert first["code"] == 200
    limited = create(client, task("q2"))
    assert limited["code"] == 429
    match = re.search(r"retry in (\d+(?:\.\d+)?)s", limited["msg"])
    assert match and 0 < float(match.group(1)) <= 5.0
    for _ in range(10):  # polls are not limited
        assert record(client, first["data"]["taskId"])["code"] == 200
    emu.configure(rpm=None)
    emu.script("x", ["429", "503", "500"])
    assert [create(client, task("x"))["code"] for _ in range(3)] == [429, 503, 500]
    assert finished(client, first["data"]["taskId"])["state"] == "success"
    assert emu.ledger()["images"] == 1


def test_task_failures_not_billed(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["safety", "no_image", "truncated"])
    ids = [create(client, task("x"))["data"]["taskId"] for _ in range(3)]
    safety, no_image, truncated = (finished(client, i) for i in ids)
    assert safety["state"] == "fail" and safety["failCode"] == "content_policy"
    assert safety["failMsg"] and safety["resultJson"] == ""
    assert (no_image["state"], no_image["failCode"]) == ("fail", "500")
    assert no_image["failMsg"] == "no image generated"
    assert truncated["state"] == "success"
    [url] = json.loads(truncated["resultJson"])["resultUrls"]
    with pytest.raises(OSError):
        decode(httpx.get(url, timeout=10).content)
    assert emu.ledger()["images"] == 0


def test_task_malformed_poll_once_then_fine(emu: Emulator, client: httpx.Client) -> None:
    emu.script("x", ["malformed"])
    task_id = create(client, task("x"))["data"]["taskId"]

    def raw() -> bytes:
        return client.get(RECORD, params={"taskId": task_id}).content

    cut = wait_for(raw, lambda b: b"generating" not in b and b"waiting" not in b)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    assert record(client, task_id)["data"]["state"] == "success"
    assert emu.ledger()["images"] == 1


def test_task_auth_validation_and_unknown(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(api_key=API_KEY)
    r = client.post(CREATE, json=task("x"), headers={"Authorization": f"Bearer {WRONG_KEY}"})
    assert r.status_code == 200 and r.json()["code"] == 401
    assert WRONG_KEY not in r.text and API_KEY not in r.text
    assert create(client, task("x"))["code"] == 401
    auth = {"Authorization": f"Bearer {API_KEY}"}
    assert client.get(RECORD, params={"taskId": "x"}).json()["code"] == 401
    assert client.get(RECORD, params={"taskId": "nope"}, headers=auth).json()["code"] == 404
    for bad in (task("x", resolution="8K"), task(""), {**task("x"), "model": "other"}):
        assert client.post(CREATE, json=bad, headers=auth).json()["code"] == 422
    r = client.post(CREATE, json=task("x"), headers=auth)
    assert r.json()["code"] == 200 and API_KEY not in r.text
    task_id = r.json()["data"]["taskId"]
    final = wait_for(
        lambda: client.get(RECORD, params={"taskId": task_id}, headers=auth).text,
        lambda text: '"state":"success"' in text,
    )
    assert API_KEY not in final
    assert emu.ledger()["images"] == 1


# ---- Gemini Batch Mode -----------------------------------------------------------------------
def gen(prompt: str, ratio: str = "1:1", size: str = "1K") -> dict[str, Any]:
    return {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": ratio, "imageSize": size},
        },
    }


def inline(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    requests = [{"request": req, "metadata": {"key": key}} for key, req in entries]
    return {"batch": {"display_name": "t", "input_config": {"requests": {"requests": requests}}}}


def image_of(response: dict[str, Any]) -> Image.Image:
    parts = response["candidates"][0]["content"]["parts"]
    data = next(p["inlineData"]["data"] for p in parts if "inlineData" in p)
    return decode(base64.b64decode(data))


def batch_done(client: httpx.Client, name: str) -> dict[str, Any]:
    return wait_for(lambda: client.get(f"/v1beta/{name}").json(), lambda b: b["done"])


def test_batch_inline_end_to_end(emu: Emulator, client: httpx.Client) -> None:
    emu.script("blocked shoe", ["safety"])
    body = inline(
        ("a", gen("batch lamp", "16:9", "2K")),
        ("b", gen("blocked shoe")),
        ("c", gen("bad", "7:3")),
    )
    r = client.post(BATCH, json=body)
    assert r.status_code == 200
    created = r.json()
    name = created["name"]
    assert name.startswith("batches/")
    assert created["state"] == created["metadata"]["state"] == "JOB_STATE_PENDING"
    assert created["done"] is False
    states = {created["state"]}

    def poll() -> dict[str, Any]:
        billed = emu.ledger()["images"]  # read first: the batch may end right after
        got = client.get(f"/v1beta/{name}").json()
        states.add(got["state"])
        assert got["metadata"]["state"] == got["state"]
        if not got["done"]:
            assert billed == 0
        return got

    final = wait_for(poll, lambda b: b["done"])
    assert states == {"JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"}
    results = final["response"]["inlinedResponses"]["inlinedResponses"]
    assert [r["metadata"] for r in results] == [{"key": "a"}, {"key": "b"}, {"key": "c"}]
    assert image_of(results[0]["response"]).size == image_dimensions("2K", "16:9")
    assert results[1]["response"]["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert results[2]["error"]["status"] == "INVALID_ARGUMENT"
    assert final["metadata"]["batchStats"]["successfulRequestCount"] == "2"
    ledger = emu.ledger()
    assert ledger["images"] == 1 and ledger["by_prompt"] == {sha("batch lamp"): 1}
    assert ledger["by_mode"] == {"batch": 1} and ledger["usd"] == pytest.approx(0.067)


def test_batch_file_upload_and_download(emu: Emulator, client: httpx.Client) -> None:
    lines = [
        {"key": "k1", "request": gen("file chair", "3:4", "4K")},
        {"key": "k2", "request": gen("file table")},
    ]
    jsonl = "\n".join(json.dumps(line) for line in lines).encode()
    up = client.post(
        "/upload/v1beta/files", content=jsonl, headers={"Content-Type": "application/jsonl"}
    )
    assert up.status_code == 200
    file_name = up.json()["file"]["name"]
    assert file_name.startswith("files/") and up.json()["file"]["sizeBytes"] == str(len(jsonl))
    body = {"batch": {"display_name": "f", "input_config": {"file_name": file_name}}}
    final = batch_done(client, client.post(BATCH, json=body).json()["name"])
    assert final["state"] == "JOB_STATE_SUCCEEDED"
    out = final["response"]["responsesFile"]
    assert final["dest"] == {"fileName": out}
    got = client.get(f"/download/v1beta/{out}:download", params={"alt": "media"})
    assert got.status_code == 200
    rows = [json.loads(line) for line in got.text.splitlines() if line]
    assert [row["key"] for row in rows] == ["k1", "k2"]
    assert image_of(rows[0]["response"]).size == image_dimensions("4K", "3:4")
    assert image_of(rows[1]["response"]).size == (1024, 1024)
    ledger = emu.ledger()
    assert ledger["images"] == 2 and ledger["by_mode"] == {"batch": 2}
    assert ledger["usd"] == pytest.approx(0.12 + 0.067)


def test_batch_resumable_upload(client: httpx.Client) -> None:
    data = json.dumps({"key": "r", "request": gen("resumable")}).encode()
    start = client.post(
        "/upload/v1beta/files",
        json={"file": {"display_name": "in"}},
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Type": "application/jsonl",
        },
    )
    url = start.headers["X-Goog-Upload-URL"]
    done = client.post(
        url,
        content=data,
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
    )
    assert done.headers["X-Goog-Upload-Status"] == "final"
    file = done.json()["file"]
    assert file["displayName"] == "in" and file["mimeType"] == "application/jsonl"
    assert client.get(f"/v1beta/{file['name']}").json()["sizeBytes"] == str(len(data))


@pytest.mark.parametrize("outcome", ["JOB_STATE_EXPIRED", "FAILED"])
def test_batch_forced_outcome_bills_nothing(
    emu: Emulator, client: httpx.Client, outcome: str
) -> None:
    r = client.post("/_emulator/config", json={"batch_outcome": outcome})
    assert r.status_code == 200
    final = batch_done(client, client.post(BATCH, json=inline(("a", gen("doomed")))).json()["name"])
    expected = "JOB_STATE_" + outcome.removeprefix("JOB_STATE_")
    assert final["state"] == final["metadata"]["state"] == expected
    assert "response" not in final and final["error"]["message"]
    assert emu.ledger()["images"] == 0


def test_batch_cancel(emu: Emulator, client: httpx.Client) -> None:
    name = client.post(BATCH, json=inline(("a", gen("cancel me")))).json()["name"]
    assert client.post(f"/v1beta/{name}:cancel").status_code == 200
    assert client.get(f"/v1beta/{name}").json()["state"] == "JOB_STATE_CANCELLED"
    time.sleep(0.3)
    assert emu.ledger()["images"] == 0


def test_batch_list_pages_newest_first_and_finds_a_display_name(
    emu: Emulator, client: httpx.Client
) -> None:
    emu.configure(batch_delay_s=0.2)
    names = []
    for n in range(5):
        body = inline((f"k{n}", gen(f"listed {n}")))
        body["batch"]["display_name"] = f"job-{n}"
        names.append(client.post(BATCH, json=body).json()["name"])
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        params = {"pageSize": 2, **({"pageToken": token} if token else {})}
        page = client.get("/v1beta/batches", params=params).json()
        assert len(page["operations"]) <= 2
        seen += page["operations"]
        token = page.get("nextPageToken")
        if not token:
            break
    assert [op["name"] for op in seen][:5] == names[::-1]  # earlier tests' batches follow
    shown = [op["metadata"]["displayName"] for op in seen][:5]
    assert shown == [f"job-{n}" for n in (4, 3, 2, 1, 0)]
    assert len({op["name"] for op in seen}) == len(seen)
    wait_for(lambda: client.get(f"/v1beta/{names[0]}").json(), lambda b: b["done"])
    listed = client.get("/v1beta/batches").json()["operations"]
    assert all("response" not in op for op in listed)  # like the real list: no inlined results
    assert client.get("/v1beta/batches", params={"pageSize": "x"}).status_code == 400
    emu.configure(api_key=API_KEY)
    assert client.get("/v1beta/batches", headers={"x-goog-api-key": WRONG_KEY}).status_code == 400


def test_a_slow_batch_create_answers_after_the_job_exists(
    emu: Emulator, client: httpx.Client
) -> None:
    def names() -> set[str]:
        listed = client.get("/v1beta/batches", params={"pageSize": 1000}).json()
        return {op["name"] for op in listed.get("operations", [])}

    earlier = names()  # the module's emulator keeps other tests' batches
    emu.configure(batch_create_latency_s=1.0, batch_delay_s=5.0)
    answer: dict[str, Any] = {}
    sender = threading.Thread(target=lambda: answer.update(
        client.post(BATCH, json=inline(("a", gen("slow create")))).json()))
    sender.start()
    new = wait_for(lambda: names() - earlier, bool, timeout=0.9)
    assert not answer  # the job is listed before its create call answered
    sender.join()
    assert {answer["name"]} == new


def test_batch_quota_auth_and_validation(emu: Emulator, client: httpx.Client) -> None:
    emu.configure(rpm=1, quota_window_s=5.0, api_key=API_KEY)
    auth = {"x-goog-api-key": API_KEY}
    r = client.post(BATCH, json=inline(("a", gen("x"))), headers={"x-goog-api-key": WRONG_KEY})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert WRONG_KEY not in r.text and API_KEY not in r.text
    empty = {"batch": {"input_config": {"requests": {"requests": []}}}}
    assert client.post(BATCH, json=empty, headers=auth).status_code == 400
    missing = {"batch": {"input_config": {"file_name": "files/nope"}}}
    assert client.post(BATCH, json=missing, headers=auth).status_code == 400
    accepted = client.post(BATCH, json=inline(("a", gen("x"))), headers=auth)
    assert accepted.status_code == 200
    r = client.post(BATCH, json=inline(("a", gen("x"))), headers=auth)
    assert r.status_code == 429
    retry = [d for d in r.json()["error"]["details"] if d["@type"].endswith("RetryInfo")]
    assert float(retry[0]["retryDelay"].rstrip("s")) > 0
    assert client.get("/v1beta/batches/nope", headers=auth).status_code == 404
    name = accepted.json()["name"]
    final = wait_for(
        lambda: client.get(f"/v1beta/{name}", headers=auth).json(), lambda b: b["done"]
    )
    assert final["state"] == "JOB_STATE_SUCCEEDED" and emu.ledger()["images"] == 1


# ---- control API -----------------------------------------------------------------------------
def test_new_config_fields_over_http(emu: Emulator, client: httpx.Client) -> None:
    change = {
        "task_queue_s": 0.5,
        "batch_delay_s": 1.5,
        "batch_outcome": "EXPIRED",
        "batch_prices_usd": {"1K": 0.05},
        "task_models": ["nano-banana-pro", "google/nano-banana-pro"],
    }
    r = client.post("/_emulator/config", json=change)
    assert r.status_code == 200
    assert {k: r.json()[k] for k in change} == change
    assert emu.config.task_models == ("nano-banana-pro", "google/nano-banana-pro")
    assert client.post("/_emulator/config", json={"batch_outcome": "DONE"}).status_code == 400
    assert client.post("/_emulator/config", json={"batch_delay_s": -1}).status_code == 400
    with pytest.raises(ValueError):
        emu.configure(task_queue_s=-0.1)
    assert emu.configure(batch_outcome="JOB_STATE_FAILED").batch_outcome == "JOB_STATE_FAILED"
