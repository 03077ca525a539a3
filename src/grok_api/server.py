"""Starts uvicorn with the gateway: one process, or ``--workers N`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Generator
from typing import Any

import uvicorn
from rich.console import Console

from . import logs
from .config import Settings, public_url
from .doctor import DEMO_KEY_NAME
from .protocol import BoundedHttpToolsProtocol
from .store import Database, KeyStore

DEMO_KEY_LIFETIME = 24 * 3600.0


async def _demo_key(settings: Settings) -> tuple[str, str]:
    """A key in the demo's own store: (its id, the key)."""
    db = await Database.open(settings.resolved_database_url())
    try:
        record, key = await KeyStore(db).create(DEMO_KEY_NAME, expires_in=DEMO_KEY_LIFETIME)
        return record.id, key
    finally:
        await db.close()


async def _migrate(settings: Settings) -> None:
    db = await Database.open(settings.resolved_database_url())
    await db.close()


async def _drop_key(settings: Settings, key_id: str) -> None:
    db = await Database.open(settings.resolved_database_url())
    try:
        await KeyStore(db).delete(key_id)
    finally:
        await db.close()


def _banner(settings: Settings, console: Console, demo_key: str | None) -> None:
    url = f"http://{settings.host}:{settings.port}/v1"
    console.print(f"[bold]Grok-Api[/] on {url}  (workers: {settings.workers})")
    if demo_key:
        console.print(
            "[yellow]DEMO MODE[/]: the upstream is the built-in simulator, not Grok. "
            "Answers are canned; no credentials are used."
        )
        console.print(
            f"Demo key (valid while this demo runs, at most 24h; shown once): [bold]{demo_key}[/]",
            highlight=False,
        )
        console.print(f"  export GROK_API_KEY={demo_key}", highlight=False)
        console.print(
            f"Try:  curl {url}/chat/completions -H 'Authorization: Bearer {demo_key}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"model":"grok-4.3","messages":[{"role":"user","content":"Hello"}]}\'',
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"Upstream: {', '.join(public_url(u) for u in settings.xai_base_url.split(','))}")
    if settings.workers > 1 and not settings.redis_url:
        console.print(
            f"[bold red]WARNING[/]: {settings.workers} workers and no GROK_API_REDIS_URL: every worker keeps "
            f"its own per-key limits, so each limit is multiplied by {settings.workers}."
        )
        if settings.xai_api_key is None:
            console.print("[yellow]XAI_API_KEY is not set[/]: the xAI upstream will refuse requests.")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for the gateway: the bounded protocol, and forwarded headers believed
    only from the listed proxies (uvicorn's own default believes loopback)."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {
        "log_config": None,
        "access_log": False,  # the gateway writes its own (GROK_API_ACCESS_LOG), with request ids
        "timeout_graceful_shutdown": settings.shutdown_grace,
        "server_header": False,
        "http": BoundedHttpToolsProtocol,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }


def run_server(settings: Settings, console: Console) -> None:
    logs.configure(settings.log_level, settings.log_format)
    problems = settings.startup_problems()
    if problems:
        for problem in problems:
            console.print(f"[bold red]Refusing to start[/]: {problem}", highlight=False)
        raise SystemExit(2)
    if not settings.demo:
        _serve(settings, console, None)
        return
    key_id, demo_key = asyncio.run(_demo_key(settings))
    try:
        _serve(settings, console, demo_key)
    finally:  # the demo's key ends with the demo, and a start that failed leaves none behind
        asyncio.run(_drop_key(settings, key_id))


def _serve(settings: Settings, console: Console, demo_key: str | None) -> None:
    _banner(settings, console, demo_key)
    common: dict[str, object] = {"host": settings.host, "port": settings.port, **uvicorn_options(settings)}
    if settings.workers > 1:
        asyncio.run(_migrate(settings))  # once, before the workers start (they find it done)
        # Worker processes build their own Settings from the environment: hand the flags down.
        os.environ.update(
            GROK_API_HOST=settings.host,
            GROK_API_WORKERS=str(settings.workers),
            GROK_API_PORT=str(settings.port),
            GROK_API_DEMO="1" if settings.demo else "0",
            GROK_API_DATA_DIR=str(settings.data_dir),
        )
        uvicorn.run("grok_api.app:create_app_from_env", factory=True, workers=settings.workers, **common)  # type: ignore[arg-type]
        return
    from .app import create_app

    config = uvicorn.Config(create_app(settings), **common)  # type: ignore[arg-type]
    GracefulServer(config).run()


class GracefulServer(uvicorn.Server):
    """uvicorn, but a SIGTERM/SIGINT that was handled gracefully ends the process with status 0.

    uvicorn drains (stops accepting, lets requests finish within the grace period, then runs the
    app's shutdown: usage flushed, pools closed) and then re-raises the signal, which makes the
    exit status 143/130; a supervisor would read that as a crash.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()
