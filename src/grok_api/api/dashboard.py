"""``/dashboard``: the admin console, static files from the package (no CDN; works offline).

The page itself holds nothing secret: it asks for the admin key and calls the admin API with
it. A strict Content-Security-Policy allows only this origin's own script, style and fetches.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from ..errors import NotFound

router = APIRouter(include_in_schema=False)

FILES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> Response:
    kind = FILES.get(name)
    if kind is None:
        raise NotFound(f"No dashboard file {name}.")
    body = resources.files("grok_api").joinpath("dashboard", name).read_bytes()
    return Response(body, media_type=kind, headers=HEADERS)


@router.get("/dashboard")
async def dashboard_page() -> Response:
    return _file("index.html")


@router.get("/dashboard/")
async def dashboard_slash() -> Response:
    return RedirectResponse("/dashboard")


@router.get("/dashboard/{name}")
async def dashboard_file(name: str) -> Response:
    return _file(name)
