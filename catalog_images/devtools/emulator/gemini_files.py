"""Gemini Files API subset for Batch Mode: upload, metadata and download of JSONL files.

``POST /upload/v1beta/files`` takes a raw body (the file), a ``multipart/related`` body
(JSON metadata part, then the data part) or the SDK's resumable protocol (``start``, then
``upload, finalize`` at the returned ``X-Goog-Upload-URL``). It answers ``{"file": FILE}``.
A file over ``max_file_bytes`` (2 GB, the Files API's limit) is refused with 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .files import FileStore, StoredFile, new_id
from .gemini_auth import auth_error, invalid, not_found
from .http_util import CORE_KEY, origin, send_json
from .rfc3339 import rfc3339

DOCUMENTS_MAX = 500
DEFAULT_MIME = "application/jsonl"
FILE_TTL_S = 48 * 3600
DOCS_KEY = web.AppKey("emulator_gemini_files", FileStore)
SESSIONS_KEY = web.AppKey("emulator_gemini_uploads", dict)


@dataclass
class _Session:
    display_name: str
    mime_type: str
    data: bytearray = field(default_factory=bytearray)


def add_routes(app: web.Application) -> None:
    """Register upload, metadata and download routes; the file store lives in the app."""
    app[DOCS_KEY] = FileStore(DOCUMENTS_MAX)
    app[SESSIONS_KEY] = {}
    app.router.add_post("/upload/v1beta/files", upload)
    app.router.add_get("/v1beta/files/{file_id}", get_file)
    app.router.add_get("/download/v1beta/files/{file_action}", download)


def store_document(
    app: web.Application,
    data: bytes,
    mime_type: str = DEFAULT_MIME,
    display_name: str = "",
    source: str = "UPLOADED",
) -> str:
    """Keep a document; returns its name ``files/ID``."""
    name = f"files/{new_id()}"
    app[DOCS_KEY].put(name, StoredFile(data, mime_type, time.time(), display_name, source))
    return name


def file_resource(base: str, name: str, file: StoredFile) -> dict[str, Any]:
    """A File resource as the Files API returns it."""
    file_id = name.removeprefix("files/")
    digest = base64.b64encode(hashlib.sha256(file.data).digest()).decode("ascii")
    return {
        "name": name,
        "displayName": file.display_name,
        "mimeType": file.content_type,
        "sizeBytes": str(len(file.data)),
        "createTime": rfc3339(file.created),
        "updateTime": rfc3339(file.created),
        "expirationTime": rfc3339(file.created, FILE_TTL_S),
        "sha256Hash": digest,
        "uri": f"{base}/v1beta/{name}",
        "downloadUri": f"{base}/download/v1beta/files/{file_id}:download?alt=media",
        "state": "ACTIVE",
        "source": file.source,
    }


def _metadata(raw: bytes) -> tuple[str, str]:
    """(display name, mime type) from a ``{"file": {...}}`` metadata body (may be empty)."""
    if not raw.strip():
        return "", ""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "", ""
    meta = body.get("file", body) if isinstance(body, dict) else {}
    if not isinstance(meta, dict):
        return "", ""
    name = meta.get("displayName", meta.get("display_name", ""))
    mime = meta.get("mimeType", meta.get("mime_type", ""))
    return str(name or ""), str(mime or "")


async def _finish(request: web.Request, data: bytes, name: str, mime: str) -> web.Response:
    limit = request.app[CORE_KEY].config.max_file_bytes
    if len(data) > limit:
        return (await send_json(request, *_too_large(len(data), limit)))[0]
    stored = store_document(request.app, data, mime or DEFAULT_MIME, name)
    file = request.app[DOCS_KEY].get(stored)
    assert file is not None
    body = {"file": file_resource(origin(request), stored, file)}
    headers = {"X-Goog-Upload-Status": "final"}
    return (await send_json(request, 200, body, headers))[0]


async def upload(request: web.Request) -> web.StreamResponse:
    """Raw, multipart or resumable upload of one file."""
    core = request.app[CORE_KEY]
    if (error := auth_error(core, request)) is not None:
        return (await send_json(request, *error))[0]
    sessions: dict[str, _Session] = request.app[SESSIONS_KEY]
    command = request.headers.get("X-Goog-Upload-Command", "").lower()
    upload_id = request.query.get("upload_id")
    limit = core.config.max_file_bytes
    if upload_id is not None:
        return await _resumed(request, sessions, upload_id, command, limit)
    if "start" in command:
        declared = request.headers.get("X-Goog-Upload-Header-Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            return (await send_json(request, *_too_large(int(declared), limit)))[0]
        name, mime = _metadata(await request.read())
        mime = mime or request.headers.get("X-Goog-Upload-Header-Content-Type", "")
        upload_id = new_id()
        sessions[upload_id] = _Session(name, mime)
        headers = {
            "X-Goog-Upload-URL": f"{origin(request)}/upload/v1beta/files?upload_id={upload_id}",
            "X-Goog-Upload-Status": "active",
        }
        return (await send_json(request, 200, {}, headers))[0]
    if request.content_type.startswith("multipart/"):
        return await _multipart(request)
    data = await request.read()
    mime = request.content_type if request.content_type != "application/octet-stream" else ""
    return await _finish(request, data, request.query.get("display_name", ""), mime)


async def _resumed(request: web.Request, sessions: dict[str, _Session], upload_id: str,
                   command: str, limit: int) -> web.StreamResponse:
    """A piece of a resumable upload (``upload``), perhaps its last (``finalize``); one that
    takes the file over the limit ends the upload at once, not at ``finalize``."""
    session = sessions.get(upload_id)
    if session is None:
        return (await send_json(request, *not_found(f"upload {upload_id}")))[0]
    if "upload" in command:
        session.data.extend(await request.read())
        if len(session.data) > limit:
            del sessions[upload_id]
            return (await send_json(request, *_too_large(len(session.data), limit)))[0]
    if "finalize" not in command:
        headers = {"X-Goog-Upload-Status": "active"}
        return (await send_json(request, 200, {}, headers))[0]
    del sessions[upload_id]
    return await _finish(request, bytes(session.data), session.display_name, session.mime_type)


def _too_large(size: int, limit: int) -> tuple[int, dict[str, Any]]:
    return invalid(f"File size {size} bytes exceeds the maximum of {limit} bytes")


async def _multipart(request: web.Request) -> web.StreamResponse:
    reader = await request.multipart()
    parts: list[tuple[str, bytes]] = []
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader):
            parts.append((part.headers.get("Content-Type", ""), bytes(await part.read())))
    if len(parts) != 2:
        return (await send_json(request, *invalid("multipart upload needs metadata and data")))[0]
    name, mime = _metadata(parts[0][1])
    return await _finish(request, parts[1][1], name, mime or parts[1][0])


async def get_file(request: web.Request) -> web.StreamResponse:
    """``GET /v1beta/files/{id}``: the File resource."""
    core = request.app[CORE_KEY]
    if (error := auth_error(core, request)) is not None:
        return (await send_json(request, *error))[0]
    name = f"files/{request.match_info['file_id']}"
    file = request.app[DOCS_KEY].get(name)
    if file is None:
        return (await send_json(request, *not_found(name)))[0]
    return (await send_json(request, 200, file_resource(origin(request), name, file)))[0]


async def download(request: web.Request) -> web.StreamResponse:
    """``GET /download/v1beta/files/{id}:download?alt=media``: the file's bytes."""
    core = request.app[CORE_KEY]
    if (error := auth_error(core, request)) is not None:
        return (await send_json(request, *error))[0]
    file_id, _, action = request.match_info["file_action"].partition(":")
    name = f"files/{file_id}"
    file = request.app[DOCS_KEY].get(name)
    if action != "download" or file is None:
        return (await send_json(request, *not_found(name)))[0]
    return web.Response(body=file.data, content_type=file.content_type)
