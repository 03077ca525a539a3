"""``/admin/...``: key management and usage as JSON, for the operator only.

Every route needs ``GROK_API_ADMIN_KEY`` (as ``Authorization: Bearer`` or ``x-api-key``);
client keys never reach it. Without an admin key configured the admin API is off (403).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Request

from .. import keyevents
from ..auth import key_from_headers
from ..errors import AuthenticationFailed, NotFound, PermissionDenied
from ..timespec import since_epoch
from .deps import Gateway, gateway

router = APIRouter(prefix="/admin", tags=["admin"])


def _admin(request: Request) -> Gateway:
    gw = gateway(request)
    configured = gw.settings.admin_key
    if configured is None:
        raise PermissionDenied(
            "The admin API is off: set GROK_API_ADMIN_KEY to use it.", code="admin_disabled"
        )
    client = request.client.host if request.client else ""
    gw.auth.throttle.check(client)
    given = key_from_headers(request.headers) or ""
    if not hmac.compare_digest(given.encode(), configured.get_secret_value().encode()):
        gw.auth.throttle.failed(client)
        raise AuthenticationFailed("The admin API needs the admin key (GROK_API_ADMIN_KEY).")
    return gw


@router.get("/keys", summary="List keys (never the keys themselves)")
async def list_keys(request: Request) -> dict[str, Any]:
    gw = _admin(request)
    return {"object": "list", "data": [r.public() for r in await gw.keys.list()]}


@router.post("/keys/{key_id}/revoke", summary="Revoke a key on every instance")
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    gw = _admin(request)
    record = await gw.keys.revoke(key_id)
    if record is None:
        raise NotFound(f"No key with id {key_id}.", param="key_id")
    gw.auth.invalidate(key_id)
    if gw.redis is not None:
        await keyevents.publish(gw.redis, key_id)
    return record.public()


@router.get("/usage", summary="Usage per key and model")
async def usage(request: Request, key_id: str | None = None, since: str = "30d") -> dict[str, Any]:
    gw = _admin(request)
    start = since_epoch(since, time.time())
    await gw.usage.flush()
    rows = await gw.usage.store.report(key_id=key_id, since_hour=start // 3600 * 3600)
    return {"object": "list", "since": start, "data": rows}
