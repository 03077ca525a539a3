"""``/admin/overview``, ``/admin/usage/series`` (+ ``.csv``), ``/admin/requests``,
``/admin/web-session``: what the dashboard's pages show, as JSON for anyone with the admin key."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from .. import __version__
from ..errors import InvalidRequest
from ..recent import RequestFilter, status_range
from ..store.usage_series import hourly_rows, series, to_csv
from ..timespec import moment, since_epoch
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


class RequestsPage(BaseModel):
    object: Literal["list"] = "list"
    source: Literal["store", "memory"] = Field(
        description="'store': the stored request log, every instance's (GROK_API_REQUEST_LOG_RETENTION); "
        "'memory': this instance's in-memory ring (GROK_API_RECENT_REQUESTS)."
    )
    kept: int | None = Field(default=None, description="How many requests the ring holds ('memory' only).")
    retention: float | None = Field(
        default=None, description="Seconds a stored request is kept ('store' only)."
    )
    data: list[dict[str, Any]] = Field(
        description="The requests, newest first: the access log's fields (never a key or a credential)."
    )


_TIME = "A time (2026-11-28T10:15:00.123Z, as `time` shows it, or epoch seconds), a date or a duration back (15m)."


def _identifier(value: str | None, param: str) -> str | None:
    if value is not None and (len(value) > 256 or not value.isprintable()):
        raise InvalidRequest(f"'{param}' must be printable text of at most 256 characters.", param=param)
    return value or None


def _request_filter(
    now: float,
    key_id: str | None,
    model: str | None,
    status: str | None,
    request_id: str | None,
    since: str | None,
    before: str | None,
) -> RequestFilter:
    try:
        statuses = status_range(status) if status else None
    except ValueError as exc:
        raise InvalidRequest(
            f"'status' must be a status (429) or a class (4xx): {exc}.", param="status"
        ) from None
    return RequestFilter(
        key_id=_identifier(key_id, "key_id"),
        model=_identifier(model, "model"),
        request_id=_identifier(request_id, "request_id"),
        status=statuses,
        since=moment(since, now, "since") if since else None,
        before=moment(before, now, "before") if before else None,
    )


@router.get(
    "/requests",
    summary="The most recent requests, newest first: every instance's when they are stored, else this one's",
    response_model=RequestsPage,
    response_model_exclude_none=True,
)
async def recent_requests(
    request: Request,
    key_id: str | None = None,
    model: str | None = None,
    status: str | None = Query(default=None, description="A status (429) or a class (4xx)."),
    request_id: str | None = None,
    since: str | None = Query(default=None, description="Requests that arrived at or after this. " + _TIME),
    before: str | None = Query(default=None, description="Requests that arrived before this. " + _TIME),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """From the stored request log when ``GROK_API_REQUEST_LOG_RETENTION`` is on (every
    instance's and worker's requests; ``source: "store"``), else from this instance's ring
    (``source: "memory"``). Every filter given must match."""
    gw = admin_gateway(request)
    wanted = _request_filter(time.time(), key_id, model, status, request_id, since, before)
    if gw.request_log is not None:
        data = await gw.request_log.query(wanted, limit)
        return {"source": "store", "retention": gw.request_log.retention, "data": data}
    ring = gw.observer.recent
    return {"source": "memory", "kept": len(ring), "data": ring.query(wanted, limit)}
