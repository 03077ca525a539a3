"""The tests' helper library: served gateways, keys, requests, the CLI and stored usage.

Fixtures live in conftest.py; everything a test imports by name lives here, once, or in a
sibling for one kind of test: servers.py (stand-in upstreams and proxies), recordings.py
(recorded upstream bodies, cut as a network would), locks.py (what the lock files pin).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import httpx
import openai
import pytest
import sqlalchemy as sa
import uvicorn

from grok_api.app import create_app
from grok_api.config import Settings
from grok_api.server import uvicorn_options
from grok_api.simulator import Simulator
from grok_api.store import Database, KeyRecord, KeyStore, Limits
from grok_api.store.keys import NO_LIMITS

UPSTREAM_KEY = "xai-test-upstream-key-0123456789"
ADMIN_KEY = "admin-test-key-9876543210-abcdef"
WEB_SSO = "sso-test-session-value"
WEB_AGENT = "Mozilla/5.0 (TestBrowser) Gecko/20100101"
WEB_COOKIES = f"sso={WEB_SSO}; sso-rw={WEB_SSO}; cf_clearance=cf-test-clearance"
CHAT = "/v1/chat/completions"


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


# --- sockets and processes -------------------------------------------------------------------


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and a socket made with
    # socket(AF_INET, SOCK_STREAM) has proto 0: without this, every answer on a kept-alive
    # connection waited ~40 ms for the client's delayed ACK (Nagle), 20x a test request's time.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A port the OS just handed out, closed again for a child process to bind."""
    sock = free_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any GROK_API_* / XAI_* setting, plus ``extra``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GROK_API_", "XAI_"))}
    return environ | (extra or {})


