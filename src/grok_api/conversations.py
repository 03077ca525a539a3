"""Message history ↔ a grok.com conversation, so that conversations really continue upstream.

OpenAI clients resend the whole history every turn; grok.com keeps the history itself and
wants only the new message plus the response it follows (``parentResponseId``). After each
answer the gateway remembers, per API key and model, the exact history that now exists —
the request's messages plus the answer as the client received it — under a hash of it, with
the conversation id and the answer's response id.

A request whose history *minus its last user message* is a remembered one continues that
conversation with only the new message. Anything else — a first message, an edited history,
a changed system prompt, an unknown or expired history — starts a new conversation with the
prior turns folded into the first message. Because the lookup is by the whole history, two
requests racing to continue one conversation each branch from the response their own history
ends with: the parent they send is always the right one, and each branch is remembered apart.

Stores: in memory (LRU + TTL, one process) or in Redis (any instance continues any
conversation).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


@dataclass(slots=True, frozen=True)
class Handle:
    conversation_id: str
    response_id: str


@dataclass(slots=True, frozen=True)
class Plan:
    """What to send: a new conversation (``handle`` None) or a continuation of ``handle``."""

    message: str
    handle: Handle | None


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _canonical(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Role and text of each message, as the hash sees them; inline thinking is not history."""
    out = []
    for m in messages:
        text = text_of(m.get("content"))
        if m.get("role") == "assistant":
            text = _THINK.sub("", text)
        out.append((str(m.get("role")), text.strip()))
    return out


def history_hash(key_id: str, model: str, messages: list[dict[str, Any]]) -> str:
    blob = orjson.dumps([key_id, model, _canonical(messages)])
    return hashlib.sha256(blob).hexdigest()


def fold(messages: list[dict[str, Any]]) -> str:
    """The whole history as one first message, for a conversation that starts anew."""
    turns = _canonical(messages)
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1]
    parts = [f"[{role}]\n{text}" for role, text in turns[:-1]]
    last_role, last_text = turns[-1]
    intro = "Earlier in this conversation (continue it; answer the last message):"
    return intro + "\n\n" + "\n\n".join(parts) + f"\n\n[{last_role}]\n{last_text}"


class ConversationStore(Protocol):
    async def get(self, digest: str) -> Handle | None: ...

    async def put(self, digest: str, handle: Handle) -> None: ...


class Conversations:
    """Plans each request against the store and remembers each answer."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def plan(self, key_id: str, model: str, messages: list[dict[str, Any]]) -> Plan:
        last = messages[-1] if messages else {}
        if len(messages) > 1 and last.get("role") == "user":
            handle = await self.store.get(history_hash(key_id, model, messages[:-1]))
            if handle is not None:
                return Plan(text_of(last.get("content")), handle)
        return Plan(fold(messages), None)

    async def remember(
        self, key_id: str, model: str, messages: list[dict[str, Any]], answer: str, handle: Handle
    ) -> None:
        history = [*messages, {"role": "assistant", "content": answer}]
        await self.store.put(history_hash(key_id, model, history), handle)


class MemoryConversations:
    """An LRU of history hashes with a time to live, in this process."""

    def __init__(self, *, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, Handle]] = OrderedDict()

    async def get(self, digest: str) -> Handle | None:
        item = self._items.get(digest)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            del self._items[digest]
            return None
        self._items.move_to_end(digest)
        return item[1]

    async def put(self, digest: str, handle: Handle) -> None:
        self._items[digest] = (time.monotonic() + self.ttl, handle)
        self._items.move_to_end(digest)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class RedisConversations:
    """History hashes in Redis, so that any instance can continue any conversation."""

    def __init__(self, client: aioredis.Redis, *, ttl: float) -> None:
        self.client = client
        self.ttl = int(ttl)

    async def get(self, digest: str) -> Handle | None:
        try:
            raw = await self.client.get(f"grok-api:conv:{digest}")
        except (RedisError, OSError):
            return None  # a new conversation is always a correct answer
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Handle(data["c"], data["r"])

    async def put(self, digest: str, handle: Handle) -> None:
        value = orjson.dumps({"c": handle.conversation_id, "r": handle.response_id})
        try:
            await self.client.set(f"grok-api:conv:{digest}", value, ex=self.ttl)
        except (RedisError, OSError):
            return  # the next turn starts a new conversation with the history folded in
