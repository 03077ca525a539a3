"""Events → Anthropic Messages: the streamed events, one ``message`` object, and the error shape.

Streamed, an answer is ``message_start``; then per content block ``content_block_start``,
``content_block_delta`` (``text_delta``, ``thinking_delta`` or ``input_json_delta``) and
``content_block_stop``; then ``message_delta`` (``stop_reason`` and the usage) and
``message_stop``. Each SSE frame carries ``event: <type>`` and the JSON object. While the
upstream is silent, ``ping`` events keep the connection alive. A failure after the stream began
is an ``error`` event. ``message_start`` always comes first (a ping before the first token
brings it forward). Consecutive text (or thinking) deltas of one batch go out as one delta,
as chat completions does.

Thinking (``ReasoningDelta``) becomes ``thinking`` blocks when the request enabled thinking;
otherwise it is not shown, as Anthropic does. Tool calls become ``tool_use`` blocks, one per
call, their arguments streamed as ``input_json_delta``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import orjson

from .errors import GatewayError
from .upstreams.base import Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_DELTA_TAIL = b"}}\n\n"


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def stop_reason(reason: str | None) -> str:
    return _STOP_REASONS.get(reason or "stop", "end_turn")


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 413:
        return "request_too_large"
    if status == 429:
        return "rate_limit_error"
    if status in (503, 529):
        return "overloaded_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def error_object(exc: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(exc.status), "message": exc.message}}


def error_body(exc: GatewayError) -> bytes:
    return orjson.dumps(error_object(exc))


def _event(name: str, obj: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def usage_object(usage: Usage | None, prompt_estimate: int) -> dict[str, int]:
    if usage is None:
        return {"input_tokens": prompt_estimate, "output_tokens": 0}
    out = {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }
    if usage.cached_tokens:
        out["cache_read_input_tokens"] = usage.cached_tokens
    return out


class MessageStreamEncoder:
    """The streamed :class:`~grok_api.pipeline.Encoder` of the Messages API."""

    stream = True

    def __init__(self, model: str, *, thinking: bool, prompt_estimate: int) -> None:
        self.model = model
        self.thinking = thinking
        self.prompt_estimate = prompt_estimate
        self.id = message_id()
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._started = False
        self._index = -1  # the open block's index (-1: none)
        self._kind = ""  # the open block's kind: "text", "thinking" or "tool:<n>"
        self._head = b""  # the open block's delta frame, up to the delta's value
        self._tools: dict[int, int] = {}  # tool call index → block index

    @property
    def keepalive(self) -> bytes:
        """A ``ping``; while the upstream has sent nothing yet, ``message_start`` comes first, as
        Anthropic's streams always begin with it."""
        return PING if self._started else self._start() + PING

    def _start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _open(self, kind: str, block: dict[str, Any], delta_key: str) -> bytes:
        out = self._close()
        self._index += 1
        self._kind = kind
        index = str(self._index).encode()
        self._head = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + index
            + b',"delta":{"type":"'
            + delta_key.encode()
            + b'","'
            + {"text_delta": b"text", "thinking_delta": b"thinking", "input_json_delta": b"partial_json"}[
                delta_key
            ]
            + b'":'
        )
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + _event("content_block_start", start)

    def _close(self) -> bytes:
        if not self._kind:
            return b""
        self._kind = ""
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def encode(self, events: Iterable[Event]) -> bytes:
        out: list[bytes] = [] if self._started else [self._start()]
        run: list[str] = []
        for ev in events:
            kind = type(ev)
            if kind is TextDelta or (kind is ReasoningDelta and self.thinking):
                want = "text" if kind is TextDelta else "thinking"
                if want != self._kind:
                    if run:
                        out.append(self._delta(run))
                        run = []
                    if want == "text":
                        out.append(self._open("text", {"type": "text", "text": ""}, "text_delta"))
                    else:
                        block = {"type": "thinking", "thinking": "", "signature": ""}
                        out.append(self._open("thinking", block, "thinking_delta"))
                run.append(ev.text)  # type: ignore[union-attr]
                continue
            if run:
                out.append(self._delta(run))
                run = []
            if kind is ToolCallDelta:
                out.append(self._tool(ev))  # type: ignore[arg-type]
            elif kind is Usage:
                self.usage = ev  # type: ignore[assignment]
            elif kind is Finish:
                self.finish_reason = ev.reason  # type: ignore[union-attr]
        if run:
            out.append(self._delta(run))
        return b"".join(out)

    def _delta(self, run: list[str]) -> bytes:
        text = run[0] if len(run) == 1 else "".join(run)
        return self._head + orjson.dumps(text) + _DELTA_TAIL

    def _tool(self, ev: ToolCallDelta) -> bytes:
        out = b""
        block = self._tools.get(ev.index)
        if block is None:
            block = self._index + 1
            self._tools[ev.index] = block
            tool = {
                "type": "tool_use",
                "id": ev.id or f"toolu_{secrets.token_hex(8)}",
                "name": ev.name or "",
                "input": {},
            }
            out = self._open(f"tool:{ev.index}", tool, "input_json_delta")
        if not ev.arguments:
            return out
        if self._kind == f"tool:{ev.index}":
            return out + self._head + orjson.dumps(ev.arguments) + _DELTA_TAIL
        delta = {"type": "input_json_delta", "partial_json": ev.arguments}
        return out + _event(
            "content_block_delta", {"type": "content_block_delta", "index": block, "delta": delta}
        )

    def finish(self) -> bytes:
        out = b"" if self._started else self._start()
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None},
            "usage": usage_object(self.usage, self.prompt_estimate),
        }
        return (
            out
            + self._close()
            + _event("message_delta", delta)
            + _event("message_stop", {"type": "message_stop"})
        )

    @staticmethod
    def error(exc: GatewayError) -> bytes:
        return _event("error", error_object(exc))


