"""``GET /v1/web/images/{token}``: grok.com's generated images, served by the gateway.

Only with ``GROK_API_WEB_IMAGES=proxy`` (see ``upstreams/web_images.py``). No API key: the
links go into answers that Markdown renderers open as they are, so the unguessable token is
the secret.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..errors import NotFound
from ..upstreams.web_images import find_cache
from .deps import gateway

router = APIRouter()


@router.get("/v1/web/images/{token}", summary="A grok.com image this gateway serves", include_in_schema=False)
async def web_image(token: str, request: Request) -> Response:
    cache = find_cache(gateway(request).router.upstreams.values())
    found = await cache.get(token) if cache is not None else None
    if found is None:
        raise NotFound("No such image (the link is unknown or has expired).")
    data, ctype = found
    return Response(data, media_type=ctype, headers={"Cache-Control": "private, max-age=86400"})
