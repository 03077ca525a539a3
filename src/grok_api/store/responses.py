"""Stored Responses API answers: owned by the key that made them, kept for a time to live.

Each row is one finished ``response`` object (what ``GET /v1/responses/{id}`` returns) and the
conversation it ends (``history``: the turns as chat messages, the answer last), so that a
follow-up by ``previous_response_id`` can be rebuilt for an upstream that keeps no state.

Every read is by id *and* key: another key's id reads exactly like an unknown one. Writes
happen after the answer, off the request's path (:meth:`ResponseStore.save`); a read of an id
whose write is still under way waits for it, so a client that asks for a follow-up at once
still finds its response on this instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from .db import Database, purge_every
from .tables import responses

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StoredResponse:
    id: str
    key_id: str
    model: str
    upstream: str
    created_at: int
    expires_at: int
    response: dict[str, Any]
    history: list[dict[str, Any]]


class ResponseStore:
    def __init__(self, db: Database, *, ttl: float) -> None:
        self.db = db
        self.ttl = ttl
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

    async def put(self, record: StoredResponse) -> None:
        values = {
            "id": record.id,
            "key_id": record.key_id,
            "model": record.model,
            "upstream": record.upstream,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "response": orjson.dumps(record.response).decode(),
            "history": orjson.dumps(record.history).decode(),
        }
        async with self.db.engine.begin() as conn:
            await conn.execute(responses.delete().where(responses.c.id == record.id))
            await conn.execute(responses.insert().values(**values))

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The key's own, unexpired response with this id; ``None`` for anything else."""
        await self._settled(response_id)
        query = responses.select().where(
            responses.c.id == response_id,
            responses.c.key_id == key_id,
            responses.c.expires_at > int(time.time()),
        )
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        m = row._mapping
        return StoredResponse(
            id=m["id"],
            key_id=m["key_id"],
            model=m["model"],
            upstream=m["upstream"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            response=orjson.loads(m["response"]),
            history=orjson.loads(m["history"]),
        )

    async def find_item(self, item_id: str, key_id: str) -> dict[str, Any] | None:
        """An output item (message, reasoning, function call) of one of the key's own unexpired
        responses, by the item's id (what an ``item_reference`` names); ``None`` otherwise."""
        if self._pending:  # a response written just now may hold it
            await asyncio.gather(*self._pending.values(), return_exceptions=True)
        needle = orjson.dumps({"id": item_id}).decode()[1:-1]  # "id":"…", as the row stores it
        query = (
            responses.select()
            .where(
                responses.c.key_id == key_id,
                responses.c.expires_at > int(time.time()),
                responses.c.response.contains(needle, autoescape=True),
            )
            .order_by(responses.c.created_at.desc())
            .limit(1)
        )
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        output = orjson.loads(row._mapping["response"]).get("output") or ()
        return next((item for item in output if item.get("id") == item_id), None)

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Deletes the key's own response; False if it has none with this id."""
        await self._settled(response_id)
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                responses.delete().where(responses.c.id == response_id, responses.c.key_id == key_id)
            )
        return bool(result.rowcount)

    async def purge(self, now: float | None = None) -> int:
        """Deletes every expired response; returns how many."""
        cutoff = int(time.time() if now is None else now)
        async with self.db.engine.begin() as conn:
            result = await conn.execute(responses.delete().where(responses.c.expires_at <= cutoff))
        return int(result.rowcount or 0)

    async def run_cleanup(self, interval: float) -> None:
        """The background task: purges expired responses every ``interval`` seconds."""
        await purge_every(interval, self.purge, "expired stored responses")

    def expiry(self, now: float) -> int:
        return int(now + self.ttl)
