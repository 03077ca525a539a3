"""The simulator's grok.com session endpoints besides chat: who is signed in, and uploads.

``GET /api/auth/session`` answers the signed-in user's id (``session.userId``) to a request
that carries the session; ``POST /http/upload-file-v2/direct`` takes one multipart ``file``
(an image of at most :data:`MAX_BYTES`) and answers its ``fileMetadata.fileMetadataId``, which
the chat gateway then accepts in ``file_attachment_ids``; ``GET /users/…`` serves generated
images (as ``assets.grok.com`` does), to a request with the session only.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, web

from .grok_web import _refused
from .grok_ws import USER_ID

if TYPE_CHECKING:
    from . import Simulator

MAX_BYTES = 8 * 1024 * 1024


async def auth_session(sim: Simulator, request: web.Request) -> web.Response:
    sim.count("web_session_lookups")
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    return web.json_response({"session": {"userId": USER_ID}, "user": {"id": USER_ID}})


async def upload(sim: Simulator, request: web.Request, files: set[str]) -> web.Response:
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    if not request.content_type.startswith("multipart/"):
        return _bad("Expected multipart/form-data.")
    reader = await request.multipart()
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        return _bad("Missing the 'file' part.")
    ctype = part.headers.get("Content-Type", "")
    data = await part.read()
    if len(data) > MAX_BYTES:
        return web.json_response({"error": {"code": 3, "message": "File too large."}}, status=413)
    if not ctype.startswith("image/") or not data:
        return _bad(f"Unsupported file type '{ctype}'.")
    file_id = str(uuid.uuid4())
    files.add(file_id)
    sim.record(
        "web",
        "/http/upload-file-v2/direct",
        {"id": file_id, "type": ctype, "size": len(data), "name": part.filename},
    )
    return web.json_response(
        {
            "uploadId": f"upload-{file_id[:8]}",
            "fileMetadata": {"fileMetadataId": file_id, "fileUri": f"users/{USER_ID}/{file_id}/content"},
        }
    )


def _bad(message: str) -> web.Response:
    return web.json_response({"error": {"code": 3, "message": message}}, status=400)


async def asset(sim: Simulator, request: web.Request) -> web.Response:
    sim.count("web_asset_requests")
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    body = b"\xff\xd8\xff\xe0" + hashlib.sha256(request.path.encode()).digest() + b"\xff\xd9"
    return web.Response(body=body, content_type="image/jpeg")
