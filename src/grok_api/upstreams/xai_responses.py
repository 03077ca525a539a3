"""xAI's own ``/v1/responses`` event stream → Events.

xAI streams the Responses API's published events (``response.created`` … ``response.completed``,
each a ``data:`` line with its ``type``), with a few ways of its own that are read here as xAI
sends them:

- function calls arrive whole: the ``function_call`` item in ``response.output_item.added``
  already carries its ``arguments`` (``response.function_call_arguments.delta`` is read too,
  should it come, and ``output_item.done`` supplies whatever was not seen yet);
- the tools xAI runs itself (``web_search``, ``x_search``, ``code_execution``) appear as
  ``web_search_call`` / ``x_search_call`` / ``code_interpreter_call`` / ``custom_tool_call``
  items; each finished one becomes a ``ServerTool`` Event with the item as sent;
- reasoning comes as ``response.reasoning_summary_text.delta`` (or ``reasoning_text``);
- sources come as ``url_citation`` annotations (``response.output_text.annotation.added``, or
  on the finished text part); each URL becomes one ``Citation``;
- ``usage.output_tokens`` already includes the reasoning tokens (OpenAI's meaning).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import GatewayError, UpstreamError
from .base import (
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
from .sse import SSEDecoder

SERVER_TOOL_ITEMS = frozenset(
    {
        "web_search_call",
        "x_search_call",
        "code_interpreter_call",
        "code_execution_call",
        "custom_tool_call",
        "file_search_call",
        "mcp_call",
        "view_image_call",
        "view_x_video_call",
    }
)
_REASONING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_FINISHED = {"response.completed": "stop", "response.incomplete": "length", "response.done": "stop"}


class ResponsesDecoder(SSEDecoder):
    """Turns the ``data:`` lines of one xAI Responses stream into Events."""

    __slots__ = ("_calls", "_cited")

    what = "a Responses event"

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._calls: dict[str, tuple[int, str]] = {}  # item id → (tool index, arguments sent)
        self._cited: set[str] = set()

    def _feed(self, lines: list[bytes], out: list[Event]) -> None:
        # The hot loop of every Responses stream: text deltas take the shortest way through.
        # Every line is parsed whole: exact byte-level shortcuts for the delta lines (a template
        # learned from the first one, a regex) were measured slower than orjson's full parse.
        append = out.append
        loads = orjson.loads
        for line in lines:
            if not line.startswith(b"data:") or self.done:
                continue  # blank separators, ``event:`` lines
            payload = line[5:]
            try:
                event = loads(payload)
            except orjson.JSONDecodeError:
                if payload.strip() == b"[DONE]":
                    self.done = True
                    return
                if not payload.strip():
                    continue
                raise self.malformed(payload) from None
            if event.get("type") == "response.output_text.delta":
                append(TextDelta(event["delta"]))
            else:
                self._event(event, out)

    def _event(self, event: dict[str, Any], out: list[Event]) -> None:
        kind = event.get("type")
        if kind in _REASONING:
            out.append(ReasoningDelta(event["delta"]))
        elif kind == "response.function_call_arguments.delta":
            self._arguments(event.get("item_id", ""), event["delta"], out)
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._item(event["item"], out, done=kind.endswith("done"))
        elif kind == "response.output_text.annotation.added":
            self._cite(event.get("annotation"), out)
        elif kind == "response.output_text.done":
            for annotation in event.get("annotations") or ():
                self._cite(annotation, out)
        elif kind == "response.created":
            if event.get("response", {}).get("id"):
                out.append(ResponseId(str(event["response"]["id"])))
        elif kind in _FINISHED:
            self._finish(event.get("response") or {}, _FINISHED[kind], out)
        elif kind in ("response.failed", "error"):
            raise _failure(event, self.upstream)

    def _item(self, item: dict[str, Any], out: list[Event], *, done: bool) -> None:
        kind = item.get("type")
        if kind == "function_call":
            item_id = str(item.get("id") or item.get("call_id") or "")
            if item_id not in self._calls:
                self._calls[item_id] = (len(self._calls), "")
                index = self._calls[item_id][0]
                out.append(ToolCallDelta(index, id=item.get("call_id") or item_id, name=item.get("name")))
            self._arguments(item_id, None, out, whole=item.get("arguments") or "")
        elif done and kind in SERVER_TOOL_ITEMS:
            out.append(ServerTool(item))
        elif done and kind == "message":
            for part in item.get("content") or ():
                for annotation in part.get("annotations") or ():
                    self._cite(annotation, out)

    def _arguments(self, item_id: str, delta: str | None, out: list[Event], whole: str = "") -> None:
        """Passes on what is new of a call's arguments, whether given as a delta or whole."""
        known = self._calls.get(item_id)
        if known is None:
            return
        index, sent = known
        if delta is None:
            if not whole.startswith(sent) or len(whole) == len(sent):
                return
            delta = whole[len(sent) :]
        if delta:
            self._calls[item_id] = (index, sent + delta)
            out.append(ToolCallDelta(index, arguments=delta))

    def _cite(self, annotation: Any, out: list[Event]) -> None:
        if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
            return
        url = annotation.get("url")
        if isinstance(url, str) and url and url not in self._cited:
            self._cited.add(url)
            title = annotation.get("title")
            out.append(Citation(url, title if isinstance(title, str) else ""))

    def _finish(self, response: dict[str, Any], reason: str, out: list[Event]) -> None:
        for item in response.get("output") or ():
            if isinstance(item, dict) and item.get("type") == "message":
                self._item(item, out, done=True)
        usage = response.get("usage")
        if isinstance(usage, dict):
            out.append(usage_of(usage))
        if reason == "stop" and self._calls:
            reason = "tool_calls"
        out.append(Finish(reason))
        self.done = True


def usage_of(u: dict[str, Any]) -> Usage:
    """A Responses ``usage`` object; its ``output_tokens`` already include the reasoning."""
    inp = int(u.get("input_tokens") or 0)
    output = int(u.get("output_tokens") or 0)
    return Usage(
        prompt_tokens=inp,
        completion_tokens=output,
        reasoning_tokens=int((u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
        cached_tokens=int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0),
    )


def _failure(event: dict[str, Any], upstream: str) -> GatewayError:
    err = (event.get("response") or {}).get("error") or event.get("error") or event
    message = err.get("message") if isinstance(err, dict) else str(err)
    return UpstreamError(f"{upstream} failed the response: {message or 'no reason given'}")
