"""Stored responses on SQLite and PostgreSQL: ownership, time to live, clean-up, writes that
happen after the answer; conversations as links walked back in one query, the per-key cap, the
item index; the migration of rows stored whole; and the clean-up task of a served gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from grok_api.store import Database
from grok_api.store.responses import ResponseStore, StoredResponse
from grok_api.store.tables import response_items, responses


def _async_url(request: pytest.FixtureRequest, tmp_path: Path, pg_fixture: str) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    url: str = request.getfixturevalue(pg_fixture)
    return url.replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResponseStore]:
    db = await Database.open(_async_url(request, tmp_path, "postgres_url"))
    try:
        yield ResponseStore(db, ttl=3600)
    finally:
        await db.close()


def record(
    rid: str,
    key_id: str = "key_a",
    *,
    expires_in: float = 3600,
    previous: str | None = None,
    text: str = "hi",
) -> StoredResponse:
    now = int(time.time())
    answer = {"id": f"msg_{rid}", "type": "message", "content": [{"type": "output_text", "text": "secret"}]}
    return StoredResponse(
        id=rid,
        key_id=key_id,
        model="grok-4",
        upstream="xai",
        created_at=now,
        expires_at=int(now + expires_in),
        response={"id": rid, "object": "response", "output": [answer]},
        input=[{"id": f"in_{rid}", "type": "message", "role": "user", "content": text}],
        previous_response_id=previous,
    )


def rid(name: str) -> str:
    return f"resp_{name}_{time.monotonic_ns()}"


async def conversation(store: ResponseStore, turns: int, key_id: str = "key_a") -> list[str]:
    """``turns`` responses, each continuing the one before; their ids, oldest first."""
    ids: list[str] = []
    for n in range(turns):
        r = record(rid(f"t{n}"), key_id, previous=ids[-1] if ids else None, text=f"turn {n}")
        await store.put(r)
        ids.append(r.id)
    return ids


async def expiries(store: ResponseStore, ids: list[str]) -> list[int]:
    async with store.db.engine.connect() as conn:
        rows = dict((await conn.execute(sa.select(responses.c.id, responses.c.expires_at))).all())
    return [rows[i] for i in ids]


async def test_only_the_owner_reads_it(store: ResponseStore) -> None:
    r = record(rid("own"))
    await store.put(r)
    got = await store.get(r.id, "key_a")
    assert got is not None
    assert got.response == r.response and got.upstream == "xai" and got.input is None  # not asked for
    full = await store.get(r.id, "key_a", with_input=True)
    assert full is not None and full.input == r.input and full.history is None
    assert await store.get(r.id, "key_b") is None
    assert await store.get("resp_unknown", "key_a") is None


async def test_delete_is_the_owners_alone(store: ResponseStore) -> None:
    r = record(rid("del"))
    await store.put(r)
    assert await store.delete(r.id, "key_b") is False
    assert await store.get(r.id, "key_a") is not None
    assert await store.delete(r.id, "key_a") is True
    assert await store.get(r.id, "key_a") is None
    assert await store.find_items([f"msg_{r.id}"], "key_a") == {}  # its items went with it
    assert await store.delete(r.id, "key_a") is False


async def test_expired_ones_are_unreadable_and_purged(store: ResponseStore) -> None:
    old, fresh = record(rid("old"), expires_in=-1), record(rid("fresh"))
    await store.put(old)
    await store.put(fresh)
    assert await store.get(old.id, "key_a") is None
    assert await store.find_items([f"msg_{old.id}"], "key_a") == {}
    assert await store.purge() >= 1
    async with store.db.engine.connect() as conn:
        left = (await conn.execute(sa.select(response_items.c.response_id))).scalars().all()
    assert old.id not in left and fresh.id in left  # the index rows went with the response
    assert await store.get(fresh.id, "key_a") is not None
    assert await store.purge(now=time.time() + 7200) >= 1  # later, the fresh one expires too
    assert await store.get(fresh.id, "key_a") is None


async def test_a_read_waits_for_a_write_under_way(store: ResponseStore) -> None:
    r = record(rid("bg"))
    store.save(r)  # in the background, as after an answer
    got = await store.get(r.id, "key_a")
    assert got is not None and got.id == r.id
    follow = record(rid("bg2"), previous=r.id)
    store.save(follow)
    assert [link.id for link in await store.chain(follow.id, "key_a", 10)] == [follow.id, r.id]
    await store.drain()


async def test_a_conversation_is_walked_back_link_by_link(store: ResponseStore) -> None:
    ids = await conversation(store, 5)
    links = await store.chain(ids[-1], "key_a", 100)
    assert [link.id for link in links] == ids[::-1]
    assert links[-1].previous_response_id is None  # its start
    assert all(link.size > 0 for link in links)
    turns = await store.turns([link.id for link in links])
    assert [turns[i].input[0]["content"] for i in ids] == [f"turn {n}" for n in range(5)]  # type: ignore[index]
    assert [link.id for link in await store.chain(ids[-1], "key_a", 2)] == [ids[4], ids[3]]  # bounded
    assert await store.chain(ids[-1], "key_b", 100) == []  # another key's: nothing


async def test_a_walk_stops_at_a_link_that_is_gone(store: ResponseStore) -> None:
    ids = await conversation(store, 4)
    await store.delete(ids[1], "key_a")
    links = await store.chain(ids[-1], "key_a", 100)
    assert [link.id for link in links] == [ids[3], ids[2]]
    assert links[-1].previous_response_id == ids[1]  # names the missing one
    foreign = record(rid("foreign"), "key_b")
    await store.put(foreign)
    mine = record(rid("mine"), previous=foreign.id)  # cannot happen through the API; still stops
    await store.put(mine)
    (only,) = await store.chain(mine.id, "key_a", 100)
    assert only.previous_response_id == foreign.id
    stale = record(rid("stale"), expires_in=-1)
    await store.put(stale)
    after = record(rid("after"), previous=stale.id)
    await store.put(after)  # an expired link is not revived by a follow-up
    (last,) = await store.chain(after.id, "key_a", 100)
    assert last.previous_response_id == stale.id


async def test_a_follow_up_keeps_the_links_before_it_alive(store: ResponseStore) -> None:
    first = record(rid("first"), expires_in=60)  # would expire long before its follow-up
    await store.put(first)
    second = record(rid("second"), previous=first.id, expires_in=3600)
    await store.put(second)
    one, two = await expiries(store, [first.id, second.id])
    assert one > two  # past the follow-up, by a tenth of the time to live
    third = record(rid("third"), previous=second.id, expires_in=3600)
    await store.put(third)
    assert await expiries(store, [first.id, second.id]) == [one, third.expires_at + 360]  # only when due
    assert await store.purge(now=two + 1) >= 1  # the third, the newest, goes first
    assert [link.id for link in await store.chain(second.id, "key_a", 10)] == [second.id, first.id]


async def test_the_cap_removes_the_responses_nearest_their_expiry(store: ResponseStore) -> None:
    capped = ResponseStore(store.db, ttl=3600, max_per_key=4)
    lone = [record(rid(f"lone{n}"), "key_cap", expires_in=100 + n) for n in range(3)]
    for r in lone:
        await capped.put(r)
    talk: list[str] = []
    for n in range(3):  # a conversation, continued after the lone ones were stored
        r = record(rid(f"talk{n}"), "key_cap", previous=talk[-1] if talk else None, expires_in=3600)
        await capped.put(r)
        talk.append(r.id)
    async with store.db.engine.connect() as conn:
        kept = set(
            (await conn.execute(sa.select(responses.c.id).where(responses.c.key_id == "key_cap"))).scalars()
        )
    assert kept == {*talk, lone[2].id}  # 4, the two nearest their expiry gone
    assert [link.id for link in await capped.chain(talk[-1], "key_cap", 10)] == talk[::-1]  # whole
    other = record(rid("other"), "key_other")
    await capped.put(other)  # another key's count is its own
    assert await capped.get(other.id, "key_other") is not None
    assert all([await capped.get(i, "key_cap") is not None for i in kept])
    late = record(rid("late"), "key_cap", expires_in=10)  # nearest its expiry, but just stored
    await capped.put(late)
    assert await capped.get(late.id, "key_cap") is not None
    assert await capped.get(lone[2].id, "key_cap") is None


async def test_items_are_found_by_id_for_their_key_only(store: ResponseStore) -> None:
    a, b = record(rid("ia")), record(rid("ib"), "key_b")
    await store.put(a)
    await store.put(b)
    found = await store.find_items([f"msg_{a.id}", f"msg_{b.id}", "msg_nowhere", f"msg_{a.id}"], "key_a")
    assert found == {f"msg_{a.id}": a.response["output"][0]}


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


# -- rows stored whole, before the links (migration 0006) ----------------------------------------

_V4 = sa.table(
    "responses",
    *(sa.column(c) for c in ("id", "key_id", "model", "upstream", "created_at", "expires_at")),
    sa.column("response"),
    sa.column("history"),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A store at migration 0004, as a gateway of that version left it."""
    db = Database(create_async_engine(_async_url(request, tmp_path, "fresh_postgres_url")))
    try:
        await db.migrate("0004_responses")
        yield db
    finally:
        await db.close()


