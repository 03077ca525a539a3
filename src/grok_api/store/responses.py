"""Stored Responses API answers: owned by the key that made them, kept for a time to live.

Each row is one finished ``response`` object (what ``GET /v1/responses/{id}`` returns), the
input items of its own turn, and the id of the response it continued (``previous_response_id``):
the conversation a follow-up continues is rebuilt by walking those links back (:meth:`chain`,
one recursive query, then :meth:`turns`, one read of the links' items), so what is stored grows
with each turn's own size, never with the history's. A row stored before migration 0006 holds
its whole conversation in ``history`` instead, and a walk ends there. ``size`` is the bytes of a
row's conversation (its input and output items, images included; a pre-0006 row's history).

A continued conversation stays whole: when a follow-up is stored, the responses before it whose
expiry comes no later than the follow-up's are moved on (to a tenth of the time to live past
it, so that a long conversation's rows are rewritten only now and then). Earlier links thus
never expire before later ones, and the clean-up and the per-key cap (``max_per_key``: past it,
storing one removes the key's other responses nearest their expiry) take a conversation's newest
responses first, never a link that a kept response needs.

Output items are indexed by (key, item id) in ``response_items``, so resolving the
``item_reference`` items a client sends is one lookup.

Every read is by id *and* key: another key's id reads exactly like an unknown one. Writes
happen after the answer, off the request's path (:meth:`ResponseStore.save`); a read of an id
whose write is still under way waits for it, so a client that asks for a follow-up at once
still finds its response on this instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database, purge_every
from .tables import response_items, responses

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (…) list
ITEM_ID_MAX = 128  # the longest item id indexed (the column's width)


@dataclass(slots=True)
class StoredResponse:
    id: str
    key_id: str
    model: str
    upstream: str
    created_at: int
    expires_at: int
    response: dict[str, Any]
    input: list[dict[str, Any]] | None = None  # this turn's input items (None: not read, or pre-0006)
    previous_response_id: str | None = None
    history: list[dict[str, Any]] | None = None  # a pre-0006 row: its whole conversation


@dataclass(slots=True, frozen=True)
class Link:
    """One response of a conversation, as the walk back along ``previous_response_id`` finds it."""

    id: str
    upstream: str
    previous_response_id: str | None
    size: int


class ResponseStore:
    def __init__(self, db: Database, *, ttl: float, max_per_key: int = 0, max_links: int = 100_000) -> None:
        self.db = db
        self.ttl = ttl
        self.max_per_key = max_per_key  # 0: no cap
        self.max_links = max_links  # the longest walk when a follow-up moves its conversation on
        self._pending: dict[str, asyncio.Task[None]] = {}

    def save(self, record: StoredResponse) -> None:
        """Writes ``record`` in the background (reads of its id wait for it)."""
        task = asyncio.ensure_future(self.put(record))
        self._pending[record.id] = task
        task.add_done_callback(lambda t: self._written(record.id, t))

    def _written(self, response_id: str, task: asyncio.Task[None]) -> None:
        if self._pending.get(response_id) is task:
            del self._pending[response_id]
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not store response %s", response_id, exc_info=task.exception())

    async def drain(self) -> None:
        """Waits for the writes under way (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    async def _settled(self, response_id: str) -> None:
        task = self._pending.get(response_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # -- writing -----------------------------------------------------------------------------

    async def put(self, record: StoredResponse) -> None:
        history = orjson.dumps(record.history).decode() if record.history is not None else None
        items = orjson.dumps(record.input).decode() if record.input is not None else None
        output = record.response.get("output") or []
        size = len(orjson.dumps(output)) + len((items or "").encode()) + len((history or "").encode())
        values = {
            "id": record.id,
            "key_id": record.key_id,
            "model": record.model,
            "upstream": record.upstream,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "response": orjson.dumps(record.response).decode(),
            "history": history,
            "previous_response_id": record.previous_response_id,
            "input": items,
            "size": size,
        }
        async with self.db.engine.begin() as conn:
            await _remove(conn, [record.id])
            await conn.execute(responses.insert().values(**values))
            indexed = list(_indexed(record.id, record.key_id, output))
            if indexed:
                await conn.execute(response_items.insert(), indexed)
            if record.previous_response_id:
                await self._extend(conn, record)
        if self.max_per_key:  # apart: the response is stored whatever becomes of this
            try:
                async with self.db.engine.begin() as conn:
                    await self._cap(conn, record)
            except Exception:
                log.warning(
                    "could not hold key %s to its stored responses' cap", record.key_id, exc_info=True
                )

    async def _extend(self, conn: AsyncConnection, record: StoredResponse) -> None:
        """The links before ``record`` that would expire no later than it live on past it."""
        walk = _chain(record.previous_response_id or "", record.key_id, int(time.time()), self.max_links)
        later = record.expires_at + max(1, int(self.ttl / 10))
        await conn.execute(
            responses.update()
            .where(responses.c.id.in_(sa.select(walk.c.id)), responses.c.expires_at <= record.expires_at)
            .values(expires_at=later)
        )

    async def _cap(self, conn: AsyncConnection, record: StoredResponse) -> None:
        """Past ``max_per_key``, the key's responses nearest their expiry are removed (never the
        one just stored)."""
        key_id = record.key_id
        count = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(responses).where(responses.c.key_id == key_id)
            )
        ).scalar_one()
        if count <= self.max_per_key:
            return
        over = (
            await conn.execute(
                sa.select(responses.c.id)
                .where(responses.c.key_id == key_id, responses.c.id != record.id)
                .order_by(responses.c.expires_at.desc(), responses.c.created_at.desc(), responses.c.id.desc())
                .offset(self.max_per_key - 1)
            )
        ).scalars()
        removed = await _remove(conn, list(over))
        log.info("key %s is past its %d stored responses: removed %d", key_id, self.max_per_key, removed)

    def expiry(self, now: float) -> int:
        return int(now + self.ttl)

    # -- reading -----------------------------------------------------------------------------

    async def get(self, response_id: str, key_id: str, *, with_input: bool = False) -> StoredResponse | None:
        """The key's own, unexpired response with this id; ``None`` for anything else. Its input
        items (or a pre-0006 row's history) are read only ``with_input``."""
        await self._settled(response_id)
        columns = [*_META, responses.c.input, responses.c.history] if with_input else _META
        query = sa.select(*columns).where(
            responses.c.id == response_id,
            responses.c.key_id == key_id,
            responses.c.expires_at > int(time.time()),
        )
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _record(row._mapping)

    async def chain(self, response_id: str, key_id: str, limit: int) -> list[Link]:
        """The conversation ending at ``response_id``: the key's unexpired responses from it back
        along ``previous_response_id``, newest first, at most ``limit`` of them. The walk stops at
        a conversation's start (its first response, or a pre-0006 row), or at a link that is
        missing, expired or another key's: the last link's ``previous_response_id`` names it."""
        await self._settled(response_id)
        walk = _chain(response_id, key_id, int(time.time()), limit)
        query = sa.select(walk.c.id, walk.c.upstream, walk.c.previous_response_id, walk.c.size).order_by(
            walk.c.depth
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Link(r.id, r.upstream, r.previous_response_id, int(r.size)) for r in rows]

    async def turns(self, ids: Sequence[str]) -> dict[str, StoredResponse]:
        """The responses with these ids (links of a walk), their input items or history read."""
        out: dict[str, StoredResponse] = {}
        columns = [*_META, responses.c.input, responses.c.history]
        async with self.db.engine.connect() as conn:
            for chunk in _chunks(ids):
                rows = await conn.execute(sa.select(*columns).where(responses.c.id.in_(chunk)))
                for row in rows:
                    out[row.id] = _record(row._mapping)
        return out

    async def find_items(self, item_ids: Iterable[str], key_id: str) -> dict[str, dict[str, Any]]:
        """Output items (message, reasoning, function call …) of the key's own unexpired responses
        by their ids (what ``item_reference``s name); an id found nowhere is left out."""
        if self._pending:  # a response written just now may hold one
            await asyncio.gather(*self._pending.values(), return_exceptions=True)
        now = int(time.time())
        found: dict[str, dict[str, Any]] = {}
        parsed: dict[str, list[Any]] = {}
        async with self.db.engine.connect() as conn:
            for chunk in _chunks(dict.fromkeys(item_ids)):
                query = (
                    sa.select(response_items.c.item_id, response_items.c.position, responses.c.id)
                    .add_columns(responses.c.response)
                    .join_from(response_items, responses, responses.c.id == response_items.c.response_id)
                    .where(
                        response_items.c.key_id == key_id,
                        response_items.c.item_id.in_(chunk),
                        responses.c.key_id == key_id,
                        responses.c.expires_at > now,
                    )
                    .order_by(responses.c.created_at, responses.c.id)  # the newest holder wins
                )
                for item_id, position, rid, body in await conn.execute(query):
                    if rid not in parsed:
                        parsed[rid] = orjson.loads(body).get("output") or []
                    output = parsed[rid]
                    if position < len(output) and output[position].get("id") == item_id:
                        found[item_id] = output[position]
        return found

    # -- removing ----------------------------------------------------------------------------

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Deletes the key's own response; False if it has none with this id."""
        await self._settled(response_id)
        async with self.db.engine.begin() as conn:
            owned = await conn.execute(
                sa.select(responses.c.id).where(responses.c.id == response_id, responses.c.key_id == key_id)
            )
            if owned.first() is None:
                return False
            await _remove(conn, [response_id])
        return True

    async def purge(self, now: float | None = None) -> int:
        """Deletes every expired response; returns how many."""
        cutoff = int(time.time() if now is None else now)
        expired = sa.select(responses.c.id).where(responses.c.expires_at <= cutoff)
        async with self.db.engine.begin() as conn:
            await conn.execute(response_items.delete().where(response_items.c.response_id.in_(expired)))
            result = await conn.execute(responses.delete().where(responses.c.expires_at <= cutoff))
        return int(result.rowcount or 0)

    async def run_cleanup(self, interval: float) -> None:
        """The background task: purges expired responses every ``interval`` seconds."""
        await purge_every(interval, self.purge, "expired stored responses")


_META = (
    responses.c.id,
    responses.c.key_id,
    responses.c.model,
    responses.c.upstream,
    responses.c.created_at,
    responses.c.expires_at,
    responses.c.response,
    responses.c.previous_response_id,
)


def _record(m: Any) -> StoredResponse:
    items, history = m.get("input"), m.get("history")
    return StoredResponse(
        id=m["id"],
        key_id=m["key_id"],
        model=m["model"],
        upstream=m["upstream"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        response=orjson.loads(m["response"]),
        input=orjson.loads(items) if items is not None else None,
        previous_response_id=m["previous_response_id"],
        history=orjson.loads(history) if history is not None else None,
    )


def _chain(start: str, key_id: str, now: int, limit: int) -> sa.CTE:
    """A recursive query: the response ``start`` and those before it, ``depth`` 1, 2, …"""
    link = responses.alias("link")
    first = sa.select(
        link.c.id,
        link.c.upstream,
        link.c.previous_response_id,
        link.c.size,
        sa.literal(1, sa.Integer).label("depth"),
    ).where(link.c.id == start, link.c.key_id == key_id, link.c.expires_at > now)
    walk = first.cte("walk", recursive=True)
    earlier = responses.alias("earlier")
    step = (
        sa.select(
            earlier.c.id, earlier.c.upstream, earlier.c.previous_response_id, earlier.c.size, walk.c.depth + 1
        )
        .join_from(earlier, walk, earlier.c.id == walk.c.previous_response_id)
        .where(earlier.c.key_id == key_id, earlier.c.expires_at > now, walk.c.depth < limit)
    )
    return walk.union_all(step)


def _indexed(response_id: str, key_id: str, output: list[Any]) -> Iterator[dict[str, Any]]:
    for position, item in enumerate(output):
        item_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item_id, str) and 0 < len(item_id) <= ITEM_ID_MAX:
            yield {"response_id": response_id, "position": position, "key_id": key_id, "item_id": item_id}


async def _remove(conn: AsyncConnection, ids: list[str]) -> int:
    """Deletes these responses and their items' index rows; returns how many responses."""
    removed = 0
    for chunk in _chunks(ids):
        await conn.execute(response_items.delete().where(response_items.c.response_id.in_(chunk)))
        result = await conn.execute(responses.delete().where(responses.c.id.in_(chunk)))
        removed += int(result.rowcount or 0)
    return removed


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for i in ids:
        batch.append(i)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
