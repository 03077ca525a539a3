"""Image generation on grok.com (``POST /v1/images/generations`` with a ``web/…`` model).

grok.com draws inside its chat: a turn sent with image generation on (the WebSocket gateway's
``enable_image_generation`` / ``image_generation_count``, REST's ``enableImageGeneration`` /
``imageGenerationCount``) answers with generated images, as public clients of grok.com
describe it. So an image request is a temporary chat turn — the message
``Generate an image: <prompt>`` — on the upstream's own protocol and session, and the images it
yields are the answer. Nothing is generated here (no tokens, no identities).

A model draws at most its ``imageGenerationCount`` images a turn (``web_models.json``;
``web/grok-imagine`` draws 4); ``n`` more takes more turns, one after another (one user's
session). ``url`` answers the links the upstream gives its images (grok.com's asset URLs, or the
gateway's own with ``GROK_API_WEB_IMAGES=proxy``); ``b64_json`` fetches each image with the
session and answers it inline. grok.com's Imagine page speaks another WebSocket
(``/ws/imagine/listen``); it is not used.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from ..errors import InvalidRequest, UpstreamError
from .base import ChatRequest, Event, Finish, Image

PROMPT = "Generate an image: {prompt}"


# one turn asking grok.com for ``count`` images of ``prompt``; their asset paths
Draw = Callable[[str, int], Awaitable[list[str]]]


async def generate(
    request: ChatRequest,
    per_turn: int,
    draw: Draw,
    link: Callable[[str], str],
    fetch: Callable[[str], Awaitable[bytes]],
) -> list[Event]:
    """The Events of an image request: ``n`` images, as links or inline (``b64_json``)."""
    if per_turn <= 0:
        raise InvalidRequest(
            f"grok.com's '{request.upstream_model}' does not generate images; use web/grok-imagine.",
            param="model",
        )
    body = request.body
    n = int(body.get("n") or 1)
    paths: list[str] = []
    while len(paths) < n:
        got = await draw(str(body["prompt"]), min(per_turn, n - len(paths)))
        if not got:
            raise UpstreamError("grok.com answered without an image (it may have declined the prompt).")
        paths.extend(got)
    out: list[Event] = []
    for path in paths[:n]:
        if body.get("response_format") == "b64_json":
            out.append(Image(b64_json=base64.b64encode(await fetch(path)).decode()))
        else:
            out.append(Image(url=link(path)))
    out.append(Finish("stop"))
    return out
