"""Real servers for the tests: the simulator and the gateway (uvicorn), each on a free port.

PostgreSQL and Redis are used when they answer; with ``GROK_API_REQUIRE_SERVICES=1`` (CI) a
missing one fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
import uvicorn

from grok_api.app import create_app
from grok_api.config import Settings
from grok_api.server import uvicorn_options
from grok_api.simulator import Simulator, SimulatorConfig, SimulatorThread
from grok_api.store import Database, KeyRecord, KeyStore, Limits
from grok_api.store.keys import NO_LIMITS

UPSTREAM_KEY = "xai-test-upstream-key-0123456789"
ADMIN_KEY = "admin-test-key-9876543210-abcdef"
POSTGRES_URL = os.environ.get("GROK_API_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def services_required() -> bool:
    return os.environ.get("GROK_API_REQUIRE_SERVICES") == "1"


def missing_service(what: str, how: str) -> None:
    if services_required():
        pytest.fail(f"{what} is required (GROK_API_REQUIRE_SERVICES=1) but not reachable: {how}")
    pytest.skip(f"{what} is not reachable; {how}")


def run_async(coro: Any) -> Any:
    """Runs a coroutine to completion from sync code, even where a loop is already running."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def post_chat(
    base_url: str, key: str, content: str = "x", model: str = "grok-4.20-non-reasoning"
) -> httpx.Response:
    """One non-streamed chat request over plain HTTP, to see status, headers and raw body."""
    return httpx.post(
        base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": content}]},
    )


def stream_frames(
    base_url: str, key: str, content: str, model: str = "grok-4.20-non-reasoning", **body: Any
) -> tuple[httpx.Response, list[str]]:
    """A streamed chat request over plain HTTP: the response (status, headers) and its SSE frames."""
    payload = {"model": model, "stream": True, "messages": [{"role": "user", "content": content}], **body}
    with httpx.stream(
        "POST",
        base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=payload,
        timeout=30,
    ) as r:
        frames = [f for f in r.read().decode().split("\n\n") if f]
    return r, frames


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServedApp:
    """The gateway served by uvicorn in a thread, on its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="on", **uvicorn_options(settings))
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))
        self.loop.close()

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Runs a coroutine on the gateway's own loop (to reach its in-process services)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@dataclass
class Env:
    """A served gateway with the simulator behind it, and a way to issue keys."""

    app: ServedApp
    sim: Simulator
    settings: Settings
    clients: list[openai.OpenAI] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.app.base_url

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def create_key(
        self,
        name: str = "test",
        *,
        models: list[str] | None = None,
        expires_in: float | None = None,
        limits: Limits = NO_LIMITS,
    ) -> tuple[KeyRecord, str]:
        async def go() -> tuple[KeyRecord, str]:
            db = await Database.open(self.settings.resolved_database_url())
            try:
                return await KeyStore(db).create(name, models=models, expires_in=expires_in, limits=limits)
            finally:
                await db.close()

        result: tuple[KeyRecord, str] = asyncio.run(go())
        return result

    def revoke(self, key_id: str) -> None:
        async def go() -> None:
            db = await Database.open(self.settings.resolved_database_url())
            try:
                await KeyStore(db).revoke(key_id)
            finally:
                await db.close()

        asyncio.run(go())

    def client(self, key: str, **kw: Any) -> openai.OpenAI:
        """An SDK client for this gateway; closed when the session ends."""
        kw.setdefault("base_url", self.base_url + "/v1")
        c = openai.OpenAI(api_key=key, max_retries=0, **kw)
        self.clients.append(c)
        return c

    def close_clients(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()


def key_for(settings: Settings, **limits: Any) -> str:
    """A new key in the store of a gateway started with ``settings``."""

    async def go() -> str:
        db = await Database.open(settings.resolved_database_url())
        try:
            return (await KeyStore(db).create("test", limits=Limits(**limits)))[1]
        finally:
            await db.close()

    result: str = run_async(go())
    return result


def gateway_settings(data_dir: Path, sim: Simulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "xai_base_url": sim.base_url + "/v1",
        "xai_api_key": UPSTREAM_KEY,
        "upstream_read_timeout": 2.0,
        "upstream_connect_timeout": 2.0,
        "upstream_first_byte_timeout": 2.0,
        # the shared gateway maps each fault straight to its status; test_resilience.py covers
        # retries, failover and breakers with gateways of its own
        "upstream_retries": 0,
        "breaker_threshold": 1000,
        "upstream_cooldown_max": 0,  # a 429 test must not make the shared gateway rest a model
        "auth_failures_per_minute": 1_000_000,  # tests fail auth on purpose; test_bad_input.py covers it
        "key_cache_ttl": 0.2,
        "admin_key": ADMIN_KEY,
        "log_format": "text",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


WEB_SSO = "sso-test-session-value"
WEB_AGENT = "Mozilla/5.0 (TestBrowser) Gecko/20100101"
WEB_COOKIES = f"sso={WEB_SSO}; sso-rw={WEB_SSO}; cf_clearance=cf-test-clearance"


def web_settings(data_dir: Path, sim: Simulator, **overrides: Any) -> Settings:
    """Gateway settings with the grok.com upstream on the simulator, signed in as the tests' browser."""
    values: dict[str, Any] = {
        "web_cookies": WEB_COOKIES,
        "web_user_agent": WEB_AGENT,
        "web_base_url": sim.base_url,
    }
    return gateway_settings(data_dir, sim, **(values | overrides))


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    config = SimulatorConfig(xai_api_key=UPSTREAM_KEY, web_cookie=WEB_SSO, web_user_agent=WEB_AGENT)
    with SimulatorThread(config) as s:
        yield s


@pytest.fixture(scope="session")
def env(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = gateway_settings(tmp_path_factory.mktemp("gateway"), sim)
    with ServedApp(settings) as served:
        e = Env(app=served, sim=sim, settings=settings)
        yield e
        e.close_clients()


@pytest.fixture
def key(env: Env) -> str:
    return env.create_key("per-test")[1]


@pytest.fixture
def client(env: Env, key: str) -> openai.OpenAI:
    return env.client(key)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped at the end."""
    name = "grok_api_test_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        run_async(admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        missing_service(
            f"PostgreSQL at {POSTGRES_URL} ({exc})",
            "start it (pg_ctlcluster <version> main start) or set GROK_API_TEST_POSTGRES_URL",
        )
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    run_async(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


REDIS_URL = os.environ.get("GROK_API_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis (database 15 by default), checked once."""
    import redis.asyncio as aioredis

    async def ping() -> None:
        client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        run_async(ping())
    except Exception as exc:
        missing_service(
            f"Redis at {REDIS_URL} ({type(exc).__name__})",
            "start it (redis-server --daemonize yes) or set GROK_API_TEST_REDIS_URL",
        )
    return REDIS_URL
