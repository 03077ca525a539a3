"""Fixtures: real servers for the tests, the simulator and the gateway (uvicorn), each on a free
port. Helpers the tests import by name live in tests/helpers.py.

PostgreSQL and Redis are used when they answer; with ``GROK_API_REQUIRE_SERVICES=1`` (CI) a
missing one fails the run instead of skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import asyncpg
import openai
import pytest

from grok_api.simulator import Simulator, SimulatorConfig, SimulatorThread

from .helpers import (
    UPSTREAM_KEY,
    WEB_AGENT,
    WEB_SSO,
    Env,
    gateway_settings,
    missing_service,
    postgres_execute,
    run_async,
    served_env,
)

POSTGRES_URL = os.environ.get("GROK_API_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    config = SimulatorConfig(xai_api_key=UPSTREAM_KEY, web_cookie=WEB_SSO, web_user_agent=WEB_AGENT)
    with SimulatorThread(config) as s:
        yield s


@pytest.fixture(scope="session")
def env(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with served_env(gateway_settings(tmp_path_factory.mktemp("gateway"), sim), sim) as e:
        yield e


@pytest.fixture
def key(env: Env) -> str:
    return env.create_key("per-test")[1]


@pytest.fixture
def client(env: Env, key: str) -> openai.OpenAI:
    return env.client(key)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped at the end."""
    yield from _fresh_postgres()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own for one test (e.g. to migrate from an older schema), dropped after."""
    yield from _fresh_postgres()


def _fresh_postgres() -> Iterator[str]:
    name = "grok_api_test_" + secrets.token_hex(4)

    try:
        run_async(postgres_execute(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        missing_service(
            f"PostgreSQL at {POSTGRES_URL} ({exc})",
            "start it (pg_ctlcluster <version> main start) or set GROK_API_TEST_POSTGRES_URL",
        )
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    run_async(postgres_execute(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
