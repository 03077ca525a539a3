"""The simulator's image generation: xAI's ``/v1/images/generations``.

Images are small PNGs (32×32) drawn from a seed, written with ``zlib`` and ``struct`` alone, so
that a client can decode what it got. xAI's side answers ``{"data": [{"url" | "b64_json",
"revised_prompt"}]}`` as xAI documents it (``n`` 1–10; ``aspect_ratio``, ``resolution``, ``quality``; no
``size`` or ``style``); URLs point back at the simulator
(``/_sim/images/<id>.png``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
import zlib
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from .script import Directives

if TYPE_CHECKING:
    from . import Simulator

IMAGE_MODELS = ("grok-imagine-image", "grok-imagine-image-2.0")
ASPECT_RATIOS = frozenset("1:1 3:4 4:3 9:16 16:9 2:3 3:2 9:19.5 19.5:9 9:20 20:9 1:2 2:1 auto".split())
SIZE = 32


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


def routes(sim: Simulator) -> list[web.RouteDef]:
    from .xai import _check_key

    async def generate(request: web.Request) -> web.Response:
        sim.count("xai_image_requests")
        refused = _check_key(sim, request)
        if refused is not None:
            return refused
        try:
            body = orjson.loads(await request.read())
            model, prompt = str(body["model"]), str(body["prompt"])
            n = int(body.get("n") or 1)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "Client specified an invalid argument", "Malformed request body.")
        sim.record("xai", request.path, body)
        if model not in IMAGE_MODELS:
            return _error(
                404,
                "Some requested entity was not found",
                f"The model {model} does not exist or does not support image generation.",
            )
        for name in ("size", "style"):
            if name in body:
                return _error(400, "Client specified an invalid argument", f"Argument not supported: {name}")
        if not 1 <= n <= 10 or body.get("aspect_ratio", "auto") not in ASPECT_RATIOS:
            return _error(400, "Client specified an invalid argument", "Invalid n or aspect_ratio.")
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

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png(request.match_info["image_id"]), content_type="image/png")

    return [
        web.post("/v1/images/generations", generate),
        web.get("/_sim/images/{image_id}.png", image),
    ]
