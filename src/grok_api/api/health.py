"""``/health`` (the process is up) and ``/ready`` (it can serve: store reachable, upstream set)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from .deps import gateway

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
    checks["upstreams"] = sorted(gw.router.upstreams)
    ok = checks["database"] == "ok" and bool(gw.router.upstreams)
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
    )
