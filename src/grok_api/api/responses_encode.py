"""Events → the Responses API: its event stream (SSE) or one ``response`` object.

The streamed shape is OpenAI's published sequence: ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added`` … its content
events … ``response.output_item.done``, and last ``response.completed`` (or
``response.incomplete`` / ``response.failed``). Every event carries a ``sequence_number``
counting up from 0, and its SSE ``event:`` name is its ``type``. Output items:

- ``reasoning`` (summary text deltas: ``response.reasoning_summary_text.delta``),
- ``message`` with one ``output_text`` part (``response.output_text.delta``; citations as
  ``url_citation`` annotations, ``response.output_text.annotation.added``),
- ``function_call`` (``response.function_call_arguments.delta`` / ``.done``),
- tools the upstream ran itself (``web_search_call``, …), as the upstream sent them.

Text deltas of one batch go out as one event (one network read of the upstream, one frame), and
their frame is built from bytes prepared once per item, as the chat encoder does.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from ..errors import GatewayError, RateLimited
from ..upstreams.base import (
    Citation,
    Event,
    Finish,
    ReasoningDelta,
    ResponseId,
    ServerTool,
    TextDelta,
    ToolCallDelta,
    Usage,
)

KEEPALIVE = b": keep-alive\n\n"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def usage_object(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage()
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


class _Item:
    """One output item while it is being produced."""

    __slots__ = ("annotations", "call_id", "id", "index", "kind", "name", "parts", "raw", "text_head")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind
        self.index = index
        self.id = item_id
        self.parts: list[str] = []
        self.annotations: list[dict[str, Any]] = []
        self.call_id = ""
        self.name = ""
        self.raw: dict[str, Any] | None = None
        self.text_head = b""

    def text(self) -> str:
        return "".join(self.parts)

    def shape(self, status: str = "completed") -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        if self.kind == "message":
            return {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "status": status,
                "content": [self.part()] if status == "completed" or self.parts else [],
            }
        if self.kind == "reasoning":
            summary = [{"type": "summary_text", "text": self.text()}] if status == "completed" else []
            return {"id": self.id, "type": "reasoning", "status": status, "summary": summary}
        return {
            "id": self.id,
            "type": "function_call",
            "status": status,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.text() if status == "completed" else "",
        }

    def part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": self.text(), "annotations": self.annotations, "logprobs": []}


class ResponsesEncoder:
    """The Responses API's :class:`~grok_api.pipeline.Encoder`: streamed events when ``stream``,
    otherwise one ``response`` object. ``echo`` holds the request's parameters the response
    object repeats (instructions, tools, temperature, …)."""

    keepalive = KEEPALIVE

    def __init__(
        self, model: str, echo: dict[str, Any], *, stream: bool, response_id: str | None = None
    ) -> None:
        self.stream = stream
        self.model = model
        self.echo = echo
        self.id = response_id or new_id("resp")
        self.created_at = int(time.time())
        self.items: list[_Item] = []
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        self.status = "in_progress"
        self._seq = 0
        self._started = False
        self._open: _Item | None = None  # the open reasoning or message item
        self._calls: dict[int, _Item] = {}  # open function calls by tool index
        self._pending: list[Citation] = []

    # -- the Encoder protocol -------------------------------------------------------------

    def encode(self, batch: Any) -> bytes:
        out: list[bytes] = []
        if not self._started:
            for ev in batch:
                if type(ev) is ResponseId:
                    self.id = ev.id
            self._started = True
            if self.stream:
                out.append(self._event("response.created", {"response": self.response()}))
                out.append(self._event("response.in_progress", {"response": self.response()}))
        run: list[str] = []
        for ev in batch:
            kind = type(ev)
            if kind is TextDelta:
                if self._open is None or self._open.kind != "message":
                    self._flush(run, out)
                    self._begin("message", out)
                run.append(ev.text)
                continue
            self._flush(run, out)
            if kind is ReasoningDelta:
                if self._open is None or self._open.kind != "reasoning":
                    self._begin("reasoning", out)
                run.append(ev.text)
            else:
                self._other(ev, out)
        self._flush(run, out)
        return b"".join(out)

    def finish(self) -> bytes:
        out: list[bytes] = []
        self._close_all(out)
        incomplete = self.finish_reason == "length"
        self.status = "incomplete" if incomplete else "completed"
        body = self.response()
        if not self.stream:
            return orjson.dumps(body)
        out.append(
            self._event("response.incomplete" if incomplete else "response.completed", {"response": body})
        )
        return b"".join(out)

    def error(self, exc: GatewayError) -> bytes:
        if not self.stream:
            return exc.json_bytes()
        out: list[bytes] = []
        self._close_all(out, status="incomplete")
        self.status = "failed"
        code = "rate_limit_exceeded" if isinstance(exc, RateLimited) else "server_error"
        body = self.response()
        body["error"] = {"code": code, "message": exc.message}
        out.append(self._event("response.failed", {"response": body}))
        return b"".join(out)

    # -- the response object ---------------------------------------------------------------

    def response(self) -> dict[str, Any]:
        done = self.status != "in_progress"
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "completed_at": int(time.time()) if self.status == "completed" else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if self.status == "incomplete" else None,
            "model": self.model,
            "output": [item.shape() for item in self.items] if done else [],
            **self.echo,
        }
        if done:
            body["usage"] = usage_object(self.usage)
        return body

    def output_text(self) -> str:
        return "".join(item.text() for item in self.items if item.kind == "message")

    # -- events ------------------------------------------------------------------------------

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        fields = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(fields) + b"\n\n"

    def _flush(self, run: list[str], out: list[bytes]) -> None:
        if not run:
            return
        item = self._open
        assert item is not None
        text = run[0] if len(run) == 1 else "".join(run)
        run.clear()
        item.parts.append(text)
        if not self.stream:
            return
        if item.kind == "message":
            tail = b',"sequence_number":' + str(self._seq).encode() + b"}\n\n"
            self._seq += 1
            out.append(item.text_head + orjson.dumps(text) + tail)
        else:
            out.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    {"item_id": item.id, "output_index": item.index, "summary_index": 0, "delta": text},
                )
            )

    def _begin(self, kind: str, out: list[bytes]) -> _Item:
        self._close_open(out)
        self._close_calls(out)
        item = _Item(kind, len(self.items), new_id("msg" if kind == "message" else "rs"))
        self.items.append(item)
        self._open = item
        if not self.stream:
            if kind == "message":
                self._attach_pending(out)
            return item
        out.append(self._added(item))
        ids = {"item_id": item.id, "output_index": item.index}
        if kind == "message":
            item.text_head = (
                b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":'
                + orjson.dumps(item.id)
                + b',"output_index":'
                + str(item.index).encode()
                + b',"content_index":0,"logprobs":[],"delta":'
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(self._event("response.content_part.added", {**ids, "content_index": 0, "part": part}))
            self._attach_pending(out)
        else:
            part = {"type": "summary_text", "text": ""}
            out.append(
                self._event(
                    "response.reasoning_summary_part.added", {**ids, "summary_index": 0, "part": part}
                )
            )
        return item

    def _added(self, item: _Item) -> bytes:
        return self._event(
            "response.output_item.added", {"output_index": item.index, "item": item.shape("in_progress")}
        )

    def _close_open(self, out: list[bytes], status: str = "completed") -> None:
        item, self._open = self._open, None
        if item is None or not self.stream:
            return
        ids = {"item_id": item.id, "output_index": item.index}
        text = item.text()
        if item.kind == "message":
            out.append(
                self._event(
                    "response.output_text.done", {**ids, "content_index": 0, "text": text, "logprobs": []}
                )
            )
            out.append(
                self._event("response.content_part.done", {**ids, "content_index": 0, "part": item.part()})
            )
        else:
            part = {"type": "summary_text", "text": text}
            out.append(
                self._event("response.reasoning_summary_text.done", {**ids, "summary_index": 0, "text": text})
            )
            out.append(
                self._event("response.reasoning_summary_part.done", {**ids, "summary_index": 0, "part": part})
            )
        out.append(
            self._event("response.output_item.done", {"output_index": item.index, "item": item.shape(status)})
        )

    def _close_calls(self, out: list[bytes], status: str = "completed") -> None:
        calls, self._calls = self._calls, {}
        if not self.stream:
            return
        for item in calls.values():
            ids = {"item_id": item.id, "output_index": item.index}
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    {**ids, "name": item.name, "arguments": item.text()},
                )
            )
            out.append(
                self._event(
                    "response.output_item.done", {"output_index": item.index, "item": item.shape(status)}
                )
            )

    def _close_all(self, out: list[bytes], status: str = "completed") -> None:
        self._close_open(out, status)
        self._close_calls(out, status)

    def _other(self, ev: Event, out: list[bytes]) -> None:
        kind = type(ev)
        if kind is ToolCallDelta:
            self._tool(ev, out)  # type: ignore[arg-type]
        elif kind is Citation:
            self._pending.append(ev)  # type: ignore[arg-type]
            if self._open is not None and self._open.kind == "message":
                self._attach_pending(out)
        elif kind is ServerTool:
            self._close_open(out)
            self._close_calls(out)
            item = _Item("server_tool", len(self.items), str(ev.item.get("id") or new_id("tc")))  # type: ignore[union-attr]
            item.raw = ev.item  # type: ignore[union-attr]
            self.items.append(item)
            if self.stream:
                out.append(
                    self._event("response.output_item.added", {"output_index": item.index, "item": item.raw})
                )
                out.append(
                    self._event("response.output_item.done", {"output_index": item.index, "item": item.raw})
                )
        elif kind is Usage:
            self.usage = ev  # type: ignore[assignment]
        elif kind is Finish:
            self.finish_reason = ev.reason  # type: ignore[union-attr]

    def _tool(self, ev: ToolCallDelta, out: list[bytes]) -> None:
        item = self._calls.get(ev.index)
        if item is None:
            self._close_open(out)
            item = _Item("function_call", len(self.items), new_id("fc"))
            item.call_id = ev.id or new_id("call")
            item.name = ev.name or ""
            self.items.append(item)
            self._calls[ev.index] = item
            if self.stream:
                out.append(self._added(item))
        if not ev.arguments:
            return
        item.parts.append(ev.arguments)
        if self.stream:
            ids = {"item_id": item.id, "output_index": item.index}
            out.append(self._event("response.function_call_arguments.delta", {**ids, "delta": ev.arguments}))

    def _attach_pending(self, out: list[bytes]) -> None:
        item = self._open
        assert item is not None
        for citation in self._pending:
            at = len(item.text())
            annotation = {
                "type": "url_citation",
                "url": citation.url,
                "title": citation.title or citation.url,
                "start_index": at,
                "end_index": at,
            }
            item.annotations.append(annotation)
            if self.stream:
                fields = {
                    "item_id": item.id,
                    "output_index": item.index,
                    "content_index": 0,
                    "annotation_index": len(item.annotations) - 1,
                    "annotation": annotation,
                }
                out.append(self._event("response.output_text.annotation.added", fields))
        self._pending.clear()