def _whole_row(rid: str, history: list[dict[str, Any]], previous: str | None) -> dict[str, Any]:
    now = int(time.time())
    answer = history[-1]["content"]
    output = [
        {"id": f"rs_{rid}", "type": "reasoning", "summary": []},
        {"id": f"msg_{rid}", "type": "message", "content": [{"type": "output_text", "text": answer}]},
    ]
    response = {"id": rid, "object": "response", "previous_response_id": previous, "output": output}
    return {
        "id": rid,
        "key_id": "key_old",
        "model": "grok-4",
        "upstream": "web",
        "created_at": now,
        "expires_at": now + 3600,
        "response": orjson.dumps(response).decode(),
        "history": orjson.dumps(history).decode(),
    }


async def test_rows_stored_whole_stay_readable_after_the_migration(old_store: Database) -> None:
    one = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}]
    two = [*one, {"role": "user", "content": "again"}, {"role": "assistant", "content": "é" * 10}]
    async with old_store.engine.begin() as conn:
        await conn.execute(
            sa.insert(_V4), [_whole_row("resp_one", one, None), _whole_row("resp_two", two, "resp_one")]
        )
    await old_store.migrate()
    store = ResponseStore(old_store, ttl=3600)
    got = await store.get("resp_two", "key_old", with_input=True)
    assert got is not None and got.history == two and got.input is None
    assert got.response["output"][1]["content"][0]["text"] == "é" * 10
    (link,) = await store.chain("resp_two", "key_old", 10)  # the whole conversation is in it
    assert link.previous_response_id is None and link.size == len(orjson.dumps(two))
    found = await store.find_items(["msg_resp_one", "rs_resp_two"], "key_old")
    assert found["msg_resp_one"]["content"][0]["text"] == "hi there"
    assert found["rs_resp_two"]["type"] == "reasoning"
    follow = record(rid("follow"), "key_old", previous="resp_two")
    await store.put(follow)  # a new link on an old row
    assert [x.id for x in await store.chain(follow.id, "key_old", 10)] == [follow.id, "resp_two"]
    assert await store.delete("resp_one", "key_old") is True
    assert await store.find_items(["msg_resp_one"], "key_old") == {}
