"""What route handlers share: the Gateway services built in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..auth import Authenticator
from ..config import Settings
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
