"""What route handlers share: the Gateway services and body reading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from ..auth import Authenticator
from ..config import Settings
from ..errors import InvalidRequest, PayloadTooLarge
from ..router import Router
from ..store import Database, KeyStore


@dataclass(slots=True)
class Gateway:
    """Everything built in the app's lifespan and passed down to handlers."""

    settings: Settings
    db: Database
    keys: KeyStore
    auth: Authenticator
    router: Router


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON; 413 past ``limit`` bytes, 400 if it is not JSON."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).", code="invalid_json"
        ) from None
