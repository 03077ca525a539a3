"""Events → OpenAI chat completion chunks (SSE) or one aggregated completion.

This is the only module that knows the OpenAI chunk shapes and the SSE framing. The chunk
envelope (id, created, model) is fixed for a stream, so its bytes are built once and each
delta costs one ``orjson.dumps`` of the delta alone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any

import orjson

from .errors import GatewayError
from .upstreams.base import Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
_CHOICE_TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'
_TEXT_KEY = b'{"content":'
_REASONING_KEY = b'{"reasoning_content":'


def completion_id() -> str:
    """A unique label, not a secret (see ``logs.new_request_id``)."""
    return f"chatcmpl-{random.getrandbits(96):024x}"


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def sse_error(error: GatewayError) -> bytes:
    """An in-band error for a stream that had already begun, then the end marker."""
    return b"data: " + error.json_bytes() + b"\n\n" + DONE


class ChunkEncoder:
    """Encodes the Events of one answer as SSE ``data:`` frames, exactly as OpenAI frames them.

    The streamed :class:`~grok_api.pipeline.Encoder` of chat completions.
    """

    stream = True
    keepalive = KEEPALIVE

    def __init__(self, model: str, *, include_usage: bool, cid: str | None = None) -> None:
        self.id = cid or completion_id()
        self.created = int(time.time())
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self._head = (
            b'data: {"id":"'
            + self.id.encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(self.created).encode()
            + b',"model":'
            + orjson.dumps(model)
        )
        self._delta_head = self._head + b',"choices":[{"index":0,"delta":'
        self._started = False
        self._tool_ids: set[int] = set()

    def _chunk(self, delta: bytes) -> bytes:
        return self._delta_head + delta + _CHOICE_TAIL

    def encode(self, events: Iterable[Event]) -> bytes:
        """The frames for one batch of Events (may be empty bytes).

        Consecutive text (or reasoning) deltas of one batch arrived in one network read, so
        they are sent as one chunk: the client sees the same text at the same moment, and a
        burst of tokens costs one frame instead of hundreds.
        """
        out: list[bytes] = []
        if not self._started:
            self._started = True
            out.append(self._chunk(b'{"role":"assistant","content":""}'))
        run: list[str] = []
        run_key = b""
        for ev in events:
            if isinstance(ev, TextDelta | ReasoningDelta):
                key = _TEXT_KEY if isinstance(ev, TextDelta) else _REASONING_KEY
                if key is not run_key and run:
                    out.append(self._text_chunk(run_key, run))
                    run = []
                run_key = key
                run.append(ev.text)
                continue
            if run:
                out.append(self._text_chunk(run_key, run))
                run = []
            if isinstance(ev, ToolCallDelta):
                out.append(self._chunk(orjson.dumps({"tool_calls": [self._tool_call(ev)]})))
            elif isinstance(ev, Usage):
                self.usage = ev
            elif isinstance(ev, Finish):
                out.append(
                    self._delta_head
                    + b'{},"logprobs":null,"finish_reason":'
                    + orjson.dumps(ev.reason)
                    + b"}]}\n\n"
                )
        if run:
            out.append(self._text_chunk(run_key, run))
        return b"".join(out)

    def _text_chunk(self, key: bytes, run: list[str]) -> bytes:
        text = run[0] if len(run) == 1 else "".join(run)
        return self._delta_head + key + orjson.dumps(text) + b"}" + _CHOICE_TAIL

    def _tool_call(self, ev: ToolCallDelta) -> dict[str, Any]:
        if ev.index in self._tool_ids:
            return {"index": ev.index, "function": {"arguments": ev.arguments}}
        self._tool_ids.add(ev.index)
        return {
            "index": ev.index,
            "id": ev.id,
            "type": "function",
            "function": {"name": ev.name, "arguments": ev.arguments},
        }

    def finish(self) -> bytes:
        """The frames that end a completed stream: the usage chunk if asked for, then [DONE]."""
        out = b""
        if self.include_usage and self.usage is not None:
            out = self._head + b',"choices":[],"usage":' + orjson.dumps(usage_object(self.usage)) + b"}\n\n"
        return out + DONE

    @staticmethod
    def error(exc: GatewayError) -> bytes:
        return sse_error(exc)


class Aggregator:
    """Collects the Events of one answer into a single ``chat.completion`` object.

    The non-streamed :class:`~grok_api.pipeline.Encoder` of chat completions: ``encode`` only
    collects, ``finish`` is the JSON body.
    """

    stream = False
    keepalive = b""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}

    def encode(self, events: Iterable[Event]) -> bytes:
        for ev in events:
            if type(ev) is TextDelta:
                self._text.append(ev.text)
            elif type(ev) is ReasoningDelta:
                self._reasoning.append(ev.text)
            elif type(ev) is ToolCallDelta:
                self._add_tool(ev)
            elif type(ev) is Usage:
                self.usage = ev
            elif type(ev) is Finish:
                self.finish_reason = ev.reason
        return b""

    def finish(self) -> bytes:
        return orjson.dumps(self.result())

    @staticmethod
    def error(exc: GatewayError) -> bytes:
        return exc.json_bytes()

    def _add_tool(self, ev: ToolCallDelta) -> None:
        call = self._tools.setdefault(
            ev.index, {"id": ev.id, "type": "function", "function": {"name": ev.name, "arguments": ""}}
        )
        if ev.id:
            call["id"] = ev.id
        if ev.name:
            call["function"]["name"] = ev.name
        call["function"]["arguments"] += ev.arguments

    def result(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self._text) if (self._text or not self._tools) else None,
            "refusal": None,
        }
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._tools:
            message["tool_calls"] = [self._tools[i] for i in sorted(self._tools)]
        body: dict[str, Any] = {
            "id": completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason or "stop",
                }
            ],
        }
        if self.usage is not None:
            body["usage"] = usage_object(self.usage)
        return body
