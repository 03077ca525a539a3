"""``/admin/overview``, ``/admin/usage/series`` (+ ``.csv``), ``/admin/requests``,
``/admin/web-session``: what the dashboard's pages show, as JSON for anyone with the admin key."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from .. import __version__
from ..store.usage_series import hourly_rows, series, to_csv
from ..timespec import since_epoch
from .admin import admin_gateway
from .deps import Gateway

router = APIRouter(prefix="/admin", tags=["admin"])


def _targets(gw: Gateway) -> list[dict[str, Any]]:
    out = []
    for name, upstream in gw.router.upstreams.items():
        describe = getattr(upstream, "describe", None)
        for target in describe() if callable(describe) else []:
            out.append({"upstream": name, **target})
    return out


@router.get("/overview", summary="The last hour of this instance, its upstreams and the grok.com session")
async def overview(request: Request) -> dict[str, Any]:
    gw = admin_gateway(request)
    obs = gw.observer
    return {
        "version": __version__,
        "now": time.time(),
        "last_hour": obs.timeline.summary(),
        "in_flight": obs.in_flight,
        "streams_in_flight": obs.streams,
        "upstreams": _targets(gw),
        "web_session": obs.web.snapshot(),
        "access_log": obs.access is not None,
        "tracing": obs.tracing is not None,
    }


@router.get("/web-session", summary="Whether the grok.com session still works, as last seen")
async def web_session(request: Request) -> dict[str, Any]:
    return admin_gateway(request).observer.web.snapshot()


@router.get("/usage/series", summary="Requests, tokens and errors over time, per key or per model")
async def usage_series(
    request: Request,
    bucket: Literal["hour", "day"] = "hour",
    by: Literal["key", "model"] = "key",
    since: str = "24h",
    key_id: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    gw = admin_gateway(request)
    now = time.time()
    start = since_epoch(since, now)
    await gw.usage.flush()
    rows = await hourly_rows(gw.db, since_hour=start // 3600 * 3600, key_id=key_id, model=model)
    return {"since": start, **series(rows, bucket=bucket, by=by, since=start, until=int(now))}


@router.get(
    "/usage.csv",
    summary="Stored usage as CSV: one line per bucket, key and model",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def usage_csv(
    request: Request,
    bucket: Literal["hour", "day"] = "hour",
    since: str = "30d",
    key_id: str | None = None,
    model: str | None = None,
) -> Response:
    gw = admin_gateway(request)
    start = since_epoch(since, time.time())
    await gw.usage.flush()
    rows = await hourly_rows(gw.db, since_hour=start // 3600 * 3600, key_id=key_id, model=model)
    return Response(
        to_csv(rows, bucket),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="grok-api-usage-{bucket}.csv"'},
    )


@router.get("/requests", summary="This instance's most recent requests, newest first")
async def recent_requests(
    request: Request,
    key_id: str | None = None,
    model: str | None = None,
    status: str | None = Query(default=None, description="A status (429) or a class (4xx)."),
    request_id: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    gw = admin_gateway(request)
    data = gw.observer.recent.query(
        key_id=key_id, model=model, status=status, request_id=request_id, limit=limit
    )
    return {"object": "list", "kept": len(gw.observer.recent), "data": data}
