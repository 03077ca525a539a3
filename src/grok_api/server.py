"""Starts uvicorn with the gateway: one process, or ``--workers N`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Generator

import uvicorn
from rich.console import Console

from . import logs
from .config import Settings
from .store import Database, KeyStore

DEMO_KEY_LIFETIME = 24 * 3600.0


async def _demo_key(settings: Settings) -> str:
    db = await Database.open(settings.resolved_database_url())
    try:
        _, key = await KeyStore(db).create("demo", expires_in=DEMO_KEY_LIFETIME)
        return key
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
        console.print(f"Demo key (valid 24h, shown once): [bold]{demo_key}[/]", highlight=False)
        console.print(
            f"Try:  curl {url}/chat/completions -H 'Authorization: Bearer {demo_key}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"model":"grok-4.3","messages":[{"role":"user","content":"Hello"}]}\'',
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"Upstream: {settings.xai_base_url}")
    if settings.workers > 1 and not settings.redis_url:
        console.print(
            f"[bold red]WARNING[/]: {settings.workers} workers and no GROK_API_REDIS_URL: every worker keeps "
            f"its own per-key limits, so each limit is multiplied by {settings.workers}."
        )
        if settings.xai_api_key is None:
            console.print("[yellow]XAI_API_KEY is not set[/]: the xAI upstream will refuse requests.")


def run_server(settings: Settings, console: Console) -> None:
    logs.configure(settings.log_level, settings.log_format)
    demo_key = asyncio.run(_demo_key(settings)) if settings.demo else None
    _banner(settings, console, demo_key)
    common: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,  # the gateway writes its own (GROK_API_ACCESS_LOG), with request ids
        "timeout_graceful_shutdown": settings.shutdown_grace,
        "server_header": False,
    }
    if settings.workers > 1:
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
