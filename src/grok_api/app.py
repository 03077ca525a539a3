"""``create_app(settings)``: the routes, the one error handler, and a lifespan that owns every client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.asyncio import Redis
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__, keyevents, logs, tracing
from .api import (
    admin,
    admin_stats,
    chat,
    dashboard,
    health,
    image_edits,
    images,
    messages,
    models,
    responses,
    responses_stored,
    web_images,
)
from .api.deps import Gateway
from .auth import Authenticator, duplicate_credentials, duplicated
from .config import Settings
from .errors import GatewayError, InvalidRequest, for_status
from .limits import MemoryLimiter, RateLimiter
from .limits_redis import RedisLimiter
from .metrics import Metrics
from .observe import WEB_UPSTREAM, Observer
from .pipeline import Surface, serve
from .request_log import RequestLog
from .store import Database, KeyStore, UsageStore
from .store.request_log import RequestLogStore
from .store.responses import ResponseStore
from .stream_messages import error_body as anthropic_error_body
from .upstreams.registry import build_router
from .usage import UsageRecorder

log = logging.getLogger(__name__)

LAST_USED_FLUSH_SECONDS = 10.0
RESPONSES_CLEANUP_SECONDS = 3600.0
REQUEST_LOG_PURGE_SECONDS = 3600.0


def error_response(err: GatewayError, path: str = "") -> Response:
    """The error in the shape of the surface the path belongs to (Anthropic's under /v1/messages)."""
    body = anthropic_error_body(err) if path.startswith(messages.PATH) else err.json_bytes()
    return Response(body, status_code=err.status, headers=err.headers, media_type="application/json")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500:
        log.warning("request failed: %s", exc.message, extra={"status": exc.status, "path": request.url.path})
    return error_response(exc, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: f"Unknown route: {request.method} {request.url.path}", 405: "Method not allowed."}.get(
        exc.status_code, str(exc.detail)
    )
    err = for_status(exc.status_code, message)
    err.headers.update(exc.headers or {})
    return error_response(err, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    err = InvalidRequest(f"Invalid request: {first.get('msg', 'bad input')}", param=param)
    return error_response(err, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error", exc_info=exc, extra={"path": request.url.path})
    return error_response(GatewayError("The gateway failed to handle this request."), request.url.path)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _background(stack: AsyncExitStack, coro: Coroutine[Any, Any, None]) -> None:
    stack.push_async_callback(_stop, asyncio.create_task(coro))


def build_limiter(
    settings: Settings, usage: UsageStore, metrics: Metrics, client: Redis | None
) -> RateLimiter:
    if client is None:
        return MemoryLimiter(usage)
    return RedisLimiter(
        client,
        usage,
        fail_mode=settings.limits_fail_mode,
        inflight_ttl=90.0,  # a lease, renewed while the request runs
        on_fail_open=metrics.limiter_fail_open.inc,
    )


def _request_log(
    settings: Settings, db: Database, metrics: Metrics, stack: AsyncExitStack
) -> RequestLog | None:
    """The stored request log when GROK_API_REQUEST_LOG_RETENTION is on; its last records are
    written at shutdown, after the requests in flight (and before the database closes)."""
    if not settings.request_log_retention:
        return None
    request_log = RequestLog(
        RequestLogStore(db),
        retention=settings.request_log_retention,
        max_pending=settings.request_log_max_pending,
        on_dropped=metrics.request_log_dropped.inc,
    )
    metrics.request_log_pending.set_function(request_log.pending)
    stack.push_async_callback(request_log.aclose)
    return request_log


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    problems = settings.startup_problems()
    if problems:
        raise SettingsRefused("; ".join(problems))
    async with AsyncExitStack() as stack:
        demo_url = None
        if settings.demo:
            from .simulator import Simulator, SimulatorConfig

            sim = Simulator(SimulatorConfig(keep_requests=0))  # the demo's prompts are not kept
            await sim.start()
            stack.push_async_callback(sim.stop)
            demo_url = sim.base_url
        db = await Database.open(settings.resolved_database_url(), pool_size=settings.database_pool_size)
        stack.push_async_callback(db.close)
        client = None
        if settings.redis_url:
            client = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            stack.push_async_callback(client.aclose)
        metrics = Metrics(key_labels=settings.metrics_key_labels)
        tracer = tracing.build(settings.tracing)
        if tracer is not None:
            stack.callback(tracer.shutdown)
        request_log = _request_log(settings, db, metrics, stack)
        observer = Observer(
            metrics,
            access_log=settings.access_log,
            recent_size=settings.recent_requests,
            tracing=tracer,
            sink=request_log.add if request_log is not None else None,
        )
        keys = KeyStore(db)
        auth = Authenticator(
            keys, ttl=settings.key_cache_ttl, failures_per_minute=settings.auth_failures_per_minute
        )
        router = build_router(settings, demo_url=demo_url, redis=client)
        observer.web.configured = WEB_UPSTREAM in router.upstreams
        stack.push_async_callback(router.aclose)
        stack.push_async_callback(auth.flush_last_used)
        usage_store = UsageStore(db)
        recorder = UsageRecorder(
            usage_store,
            on_flush_error=metrics.usage_flush_errors.inc,
            max_pending=settings.usage_max_pending,
            on_dropped=metrics.usage_rows_dropped.inc,
            on_folded=metrics.usage_rows_folded.inc,
        )
        stack.push_async_callback(recorder.flush)  # the last usage, after in-flight requests
        limiter = build_limiter(settings, usage_store, metrics, client)
        stack.push_async_callback(limiter.aclose)
        stored = ResponseStore(
            db,
            ttl=settings.responses_ttl,
            max_per_key=settings.responses_max_per_key,
            max_links=settings.max_messages + 1,
        )
        stack.push_async_callback(stored.drain)  # stored answers still being written
        app.state.gateway = Gateway(
            settings=settings,
            db=db,
            keys=keys,
            auth=auth,
            router=router,
            limiter=limiter,
            usage=recorder,
            metrics=metrics,
            observer=observer,
            redis=client,
            responses=stored,
            request_log=request_log,
        )
        _background(stack, auth.run_flusher(LAST_USED_FLUSH_SECONDS))
        _background(stack, recorder.run(settings.usage_flush_interval))
        _background(stack, app.state.gateway.memory.run())
        _background(stack, stored.run_cleanup(RESPONSES_CLEANUP_SECONDS))
        if request_log is not None:
            _background(stack, request_log.run(settings.request_log_flush_interval))
            _background(stack, request_log.run_purge(REQUEST_LOG_PURGE_SECONDS))
        if client is not None:
            _background(stack, keyevents.listen(client, auth.invalidate))
        # Everything built so far lives as long as the process: move it out of the cyclic garbage
        # collector's sight, so that its collections (frequent under streams, which allocate a
        # lot) scan only what requests create. (A higher gen-0 threshold was tried as well: a
        # little faster, but 1,000 concurrent streams then peaked ~40 MB higher.)
        gc.collect()
        gc.freeze()
        if settings.workers > 1 and client is None:
            log.warning(
                "%d workers without GROK_API_REDIS_URL: each worker keeps its own per-key limits, "
                "so every limit is multiplied by %d. Set GROK_API_REDIS_URL to share them.",
                settings.workers,
                settings.workers,
            )
        yield


class SettingsRefused(RuntimeError):
    """The settings are unsafe or unusable; the gateway does not start."""


class GatewayApp(FastAPI):
    """FastAPI, with the surfaces' POST endpoints (``hot``: path → Surface) served by the
    pipeline before FastAPI's routing (the hot path).

    CORS, when configured, wraps both (it is off by default: browsers get no access).
    """

    entry: ASGIApp | None = None
    hot: dict[str, Surface]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.entry is not None:
            await self.entry(scope, receive, send)
        else:
            await self.dispatch(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(chat.SCHEMA_COMPONENTS)
            components.update(responses.SCHEMA_COMPONENTS)
            self.openapi_schema = schema
        return self.openapi_schema

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            surface = self.hot.get(scope["path"])
            if surface is not None:
                await serve(self.state.gateway, surface, scope, receive, send)
                return
        if scope["type"] == "http" and (twice := duplicate_credentials(scope["headers"])):
            await error_response(duplicated(twice), scope["path"])(scope, receive, send)
            return
        if scope["type"] == "http":
            await self.state.gateway.observer.around(super().__call__, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> GatewayApp:
    settings = settings or Settings()
    app = GatewayApp(
        title="Grok-Api",
        version=__version__,
        description="An OpenAI-compatible API gateway for xAI's Grok.",
        lifespan=_lifespan,
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,  # a redirect would be built from the request's Host header
    )
    app.state.settings = settings
    app.hot = {
        chat.PATH: chat.SURFACE,
        messages.PATH: messages.SURFACE,
        images.PATH: images.SURFACE,
        image_edits.PATH: image_edits.SURFACE,
        responses.PATH: responses.SURFACE,
    }
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.entry = CORSMiddleware(
            app.dispatch,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],  # DELETE: /v1/responses/{id}
            allow_headers=[
                "authorization",
                "content-type",
                "x-api-key",
                "x-request-id",
                "traceparent",
                "anthropic-version",
                "anthropic-beta",
            ],
            expose_headers=[
                "retry-after",
                "x-request-id",
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        )
    handlers: dict[Any, Any] = {
        GatewayError: _gateway_error,
        StarletteHTTPException: _http_error,
        RequestValidationError: _validation_error,
        Exception: _unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    app.include_router(chat.router)
    app.include_router(messages.router)
    app.include_router(images.router)
    app.include_router(image_edits.router)
    app.include_router(responses.router)
    app.include_router(responses_stored.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(web_images.router)
    app.include_router(admin_stats.router)
    app.include_router(dashboard.router)
    return app


def create_app_from_env() -> FastAPI:
    """The factory ``uvicorn --factory`` calls in each worker process."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)
