"""What route handlers share: the Gateway services built in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from redis.asyncio import Redis

from ..auth import Authenticator
from ..config import Settings
from ..limits import RateLimiter
from ..memory import IdleTrimmer
from ..metrics import Metrics
from ..observe import Observer
from ..request_log import RequestLog
from ..router import Router
from ..store import Database, KeyStore
from ..store.responses import ResponseStore
from ..usage import UsageRecorder


@dataclass(slots=True)
class Gateway:
    """Everything built in the app's lifespan and passed down to handlers."""

    settings: Settings
    db: Database
    keys: KeyStore
    auth: Authenticator
    router: Router
    limiter: RateLimiter
    usage: UsageRecorder
    metrics: Metrics
    observer: Observer  # request ids, access log, histograms, traces, recent requests
    redis: Redis | None = None
    memory: IdleTrimmer = field(default_factory=IdleTrimmer)
    responses: ResponseStore | None = None
    request_log: RequestLog | None = None  # stored requests (GROK_API_REQUEST_LOG_RETENTION), else None


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw
