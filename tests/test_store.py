"""The key store on SQLite and, in CI, on PostgreSQL: same migrations, same behaviour."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from grok_api.config import Settings
from grok_api.store import Database, KeyStore
from grok_api.store.keys import KEY_PREFIX, hash_key


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "sqlite":
        url = Settings(_env_file=None, data_dir=tmp_path).resolved_database_url()  # type: ignore[call-arg]
    else:
        url = Settings(
            _env_file=None, database_url=request.getfixturevalue("postgres_url")
        ).resolved_database_url()  # type: ignore[call-arg]
    db = await Database.open(url)
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM api_keys"))
    try:
        yield KeyStore(db)
    finally:
        await db.close()


async def test_create_stores_only_a_hash(store: KeyStore) -> None:
    record, key = await store.create("alice")
    assert key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + 43  # 256 bits, URL-safe
    assert record.key_hash == hash_key(key)
    async with store.db.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM api_keys"))).all()
    assert len(rows) == 1
    assert key not in repr(rows)
    assert record.key_prefix == key[:8]


async def test_lookup_by_key(store: KeyStore) -> None:
    record, key = await store.create("bob", models=["grok-4.3", "grok-4.20-non-reasoning"], expires_in=3600)
    found = await store.by_key(key)
    assert found == record
    assert found.models == frozenset({"grok-4.3", "grok-4.20-non-reasoning"})
    assert found.allows("grok-4.3") and not found.allows("grok-3-mini")
    assert found.expires_at is not None and found.expires_at > time.time() + 3500
    assert await store.by_key(key + "x") is None


async def test_list_and_revoke(store: KeyStore) -> None:
    a, _ = await store.create("a")
    b, _ = await store.create("b", expires_in=-1)
    listed = await store.list()
    assert {r.id: r.status() for r in listed} == {a.id: "active", b.id: "expired"}
    revoked = await store.revoke(a.id)
    assert revoked is not None and revoked.status() == "revoked"
    again = await store.revoke(a.id)
    assert again is not None and again.revoked_at == revoked.revoked_at  # idempotent
    assert await store.revoke("key_missing") is None
    assert "key_hash" not in revoked.public()


async def test_touch_records_last_used_in_one_batch(store: KeyStore) -> None:
    a, _ = await store.create("a")
    b, _ = await store.create("b")
    await store.touch({a.id: 1_000, b.id: 2_000})
    got = {r.id: r.last_used_at for r in await store.list()}
    assert got == {a.id: 1_000, b.id: 2_000}


async def test_migrations_are_idempotent(store: KeyStore) -> None:
    record, _ = await store.create("kept")
    await store.db.migrate()
    assert (await store.get(record.id)) == record


async def test_sqlite_file_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    db = await Database.open(Settings(_env_file=None, data_dir=data).resolved_database_url())  # type: ignore[call-arg]
    await KeyStore(db).create("x")
    await db.close()
    mode = stat.S_IMODE(os.stat(data / "grok-api.db").st_mode)
    assert mode == 0o600


async def test_usage_upserts_add_up_without_lost_updates(store: KeyStore) -> None:
    import asyncio

    from grok_api.store import UsageRow, UsageStore

    usage = UsageStore(store.db)
    if not store.db.is_sqlite:
        async with store.db.engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM usage_hourly"))
    hour = int(time.time()) // 3600 * 3600

    def batch() -> list[UsageRow]:
        return [
            UsageRow(
                "key_a",
                "grok-4.3",
                hour,
                requests=1,
                prompt_tokens=10,
                completion_tokens=5,
                reasoning_tokens=2,
            ),
            UsageRow(
                "key_a",
                "grok-4.20-non-reasoning",
                hour,
                requests=2,
                errors=1,
                prompt_tokens=4,
                estimated_requests=1,
            ),
        ]

    # flushes from many "instances" at once, on the same rows
    await asyncio.gather(*(usage.add(batch()) for _ in range(10)))
    rows = {r["model"]: r for r in await usage.report(key_id="key_a")}
    assert rows["grok-4.3"]["requests"] == 10
    assert rows["grok-4.3"]["prompt_tokens"] == 100
    assert rows["grok-4.3"]["total_tokens"] == 150
    assert rows["grok-4.3"]["reasoning_tokens"] == 20
    assert rows["grok-4.3"]["estimated"] is False
    assert rows["grok-4.20-non-reasoning"]["errors"] == 10
    assert rows["grok-4.20-non-reasoning"]["estimated"] is True
    day_start = hour - hour % 86400
    assert await usage.tokens_since("key_a", day_start, 0, hour + 3600) == [190, 190, 0]
    assert await usage.report(key_id="key_a", since_hour=hour + 3600) == []
