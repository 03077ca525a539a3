"""``/admin/...``: key management and usage as JSON, for the operator only.

Every route needs ``GROK_API_ADMIN_KEY`` (as ``Authorization: Bearer`` or ``x-api-key``);
client keys never reach it. Without an admin key configured the admin API is off (403).
The dashboard (``/dashboard``) is a client of these routes and of ``admin_stats``'.
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from .. import keyevents
from ..auth import key_from_headers
from ..errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from ..store.keys import Limits
from ..store.tables import LIMIT_FIELDS
from ..timespec import parse_duration, since_epoch
from .deps import Gateway, gateway

router = APIRouter(prefix="/admin", tags=["admin"])


KEY_ID = re.compile(r"key_[0-9a-f]{16}")


def is_admin(gw: Gateway, request: Request) -> bool:
    """Whether the request carries the admin key (never true when none is configured, or blank)."""
    configured = gw.settings.admin_key.get_secret_value() if gw.settings.admin_key else ""
    given = key_from_headers(request.headers) or ""
    return bool(configured) and hmac.compare_digest(given.encode(), configured.encode())


def admin_gateway(request: Request) -> Gateway:
    """The gateway, once the request has shown the admin key (403 when the admin API is off,
    401/429 otherwise). Failures count in the admin API's own throttle: client-key guessers
    cannot lock the admin out, and a key that verifies is never throttled."""
    gw = gateway(request)
    if gw.settings.admin_key is None or not gw.settings.admin_key.get_secret_value():
        raise PermissionDenied(
            "The admin API is off: set GROK_API_ADMIN_KEY to use it.", code="admin_disabled"
        )
    if is_admin(gw, request):
        return gw
    client = request.client.host if request.client else ""
    error = AuthenticationFailed("The admin API needs the admin key (GROK_API_ADMIN_KEY).")
    raise gw.auth.admin_throttle.refuse(client, error)


def _key_id(key_id: str) -> str:
    """A key id as issued (``key_`` and 16 hex digits); anything else names no key (404)."""
    if not KEY_ID.fullmatch(key_id):
        raise NotFound("No key with that id.", param="key_id")
    return key_id


def _printable(text: str, param: str) -> str:
    if not text.isprintable():
        raise InvalidRequest(f"'{param}' must be printable text (no control characters).", param=param)
    if not text:
        raise InvalidRequest(f"'{param}' must not be blank.", param=param)
    return text


def _models(models: list[str]) -> list[str] | None:
    """The allowed model ids; none (or only blanks) means every model, on create as on change."""
    return [_printable(m.strip(), "models") for m in models if m.strip()] or None


_admin = admin_gateway


MAX_LIMIT = 10**15  # well inside a 64-bit column
MAX_LIFETIME = 100 * 365 * 86400.0
MAX_MODELS = 1000  # model ids a key may be limited to
ModelId = Annotated[str, Field(max_length=256)]  # as the CLI's --models


class KeyLimits(BaseModel):
    """A key's limits; a missing or null field is unlimited (on update: cleared)."""

    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Requests per minute.")
    tpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Tokens per minute.")
    concurrency: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Requests at once.")
    budget_day: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Tokens per UTC day.")
    budget_month: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Tokens per UTC month.")
    budget_total: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Tokens in all.")


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    expires_in: str | None = Field(default=None, description="A duration such as 30d, 12h or 1y.")
    models: list[ModelId] | None = Field(
        default=None, max_length=MAX_MODELS, description="The models the key may use (all: null or [])."
    )
    limits: KeyLimits = Field(default_factory=KeyLimits)


class KeyUpdate(BaseModel):
    """The fields to change; the ones left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    limits: KeyLimits | None = None
    models: list[ModelId] | None = Field(default=None, max_length=MAX_MODELS, description="[]: every model.")
    expires_in: str | None = Field(default=None, description="A new expiry, from now (e.g. 30d).")


def _seconds(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="expires_in") from None
    if seconds > MAX_LIFETIME:
        raise InvalidRequest("A key may live at most 100 years.", param="expires_in")
    return seconds


async def _changed(gw: Gateway, key_id: str) -> None:
    """Every instance forgets its cached record of the key."""
    gw.auth.invalidate(key_id)
    if gw.redis is not None:
        await keyevents.publish(gw.redis, key_id)


def _month_start(now: float) -> int:
    t = time.gmtime(now)
    return calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))


@router.get("/keys", summary="List keys (never the keys themselves), with this month's usage")
async def list_keys(request: Request) -> dict[str, Any]:
    gw = _admin(request)
    await gw.usage.flush()
    month: dict[str, dict[str, int]] = {}
    for row in await gw.usage.store.report(since_hour=_month_start(time.time())):
        acc = month.setdefault(row["key_id"], {"requests": 0, "tokens": 0, "errors": 0})
        acc["requests"] += row["requests"]
        acc["tokens"] += row["total_tokens"]
        acc["errors"] += row["errors"]
    empty = {"requests": 0, "tokens": 0, "errors": 0}
    data = [{**r.public(), "usage_month": month.get(r.id, empty)} for r in await gw.keys.list()]
    return {"object": "list", "data": data}


@router.post("/keys", summary="Create a key: the answer is the only time the key is shown")
async def create_key(body: KeyCreate, request: Request) -> dict[str, Any]:
    gw = _admin(request)
    expires = _seconds(body.expires_in) if body.expires_in else None
    models = None if body.models is None else _models(body.models)
    record, key = await gw.keys.create(
        _printable(body.name.strip(), "name"),
        expires_in=expires,
        models=models,
        limits=Limits(**body.limits.model_dump()),
    )
    return {**record.public(), "key": key}


@router.patch("/keys/{key_id}", summary="Change a key's name, limits, models or expiry")
async def update_key(key_id: str, body: KeyUpdate, request: Request) -> dict[str, Any]:
    gw = _admin(request)
    _key_id(key_id)
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = _printable(body.name.strip(), "name")
    if body.limits is not None:
        changes["limits"] = {name: getattr(body.limits, name) for name in LIMIT_FIELDS}
    if body.models is not None:
        changes["models"] = _models(body.models)
    if body.expires_in is not None:
        changes["expires_at"] = int(time.time() + _seconds(body.expires_in))
    record = await gw.keys.update(key_id, **changes)
    if record is None:
        raise NotFound(f"No key with id {key_id}.", param="key_id")
    await _changed(gw, key_id)
    return record.public()


@router.post("/keys/{key_id}/revoke", summary="Revoke a key on every instance")
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    gw = _admin(request)
    record = await gw.keys.revoke(_key_id(key_id))
    if record is None:
        raise NotFound(f"No key with id {key_id}.", param="key_id")
    await _changed(gw, key_id)
    return record.public()


@router.get("/usage", summary="Usage per key and model")
async def usage(request: Request, key_id: str | None = None, since: str = "30d") -> dict[str, Any]:
    gw = _admin(request)
    if key_id is not None and not KEY_ID.fullmatch(key_id):
        raise InvalidRequest("'key_id' is not a key id (key_ followed by 16 hex digits).", param="key_id")
    start = since_epoch(since, time.time())
    await gw.usage.flush()
    rows = await gw.usage.store.report(key_id=key_id, since_hour=start // 3600 * 3600)
    return {"object": "list", "since": start, "data": rows}