def run_script(script: Path, key: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs a Python file (a README example) with ``GROK_API_KEY`` set to ``key``."""
    return subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "GROK_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli(
    *args: str, data_dir: Path | None = None, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m grok_api ARGS`` in a clean environment (``env`` as extra variables)."""
    if data_dir is not None:
        env["GROK_API_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "grok_api", *args],
        env=clean_environ(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_ok(*args: str, data_dir: Path | None = None, **env: str) -> str:
    """:func:`cli` that must succeed; its standard output."""
    out = cli(*args, data_dir=data_dir, **env)
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextmanager
def gateway_processes(count: int, environ: dict[str, str]) -> Iterator[list[str]]:
    """``count`` ``grok-api serve`` processes with ``environ`` (from :func:`clean_environ`), each on
    a port of its own, ready: their base URLs. At the end each is stopped and must exit cleanly."""
    procs, urls = [], []
    for _ in range(count):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "grok_api", "serve", "--port", str(port)],
                env=environ,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{url} did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            # uvicorn shuts down gracefully, then re-raises SIGTERM: -15 is its clean exit
            assert p.wait(30) in (0, -signal.SIGTERM)


async def postgres_execute(url: str, sql: str) -> None:
    """One statement on PostgreSQL at ``url`` (plain ``postgresql://``), e.g. CREATE DATABASE."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- settings and served gateways ------------------------------------------------------------


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


def web_settings(data_dir: Path, sim: Simulator, **overrides: Any) -> Settings:
    """Gateway settings with the grok.com upstream on the simulator, signed in as the tests' browser."""
    values: dict[str, Any] = {
        "web_cookies": WEB_COOKIES,
        "web_user_agent": WEB_AGENT,
        "web_base_url": sim.base_url,
    }
    return gateway_settings(data_dir, sim, **(values | overrides))


def database_url(database: Settings | str) -> str:
    """The SQLAlchemy URL of a gateway's store, from its settings or a configured URL."""
    if isinstance(database, str):
        database = Settings(_env_file=None, database_url=database)  # type: ignore[call-arg]
    return database.resolved_database_url()


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

    def create_key(
        self,
        name: str = "test",
        *,
        models: list[str] | None = None,
        expires_in: float | None = None,
        limits: Limits = NO_LIMITS,
    ) -> tuple[KeyRecord, str]:
        return create_key(self.settings, name, models=models, expires_in=expires_in, limits=limits)

    def revoke(self, key_id: str) -> None:
        async def go() -> None:
            db = await Database.open(database_url(self.settings))
            try:
                await KeyStore(db).revoke(key_id)
            finally:
                await db.close()

        run_async(go())

    def client(self, key: str, **kw: Any) -> openai.OpenAI:
        """An SDK client for this gateway; closed with the Env (the session's: when the session ends)."""
        kw.setdefault("base_url", self.base_url + "/v1")
        c = openai.OpenAI(api_key=key, max_retries=0, **kw)
        self.clients.append(c)
        return c

    def new_client(self, name: str = "test") -> openai.OpenAI:
        """An SDK client for this gateway with a new key of its own (no limits, every model)."""
        return self.client(self.create_key(name)[1])

    def close_clients(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()

    @classmethod
    @contextmanager
    def served(cls, settings: Settings, sim: Simulator) -> Iterator[Env]:
        """A gateway of its own, served with ``settings`` in front of ``sim``; its clients are
        closed when it stops."""
        with ServedApp(settings) as app:
            e = cls(app=app, sim=sim, settings=settings)
            yield e
            e.close_clients()


@contextmanager
def served_env(settings: Settings, sim: Simulator) -> Iterator[Env]:
    """A gateway with ``settings`` served for the block (the simulator ``sim`` behind it), as an
    :class:`Env`; the SDK clients made through it are closed after."""
    with ServedApp(settings) as served:
        env = Env(app=served, sim=sim, settings=settings)
        try:
            yield env
        finally:
            env.close_clients()


def web_requests(env: Env, since: int) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of what the simulator's grok.com side received since ``since`` (a
    ``sim.recorded`` taken before); a WebSocket frame's path is ``ws:`` and its type."""
    return [(path, body) for upstream, path, body in env.sim.since(since) if upstream == "web"]


# --- the store: keys and usage ---------------------------------------------------------------


def create_key(
    database: Settings | str,
    name: str = "test",
    *,
    models: list[str] | None = None,
    expires_in: float | None = None,
    limits: Limits = NO_LIMITS,
) -> tuple[KeyRecord, str]:
    """A new key (record, secret) in the store of a gateway's settings or a database URL."""

    async def go() -> tuple[KeyRecord, str]:
        db = await Database.open(database_url(database))
        try:
            return await KeyStore(db).create(name, models=models, expires_in=expires_in, limits=limits)
        finally:
            await db.close()

    result: tuple[KeyRecord, str] = run_async(go())
    return result


def key_for(settings: Settings, **limits: Any) -> str:
    """Just the secret of a new key with ``limits``, in the store of a gateway started with ``settings``."""
    return create_key(settings, limits=Limits(**limits))[1]


USAGE_SUMS = sa.text(
    "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(estimated_requests), 0),"
    " COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage_hourly"
)


class StoredUsage(NamedTuple):
    requests: int
    estimated_requests: int
    tokens: int


def stored_usage(database: Settings | str, key_id: str | None = None) -> StoredUsage:
    """What the store holds in ``usage_hourly``, for one key or all of them."""
    query = USAGE_SUMS if key_id is None else sa.text(USAGE_SUMS.text + " WHERE key_id = :k")

    async def go() -> StoredUsage:
        db = await Database.open(database_url(database))
        try:
            async with db.engine.connect() as conn:
                row = (await conn.execute(query, {"k": key_id})).one()
            return StoredUsage(int(row[0]), int(row[1]), int(row[2]))
        finally:
            await db.close()

    result: StoredUsage = run_async(go())
    return result


def usage_rows(base_url: str, key_id: str) -> list[dict[str, object]]:
    """The admin API's usage rows for one key over the last day."""
    r = httpx.get(
        base_url + "/admin/usage",
        params={"key_id": key_id, "since": "1d"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


# --- requests --------------------------------------------------------------------------------


def chat_body(content: str = "x", model: str = "grok-4.20-non-reasoning", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def post(
    base_url: str,
    key: str | None = None,
    *,
    path: str = CHAT,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    """One POST over plain HTTP (``json=`` or ``content=`` in ``kw``), with the key as a bearer token."""
    sent = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.post(base_url + path, headers=sent | (headers or {}), **kw)


def post_chat(
    base_url: str, key: str, content: str = "x", model: str = "grok-4.20-non-reasoning"
) -> httpx.Response:
    """One non-streamed chat request over plain HTTP, to see status, headers and raw body."""
    return post(base_url, key, json=chat_body(content, model))


def stream_frames(
    base_url: str, key: str, content: str, model: str = "grok-4.20-non-reasoning", **body: Any
) -> tuple[httpx.Response, list[str]]:
    """A streamed chat request over plain HTTP: the response (status, headers) and its SSE frames."""
    with httpx.stream(
        "POST",
        base_url + CHAT,
        headers={"Authorization": f"Bearer {key}"},
        json=chat_body(content, model, stream=True) | body,
        timeout=30,
    ) as r:
        frames = [f for f in r.read().decode().split("\n\n") if f]
    return r, frames


@contextmanager
def stream_begun(
    base_url: str, key: str, content: str, model: str = "grok-4.20-non-reasoning"
) -> Iterator[httpx.Response]:
    """A streamed chat request whose first bytes have come, running for the block; the client
    goes away at its end (the answer unread)."""
    with httpx.stream(
        "POST",
        base_url + CHAT,
        headers={"Authorization": f"Bearer {key}"},
        json=chat_body(content, model, stream=True),
        timeout=30,
    ) as r:
        chunks = r.iter_bytes()  # kept: a dropped iterator would close the response
        next(chunks)
        yield r


def ask(
    client: openai.OpenAI,
    prompt: str | list[dict[str, str]],
    model: str = "grok-4.20-non-reasoning",
    **kw: Any,
) -> Any:
    """A chat completion through the SDK: one user message, or a whole conversation."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return client.chat.completions.create(model=model, messages=messages, **kw)  # type: ignore[arg-type]


def ask_text(
    client: openai.OpenAI,
    prompt: str | list[dict[str, str]],
    model: str = "grok-4.20-non-reasoning",
    **kw: Any,
) -> str:
    """Just the answer's text of a non-streamed :func:`ask`."""
    return ask(client, prompt, model, **kw).choices[0].message.content or ""  # type: ignore[no-any-return]


def streamed_text(chunks: Iterable[Any]) -> str:
    """The answer's text from a stream of the SDK's chat-completion chunks."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def answer_and_reasoning(
    client: openai.OpenAI, prompt: str, model: str, *, stream: bool, **kw: Any
) -> tuple[str, str]:
    """One question's answer and its reasoning through the SDK, streamed or not."""
    messages = [{"role": "user", "content": prompt}]
    if not stream:
        message = ask(client, messages, model, **kw).choices[0].message
        return message.content or "", getattr(message, "reasoning_content", None) or ""
    chunks = [c for c in ask(client, messages, model, stream=True, **kw) if c.choices]
    reasoning = (getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)
    return streamed_text(chunks), "".join(reasoning)


def assert_openai_error(r: httpx.Response, status: int) -> dict[str, object]:
    """``r`` is an OpenAI-shaped error with ``status``; returns its ``error`` object."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    return err  # type: ignore[no-any-return]
