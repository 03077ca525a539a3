"""The simulator's images: xAI's ``/v1/images/generations`` and ``/v1/images/edits``.

Images are small PNGs (32×32) drawn from a seed, written with ``zlib`` and ``struct`` alone, so
that a client can decode what it got. xAI's side answers ``{"data": [{"url" | "b64_json",
"revised_prompt"}]}`` as xAI documents it (``n`` 1–10; ``aspect_ratio``, ``resolution``, ``quality``; no
``size`` or ``style``); URLs point back at the simulator
(``/_sim/images/<id>.png``). Edits take JSON only, as xAI's do: the source images as ``image``
(``{"url", "type": "image_url"}``) or ``images`` (1–3 of them), each URL public or a base64
``data:`` URI; the answer is drawn like a generation's. What came is recorded (``/_sim/requests``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import struct
import zlib
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .script import Directives

if TYPE_CHECKING:
    from . import Simulator

IMAGE_MODELS = ("grok-imagine-image", "grok-imagine-image-2.0")
ASPECT_RATIOS = frozenset("1:1 3:4 4:3 9:16 16:9 2:3 3:2 9:19.5 19.5:9 9:20 20:9 1:2 2:1 auto".split())
SIZE = 32
MAX_EDIT_IMAGES = 3


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png(seed: str, size: int = SIZE) -> bytes:
    """A ``size``×``size`` RGB PNG: a gradient whose colours come from ``seed``."""
    r0, g0, b0 = hashlib.sha256(seed.encode()).digest()[:3]
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type: none
        for x in range(size):
            rows += bytes(((r0 + 8 * x) % 256, (g0 + 8 * y) % 256, (b0 + 4 * (x + y)) % 256))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _chunk(b"IEND", b"")
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps({"code": code, "error": message}), content_type="application/json"
    )


def _bad(message: str) -> web.Response:
    return _error(400, "Client specified an invalid argument", message)


def _source_error(body: dict[str, Any]) -> str | None:
    """What xAI would refuse in an edit's source images (``image`` or ``images``), or None."""
    image, images = body.get("image"), body.get("images")
    if (image is None) == (images is None):
        return "Exactly one of image or images must be given."
    sources = [image] if images is None else images
    if not isinstance(sources, list) or not 1 <= len(sources) <= MAX_EDIT_IMAGES:
        return f"images must hold 1 to {MAX_EDIT_IMAGES} images."
    for source in sources:
        url = source.get("url") if isinstance(source, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
            return "Each image needs a url: a public URL or a data URI."
        if url.startswith("data:"):
            head, _, payload = url.partition(",")
            try:
                if not head.endswith(";base64") or not base64.b64decode(payload, validate=True):
                    return "An image data URI must be base64."
            except (binascii.Error, ValueError):
                return "An image data URI is not valid base64."
    return None


def routes(sim: Simulator) -> list[web.RouteDef]:
    from .xai import _check_key

    async def answer(request: web.Request, edit: bool) -> web.Response:
        sim.count("xai_image_edits" if edit else "xai_image_requests")
        refused = _check_key(sim, request)
        if refused is not None:
            return refused
        if edit and request.content_type != "application/json":
            return _bad("The request body must be JSON (Content-Type: application/json).")
        try:
            body = orjson.loads(await request.read())
            model, prompt = str(body["model"]), str(body["prompt"])
            n = int(body.get("n") or 1)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _bad("Malformed request body.")
        sim.record("xai", request.path, body)
        if model not in IMAGE_MODELS:
            return _error(
                404,
                "Some requested entity was not found",
                f"The model {model} does not exist or does not support image generation.",
            )
        for name in ("size", "style", "mask"):
            if name in body:
                return _bad(f"Argument not supported: {name}")
        if not 1 <= n <= 10 or body.get("aspect_ratio", "auto") not in ASPECT_RATIOS:
            return _bad("Invalid n or aspect_ratio.")
        problem = _source_error(body) if edit else None
        if problem is not None:
            return _bad(problem)
        d = Directives.parse(prompt, request.headers.get("X-Sim"))
        if d.fault in ("429", "500", "503"):
            status = int(d.fault)
            return _error(status, "Simulated fault", f"The simulator failed with {status} on purpose.")
        base = f"{request.scheme}://{request.host}"
        data = []
        for _ in range(n):
            image_id = secrets.token_hex(6)
            item = {"revised_prompt": f"A picture of {prompt[:60]}", "mime_type": "image/png"}
            if body.get("response_format") == "b64_json":
                item["b64_json"] = base64.b64encode(png(image_id)).decode()
            else:
                item["url"] = f"{base}/_sim/images/{image_id}.png"
            data.append(item)
        return web.json_response({"data": data}, dumps=lambda o: orjson.dumps(o).decode())

    async def generate(request: web.Request) -> web.Response:
        return await answer(request, edit=False)

    async def edit(request: web.Request) -> web.Response:
        return await answer(request, edit=True)

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png(request.match_info["image_id"]), content_type="image/png")

    return [
        web.post("/v1/images/generations", generate),
        web.post("/v1/images/edits", edit),
        web.get("/_sim/images/{image_id}.png", image),
    ]
