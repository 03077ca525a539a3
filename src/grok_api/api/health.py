"""``/health`` (the process is up) and ``/ready`` (it can serve: store reachable, upstream set)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from .admin import admin_gateway, is_admin
from .deps import Gateway, gateway

router = APIRouter()


@router.get("/health", summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness, with the state of each dependency")
async def ready(request: Request) -> JSONResponse:
    gw = gateway(request)
    checks: dict[str, Any] = {}
    try:
        await gw.db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure here means "not ready", with its reason
        checks["database"] = f"error: {type(exc).__name__}"
    checks["upstreams"] = {name: _targets(up) for name, up in gw.router.upstreams.items()}
    checks["limits"] = _limits_state(gw)
    ok = checks["database"] == "ok" and bool(gw.router.upstreams)
    body: dict[str, Any] = {"status": "ready" if ok else "not ready"}
    if not gw.settings.private_status or is_admin(gw, request):
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if ok else 503)


def _targets(upstream: object) -> list[dict[str, Any]]:
    describe = getattr(upstream, "describe", None)
    return describe() if callable(describe) else []


def _limits_state(gw: Gateway) -> str:
    kind = gw.limiter.describe()
    workers = gw.settings.workers
    if kind == "memory" and workers > 1:
        return f"per process: {workers} workers multiply every per-key limit (set GROK_API_REDIS_URL)"
    return "shared (redis)" if kind == "redis" else "in process"


def gw_private(request: Request) -> bool:
    return gateway(request).settings.private_status


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    gw = admin_gateway(request) if gw_private(request) else gateway(request)
    gw.metrics.usage_pending.set(gw.usage.pending())
    for name, upstream in gw.router.upstreams.items():
        for t in _targets(upstream):
            gw.metrics.breaker_open.labels(name, t["target"]).set(1 if t["state"] == "open" else 0)
    return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")