class MessageAggregator:
    """The non-streamed :class:`~grok_api.pipeline.Encoder`: one Anthropic ``message`` object."""

    stream = False
    keepalive = b""

    def __init__(self, model: str, *, thinking: bool, prompt_estimate: int) -> None:
        self.model = model
        self.thinking = thinking
        self.prompt_estimate = prompt_estimate
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._blocks: list[dict[str, Any]] = []
        self._tools: dict[int, dict[str, Any]] = {}

    def encode(self, events: Iterable[Event]) -> bytes:
        for ev in events:
            if isinstance(ev, TextDelta):
                self._append("text", ev.text)
            elif isinstance(ev, ReasoningDelta):
                if self.thinking:
                    self._append("thinking", ev.text)
            elif isinstance(ev, ToolCallDelta):
                self._tool(ev)
            elif isinstance(ev, Usage):
                self.usage = ev
            elif isinstance(ev, Finish):
                self.finish_reason = ev.reason
        return b""

    def _append(self, kind: str, text: str) -> None:
        last = self._blocks[-1] if self._blocks else None
        if last is None or last["type"] != kind:
            last = {"type": kind, kind: ""}
            if kind == "thinking":
                last["signature"] = ""
            self._blocks.append(last)
        last[kind] += text

    def _tool(self, ev: ToolCallDelta) -> None:
        tool = self._tools.get(ev.index)
        if tool is None:
            tool = {
                "type": "tool_use",
                "id": ev.id or f"toolu_{secrets.token_hex(8)}",
                "name": ev.name or "",
                "args": "",
            }
            self._tools[ev.index] = tool
            self._blocks.append(tool)
        tool["args"] += ev.arguments

    def result(self) -> dict[str, Any]:
        content = []
        for block in self._blocks:
            if block["type"] == "tool_use":
                args = block["args"]
                try:
                    parsed = orjson.loads(args) if args.strip() else {}
                except orjson.JSONDecodeError:
                    parsed = {"_raw_arguments": args}
                content.append(
                    {"type": "tool_use", "id": block["id"], "name": block["name"], "input": parsed}
                )
            else:
                content.append(block)
        return {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason(self.finish_reason),
            "stop_sequence": None,
            "usage": usage_object(self.usage, self.prompt_estimate),
        }

    def finish(self) -> bytes:
        return orjson.dumps(self.result())

    @staticmethod
    def error(exc: GatewayError) -> bytes:
        return error_body(exc)
