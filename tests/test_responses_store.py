"""Stored responses on SQLite and PostgreSQL: ownership, time to live, clean-up, writes that
happen after the answer; and the clean-up task of a served gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from grok_api.store import Database
from grok_api.store.responses import ResponseStore, StoredResponse
from grok_api.store.tables import responses


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResponseStore]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+asyncpg://")
    db = await Database.open(url)
    try:
        yield ResponseStore(db, ttl=3600)
    finally:
        await db.close()


def record(rid: str, key_id: str = "key_a", *, expires_in: float = 3600) -> StoredResponse:
    now = int(time.time())
    return StoredResponse(
        id=rid,
        key_id=key_id,
        model="grok-4",
        upstream="xai",
        created_at=now,
        expires_at=int(now + expires_in),
        response={"id": rid, "object": "response", "output": [{"type": "message", "text": "secret"}]},
        history=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "secret"}],
    )


def rid(name: str) -> str:
    return f"resp_{name}_{time.monotonic_ns()}"


async def test_only_the_owner_reads_it(store: ResponseStore) -> None:
    r = record(rid("own"))
    await store.put(r)
    got = await store.get(r.id, "key_a")
    assert got is not None
    assert got.response == r.response and got.history == r.history and got.upstream == "xai"
    assert await store.get(r.id, "key_b") is None
    assert await store.get("resp_unknown", "key_a") is None


async def test_delete_is_the_owners_alone(store: ResponseStore) -> None:
    r = record(rid("del"))
    await store.put(r)
    assert await store.delete(r.id, "key_b") is False
    assert await store.get(r.id, "key_a") is not None
    assert await store.delete(r.id, "key_a") is True
    assert await store.get(r.id, "key_a") is None
    assert await store.delete(r.id, "key_a") is False


async def test_expired_ones_are_unreadable_and_purged(store: ResponseStore) -> None:
    old, fresh = record(rid("old"), expires_in=-1), record(rid("fresh"))
    await store.put(old)
    await store.put(fresh)
    assert await store.get(old.id, "key_a") is None
    assert await store.purge() >= 1
    assert await store.get(fresh.id, "key_a") is not None
    assert await store.purge(now=time.time() + 7200) >= 1  # later, the fresh one expires too
    assert await store.get(fresh.id, "key_a") is None


async def test_a_read_waits_for_a_write_under_way(store: ResponseStore) -> None:
    r = record(rid("bg"))
    store.save(r)  # in the background, as after an answer
    got = await store.get(r.id, "key_a")
    assert got is not None and got.id == r.id
    store.save(record(rid("bg2")))
    await store.drain()


async def test_the_cleanup_task_removes_expired_ones(store: ResponseStore) -> None:
    old = record(rid("task"), expires_in=-1)
    await store.put(old)
    task = asyncio.create_task(store.run_cleanup(interval=3600))
    try:
        for _ in range(200):
            async with store.db.engine.connect() as conn:
                left = (await conn.execute(responses.select().where(responses.c.id == old.id))).first()
            if left is None:
                break
            await asyncio.sleep(0.05)
        assert left is None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
