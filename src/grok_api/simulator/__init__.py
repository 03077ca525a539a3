"""A real HTTP server that speaks the upstreams' wire protocols, for demo, tests and bench.

``Simulator(config).start(host, port)`` serves on the running loop; ``SimulatorThread`` runs
one on its own loop in a thread (tests, ``serve --demo``). Besides the upstream routes it
(xAI's API under ``/v1``, grok.com's web chat under ``/rest/app-chat`` and its WebSocket chat gateway at ``/ws/mgw/``) answers ``GET /_sim/stats`` (counters) and ``GET /_sim/requests`` (the last request bodies it
received), so a test can see exactly what the gateway sent upstream.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import grok_web, images, xai, xai_responses


@dataclass(slots=True)
class SimulatorConfig:
    xai_api_key: str | None = None
    web_cookie: str | None = None  # the sso value a web request must carry (None: any)
    web_user_agent: str | None = None  # the user agent it must carry (None: any)
    first_token_latency: float = 0.0
    token_rate: float = 0.0
    keep_requests: int = 200


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.stats: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.recorded = 0  # requests per prompt, for faults that recover
        self.requests: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=self.config.keep_requests)
        self._runner: web.AppRunner | None = None
        self._hangs: set[asyncio.Future[None]] = set()
        self.port = 0

    def count(self, name: str) -> None:
        self.stats[name] += 1

    def record(self, upstream: str, path: str, body: dict[str, Any]) -> None:
        self.requests.append((upstream, path, body))
        self.recorded += 1

    def since(self, mark: int) -> list[tuple[str, str, dict[str, Any]]]:
        """The requests recorded after ``recorded`` was ``mark`` (as far as they are still kept)."""
        kept = list(self.requests)
        return kept[max(0, len(kept) - (self.recorded - mark)) :]

    async def hang(self) -> None:
        """Waits until the client goes away (or the simulator stops)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hangs.add(fut)
        try:
            await fut
        finally:
            self._hangs.discard(fut)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(xai.routes(self))
        app.add_routes(xai_responses.routes(self))
        app.add_routes(grok_web.routes(self))
        app.add_routes(images.routes(self))
        app.add_routes([web.get("/_sim/stats", self._stats), web.get("/_sim/requests", self._requests)])
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats))

    async def _requests(self, request: web.Request) -> web.Response:
        rows = [{"upstream": u, "path": p, "body": b} for u, p, b in self.requests]
        return web.json_response(rows)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, backlog=1024).start()
        return self.port

    async def stop(self) -> None:
        for fut in list(self._hangs):
            fut.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SimulatorThread:
    """A simulator on its own event loop in a daemon thread: ``with SimulatorThread() as sim``."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = Simulator(config)
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grok-api-simulator", daemon=True)

    def __enter__(self) -> Simulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(self._host, self._port), self._loop).result(10)
        return self.sim

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def serve_forever(host: str, port: int, config: SimulatorConfig) -> None:
    """``grok-api simulate``: serve until cancelled."""
    sim = Simulator(config)
    await sim.start(host, port)
    print(f"Grok-Api simulator listening on http://{host}:{sim.port} (xAI API at /v1)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
