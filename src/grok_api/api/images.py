"""``POST /v1/images/generations``: image generation, as OpenAI's SDKs call it.

The body becomes a ChatRequest of ``kind="image"`` (the prompt as its one user message, the
image parameters in ``body``), so it runs through the same pipeline as every other surface —
keys, allowed models, limits, usage — and each upstream generates images its own way: xAI's
``/v1/images/generations`` (``grok-imagine-image``…), or grok.com's image generation for
``web/…`` image models. Usage counts each delivered image (the ``images`` column).

Parameters: ``model``, ``prompt``, ``n`` (1–10), ``response_format`` (``url`` default, or
``b64_json``), and xAI's ``aspect_ratio`` / ``resolution`` (``1k``, ``2k``). xAI takes no
``size``: a ``size`` whose width:height is one of the aspect ratios (``1024x1024`` → ``1:1``,
``1536x1024`` → ``3:2``…) is sent as that ``aspect_ratio``; any other size, ``style`` and
``stream`` are refused with a 400 that says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from math import gcd
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from ..errors import GatewayError, InvalidRequest
from ..pipeline import Call, Surface
from ..store import KeyRecord
from ..upstreams.base import ChatRequest, Event, Image
from ..usage import estimate_prompt_tokens
from .chat import Delegate
from .deps import Gateway
from .surface_schemas import IMAGES, json_body

router = APIRouter()

PATH = "/v1/images/generations"
ASPECT_RATIOS = (
    "1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1", "auto",
)  # fmt: skip
RESOLUTIONS = ("1k", "2k")
MAX_PROMPT_CHARS = 8000


def _aspect_of_size(size: str) -> str:
    width, sep, height = size.partition("x")
    if sep and width.isdigit() and height.isdigit() and int(width) and int(height):
        w, h = int(width), int(height)
        ratio = f"{w // gcd(w, h)}:{h // gcd(w, h)}"
        if ratio in ASPECT_RATIOS:
            return ratio
    raise InvalidRequest(
        f"size '{size}' is not supported: xAI's image models take 'aspect_ratio' "
        f"({', '.join(ASPECT_RATIOS)}) and 'resolution' (1k, 2k) instead.",
        param="size",
    )


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = body.get(name, default)
    if value is not None and value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(allowed)}.", param=name)
    return value


def image_body(body: Any) -> dict[str, Any]:
    """The validated upstream body of an image request; 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    model, prompt, n = body.get("model"), body.get("prompt"), body.get("n", 1)
    if not isinstance(model, str) or not model or len(model) > 256:
        raise InvalidRequest("'model' is required.", param="model", code="missing_field")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' is required.", param="prompt", code="missing_field")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"'prompt' is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise InvalidRequest("'n' must be an integer from 1 to 10.", param="n")
    for name in ("style", "stream"):
        if body.get(name):
            raise InvalidRequest(f"'{name}' is not supported by the images endpoints.", param=name)
    out: dict[str, Any] = {"model": model, "prompt": prompt, "n": n}
    out["response_format"] = _choice(body, "response_format", ("url", "b64_json"), "url")
    aspect = _choice(body, "aspect_ratio", ASPECT_RATIOS, None)
    size = body.get("size")
    if size is not None and size != "auto":
        if not isinstance(size, str):
            raise InvalidRequest("'size' must be a string such as '1024x1024'.", param="size")
        aspect = aspect or _aspect_of_size(size)
    if aspect is not None:
        out["aspect_ratio"] = aspect
    resolution = _choice(body, "resolution", RESOLUTIONS, None)
    if resolution is not None:
        out["resolution"] = resolution
    for name in ("quality", "user"):
        if isinstance(body.get(name), str):
            out[name] = body[name]
    return out


class ImageCollector:
    """The images surface's :class:`~grok_api.pipeline.Encoder`: one ``{created, data}`` body."""

    stream = False
    keepalive = b""

    def __init__(self) -> None:
        self.images: list[Image] = []

    def encode(self, batch: Iterable[Event]) -> bytes:
        self.images.extend(ev for ev in batch if isinstance(ev, Image))
        return b""

    def finish(self) -> bytes:
        data = []
        for image in self.images:
            item: dict[str, Any] = {"b64_json": image.b64_json} if image.b64_json else {"url": image.url}
            if image.revised_prompt:
                item["revised_prompt"] = image.revised_prompt
            data.append(item)
        return orjson.dumps({"created": int(time.time()), "data": data})

    @staticmethod
    def error(exc: GatewayError) -> bytes:
        return exc.json_bytes()


def image_call(out: dict[str, Any], kind: str) -> Call:
    """The :class:`Call` of a validated image body: its prompt is the one user message (for
    estimates and for upstreams that draw in a chat), the body goes upstream as it is."""
    messages = [{"role": "user", "content": out["prompt"]}]
    model = out["model"]
    request = ChatRequest(
        model=model, upstream_model=model, messages=messages, stream=False, body=out, kind=kind
    )
    return Call(request, ImageCollector(), prompt_estimate=estimate_prompt_tokens(messages), answer_tokens=1)


class ImagesSurface:
    name = "images"
    forms = False

    @staticmethod
    def prepare(gw: Gateway, key: KeyRecord, body: Any, raw: bytes) -> Call:
        return image_call(image_body(body), "image")

    @staticmethod
    def error_body(exc: GatewayError) -> bytes:
        return exc.json_bytes()


SURFACE: Surface = ImagesSurface()


@router.post(
    PATH,
    openapi_extra=json_body(IMAGES),
    summary="Generate images (xAI's image models, or grok.com's for web/… image models)",
)
async def generate_images(request: Request) -> Response:
    return Delegate(request.app.state.gateway, SURFACE)
