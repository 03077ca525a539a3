"""The conversation a ``previous_response_id`` continues: walked back link by link in the store,
bounded as a chat request's history is, and rebuilt as chat messages.

The walk reads at most ``GROK_API_MAX_MESSAGES`` + 1 links (each adds one message at least, its
answer), and before any item is read the links' stored bytes, images included, with the new
input's are held to ``GROK_API_MAX_BODY_BYTES`` (what a chat client resending the conversation
could send); the rebuilt messages are then held to the message and text bounds by the caller.
A link that is missing, expired or another key's ends the walk with the 404 of an unknown
``previous_response_id``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InvalidRequest, NotFound
from ..store.responses import Link, ResponseStore
from .responses_input import to_messages
from .schemas import Bounds

LATE_WRITE_GRACE = 0.1  # seconds a follow-up waits for its previous response to be stored elsewhere


class SizeBounds(Bounds, Protocol):
    max_body_bytes: int


@dataclass(slots=True)
class Earlier:
    """The conversation before a turn: its chat messages, and where its last response was made."""

    messages: list[dict[str, Any]]
    upstream: str


async def earlier(
    store: ResponseStore, key_id: str, previous_id: str, bounds: SizeBounds, new_bytes: int
) -> Earlier:
    """The key's conversation ending at ``previous_id``; ``new_bytes`` is the size of the turn's
    own input items, counted with the stored ones."""
    links = await store.chain(previous_id, key_id, bounds.max_messages + 1)
    if not links:
        # written just now by another worker, perhaps: its write may still be under way
        await asyncio.sleep(LATE_WRITE_GRACE)
        links = await store.chain(previous_id, key_id, bounds.max_messages + 1)
    if not links:
        raise _not_found(f"Previous response with id '{previous_id}' not found.")
    _check_links(links, previous_id, bounds, new_bytes)
    turns = await store.turns([link.id for link in links])
    messages: list[dict[str, Any]] = []
    for link in reversed(links):
        turn = turns.get(link.id)
        if turn is None:  # deleted since the walk
            raise _broken(previous_id, link.id)
        if turn.history is not None:  # a row from before links: the whole conversation so far
            messages.extend(turn.history)
        else:
            messages.extend(to_messages(turn.input or []))
            messages.append(answer_message(turn.response.get("output") or []))
    return Earlier(messages, links[0].upstream)


def _check_links(links: list[Link], previous_id: str, bounds: SizeBounds, new_bytes: int) -> None:
    if len(links) > bounds.max_messages:
        raise InvalidRequest(
            f"The conversation continued by previous_response_id holds more than {bounds.max_messages} "
            "messages: start a new one.",
            param="previous_response_id",
            code="too_many_messages",
        )
    gone = links[-1].previous_response_id
    if gone is not None:
        raise _broken(previous_id, gone)
    size = sum(link.size for link in links) + new_bytes
    if size > bounds.max_body_bytes:
        raise InvalidRequest(
            f"The conversation continued by previous_response_id holds {size} bytes with this input "
            f"(images included; at most {bounds.max_body_bytes}, as a request body): start a new one.",
            param="previous_response_id",
            code="conversation_too_large",
        )


def answer_message(output: list[dict[str, Any]]) -> dict[str, Any]:
    """A response's output as the assistant message of a chat history: its text, and its
    function calls (reasoning and the items of tools the upstream ran are not history)."""
    text = "".join(
        str(part.get("text", ""))
        for item in output
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    )
    answer: dict[str, Any] = {"role": "assistant", "content": text}
    calls = [
        {"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}
        for i in output
        if i.get("type") == "function_call" and "call_id" in i
    ]
    if calls:
        answer["tool_calls"] = calls
    return answer


def _not_found(message: str) -> NotFound:
    return NotFound(message, param="previous_response_id", code="previous_response_not_found")


def _broken(previous_id: str, gone: str) -> NotFound:
    return _not_found(
        f"Previous response with id '{previous_id}' cannot be continued: response '{gone}' of its "
        "conversation was deleted or has expired."
    )
