"""The simulator's side of xAI's Responses API: ``POST /v1/responses`` (stored, continued with
``previous_response_id``), ``GET`` and ``DELETE /v1/responses/{id}``.

It answers as xAI does (recorded streams of xAI's API are public, e.g. in the Vercel AI SDK's
xAI provider fixtures): the published event sequence with ``sequence_number``; reasoning as
``reasoning_summary_text`` deltas in a ``reasoning`` item; a function call *whole* in its
``response.output_item.added`` (xAI does not stream call arguments); ``web_search`` as
``web_search_call`` items and ``url_citation`` annotations; ``x_search`` as
``custom_tool_call`` items (``x_keyword_search``); ``usage.output_tokens`` including the
reasoning tokens. The answer is ``[turn N] You said: <last user text>``, N counting the user
turns of the whole stored conversation, so a test sees that earlier turns were kept here.
A ``function_call_output`` as the last input is answered ``… Tool said: <output>``. Function
calls, ``tool_choice`` and ``text.format`` (json_schema / json_object) are read as
``structured`` says.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .script import Directives, answer_words, count_tokens, reasoning_words
from .structured import BadRequest, as_dict, call_arguments, json_answer, planned_calls
from .xai import _FAULT_BODIES, ALIASES, MODELS, REASONING_MODELS, _check_key, _wait_unless_gone, xai_error

if TYPE_CHECKING:
    from . import Simulator

_SOURCES = (("https://x.ai/news", "xAI news"), ("https://docs.x.ai/developers", "xAI docs"))


def routes(sim: Simulator) -> list[web.RouteDef]:
    stored: dict[str, dict[str, Any]] = {}  # response id → {"turns": [(role, text)], "response": {...}}

    async def create(request: web.Request) -> web.StreamResponse:
        sim.count("xai_requests")
        refused = _check_key(sim, request)
        if refused is not None:
            return refused
        try:
            body = orjson.loads(await request.read())
            model = str(body["model"])
            turns = _turns(body["input"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return xai_error(400, "Client specified an invalid argument", "Malformed request body.")
        sim.record("xai", request.path, body)
        if model not in MODELS and model not in ALIASES:
            return xai_error(404, "Some requested entity was not found", f"The model {model} does not exist.")
        previous = body.get("previous_response_id")
        if previous is not None:
            if previous not in stored:
                return xai_error(
                    404, "Some requested entity was not found", f"Response {previous} not found."
                )
            turns = stored[previous]["turns"] + turns
        said = next((text for role, text in reversed(turns) if role in ("user", "tool")), "")
        d = Directives.parse(said, request.headers.get("X-Sim"))
        if d.fault in _FAULT_BODIES:
            status, code, message = _FAULT_BODIES[d.fault]
            headers = {"Retry-After": str(d.retry_after)} if status == 429 else None
            return xai_error(status, code, message, headers)
        try:
            plan = _Answer(sim, body, turns, d)
        except BadRequest as exc:
            return xai_error(400, "Client specified an invalid argument", str(exc))
        if body.get("store", True) is not False:
            stored[plan.id] = {"turns": [*turns, ("assistant", plan.text())], "response": plan.response()}
        if not body.get("stream"):
            if not await _wait_unless_gone(sim, request, plan.latency):
                return web.Response(status=499)
            return web.json_response(plan.response(), dumps=lambda o: orjson.dumps(o).decode())
        return await _stream(sim, request, plan)

    async def get(request: web.Request) -> web.Response:
        refused = _check_key(sim, request)
        if refused is not None:
            return refused
        found = stored.get(request.match_info["rid"])
        if found is None:
            return xai_error(404, "Some requested entity was not found", "Response not found.")
        return web.json_response(found["response"], dumps=lambda o: orjson.dumps(o).decode())

    async def delete(request: web.Request) -> web.Response:
        refused = _check_key(sim, request)
        if refused is not None:
            return refused
        rid = request.match_info["rid"]
        if stored.pop(rid, None) is None:
            return xai_error(404, "Some requested entity was not found", "Response not found.")
        return web.json_response({"id": rid, "object": "response", "deleted": True})

    return [
        web.post("/v1/responses", create),
        web.get("/v1/responses/{rid}", get),
        web.delete("/v1/responses/{rid}", delete),
    ]


def _turns(value: Any) -> list[tuple[str, str]]:
    """The input as (role, text) turns; a function call's output is a ``tool`` turn."""
    if isinstance(value, str):
        return [("user", value)]
    out: list[tuple[str, str]] = []
    for item in value:
        if item.get("type") == "function_call_output":
            out.append(("tool", f"Tool said: {item['output']}"))
        elif "role" in item:
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if "text" in p)
            out.append((str(item["role"]), str(content or "")))
    return out


class _Answer:
    """One deterministic answer: its items, usage and event stream."""

    def __init__(
        self, sim: Simulator, body: dict[str, Any], turns: list[tuple[str, str]], d: Directives
    ) -> None:
        self.body = body
        self.d = d
        self.model = str(body["model"])
        self.id = str(secrets.token_hex(16)) + "_us-east-1"  # xAI's ids are UUID-like
        self.created = int(time.time())
        self.latency = d.latency if d.latency is not None else sim.config.first_token_latency
        self.rate = d.rate if d.rate is not None else sim.config.token_rate
        said = next((text for role, text in reversed(turns) if role in ("user", "tool")), "")
        user_turns = sum(1 for role, _ in turns if role == "user")
        tools = body.get("tools") or []
        kinds = {t.get("type") for t in tools}
        think = d.think if d.think is not None else self.model in REASONING_MODELS
        self.reasoning = reasoning_words(said) if think else []
        functions = [
            (str(t.get("name", "tool")), t.get("parameters")) for t in tools if t.get("type") == "function"
        ]
        # [sim tool=N] or tool_choice: calls of the function tools in turn (parallel, as xAI makes them)
        answered = bool(turns) and turns[-1][0] == "tool"
        parallel = body.get("parallel_tool_calls") is not False
        planned = planned_calls(functions, body.get("tool_choice"), d.tool, answered, parallel)
        self.calls = [
            _function_call(self.id, name, call_arguments(parameters, said, k), k)
            for k, (name, parameters) in enumerate(planned)
        ]
        self.searches = ["web_search"] if "web_search" in kinds else []
        self.searches += ["x_search"] if "x_search" in kinds else []
        words = [] if self.calls else answer_words(said, user_turns, d.tokens)
        fmt = as_dict(as_dict(body.get("text")).get("format"))
        shaped = json_answer(fmt.get("type"), fmt.get("schema"), said, words)
        if shaped is not None and not self.calls:
            words = shaped
        limit = body.get("max_output_tokens")
        self.incomplete = isinstance(limit, int) and len(words) > limit
        self.words = words[:limit] if self.incomplete else words
        self.input_tokens = sum(3 + count_tokens(text) for _, text in turns)
        self.cached = sum(3 + count_tokens(text) for _, text in turns[:-1])

    def text(self) -> str:
        return "".join(self.words)

    def usage(self) -> dict[str, Any]:
        reasoning = len(self.reasoning)
        output = len(self.words) + reasoning + sum(count_tokens(c["arguments"]) for c in self.calls)
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": self.input_tokens + output,
            "num_sources_used": len(_SOURCES) if self.searches else 0,
            "num_server_side_tools_used": len(self.searches),
        }

    def items(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.reasoning:
            summary = [{"type": "summary_text", "text": "".join(self.reasoning)}]
            out.append(
                {"id": f"rs_{self.id}", "type": "reasoning", "summary": summary, "status": "completed"}
            )
        out += [self._search(kind, i) for i, kind in enumerate(self.searches)]
        if self.calls:
            out += self.calls
        else:
            out.append(self._message(self.text(), "completed"))
        return out

    def _search(self, kind: str, i: int) -> dict[str, Any]:
        if kind == "web_search":
            action = {"type": "search", "query": "", "sources": []}
            return {
                "id": f"ws_{self.id}_call_{i}",
                "type": "web_search_call",
                "status": "completed",
                "action": action,
            }
        query = orjson.dumps({"query": "from:xai", "limit": 10, "mode": "Latest"}).decode()
        return {
            "call_id": f"xs_call_{i}",
            "input": query,
            "name": "x_keyword_search",
            "type": "custom_tool_call",
            "id": f"ctc_{self.id}_xs_call_{i}",
            "status": "completed",
        }

    def _message(self, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "logprobs": [], "annotations": self.annotations()}]
        return {
            "content": content,
            "id": f"msg_{self.id}",
            "role": "assistant",
            "type": "message",
            "status": status,
        }

    def annotations(self) -> list[dict[str, Any]]:
        if not self.searches:
            return []
        end = len(self.text())
        return [
            {"type": "url_citation", "url": url, "title": title, "start_index": 0, "end_index": end}
            for url, title in _SOURCES
        ]

    def response(self, status: str | None = None) -> dict[str, Any]:
        status = status or ("incomplete" if self.incomplete else "completed")
        done = status != "in_progress"
        b = self.body
        out: dict[str, Any] = {
            "created_at": self.created,
            "id": self.id,
            "max_output_tokens": b.get("max_output_tokens"),
            "model": self.model,
            "object": "response",
            "output": self.items() if done else [],
            "parallel_tool_calls": b.get("parallel_tool_calls", True),
            "previous_response_id": b.get("previous_response_id"),
            "reasoning": {"effort": (b.get("reasoning") or {}).get("effort"), "summary": None},
            "temperature": b.get("temperature"),
            "text": b.get("text") or {"format": {"type": "text"}},
            "tool_choice": b.get("tool_choice", "auto"),
            "tools": b.get("tools") or [],
            "top_p": b.get("top_p"),
            "user": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "status": status,
            "store": b.get("store", True),
            "metadata": {},
        }
        if done:
            out["usage"] = self.usage()
        if done and self.searches:
            out["citations"] = [url for url, _ in _SOURCES]
        return out

    def events(self) -> list[dict[str, Any]]:
        """The stream's events in order, without their sequence numbers."""
        ev: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response("in_progress")},
            {"type": "response.in_progress", "response": self.response("in_progress")},
        ]
        index = 0
        if self.reasoning:
            ev += self._reasoning_events(index)
            index += 1
        for i, kind in enumerate(self.searches):
            ev += self._search_events(kind, i, index)
            index += 1
        for call in self.calls:  # xAI sends a call whole: its arguments come with the item
            ev.append({"type": "response.output_item.added", "item": call, "output_index": index})
            ev.append({"type": "response.output_item.done", "item": call, "output_index": index})
            index += 1
        if not self.calls:  # as in items(): calls or a message
            ev += self._message_events(index)
        final = self.response()
        ev.append({"type": f"response.{final['status']}", "response": final})
        return ev

    def _reasoning_events(self, index: int) -> list[dict[str, Any]]:
        rid = f"rs_{self.id}"
        ids = {"item_id": rid, "output_index": index, "summary_index": 0}
        text = "".join(self.reasoning)
        item = {"id": rid, "summary": [], "type": "reasoning", "status": "in_progress"}
        ev: list[dict[str, Any]] = [
            {"type": "response.output_item.added", "item": item, "output_index": index}
        ]
        ev.append(
            {
                "type": "response.reasoning_summary_part.added",
                **ids,
                "part": {"text": "", "type": "summary_text"},
            }
        )
        ev += [{"type": "response.reasoning_summary_text.delta", "delta": w, **ids} for w in self.reasoning]
        ev.append({"type": "response.reasoning_summary_text.done", **ids, "text": text})
        ev.append(
            {
                "type": "response.reasoning_summary_part.done",
                **ids,
                "part": {"text": text, "type": "summary_text"},
            }
        )
        done = {**item, "summary": [{"type": "summary_text", "text": text}], "status": "completed"}
        ev.append({"type": "response.output_item.done", "item": done, "output_index": index})
        return ev

    def _search_events(self, kind: str, i: int, index: int) -> list[dict[str, Any]]:
        item = self._search(kind, i)
        started = {**item, "status": "in_progress"}
        ev: list[dict[str, Any]] = [
            {"type": "response.output_item.added", "item": started, "output_index": index}
        ]
        if kind == "web_search":
            for step in ("in_progress", "searching", "completed"):
                ev.append(
                    {"type": f"response.web_search_call.{step}", "item_id": item["id"], "output_index": index}
                )
        else:
            ev.append(
                {
                    "type": "response.custom_tool_call_input.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "delta": item["input"],
                }
            )
            ev.append(
                {
                    "type": "response.custom_tool_call_input.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "input": item["input"],
                }
            )
        ev.append({"type": "response.output_item.done", "item": item, "output_index": index})
        return ev

    def _message_events(self, index: int) -> list[dict[str, Any]]:
        mid = f"msg_{self.id}"
        ids = {"item_id": mid, "output_index": index, "content_index": 0}
        status = "incomplete" if self.incomplete else "completed"
        added = {"content": [], "id": mid, "role": "assistant", "type": "message", "status": "in_progress"}
        part = {"type": "output_text", "text": "", "logprobs": [], "annotations": []}
        ev: list[dict[str, Any]] = [
            {"type": "response.output_item.added", "item": added, "output_index": index},
            {"type": "response.content_part.added", **ids, "part": part},
        ]
        ev += [{"type": "response.output_text.delta", **ids, "delta": w, "logprobs": []} for w in self.words]
        for n, annotation in enumerate(self.annotations()):
            ev.append(
                {
                    "type": "response.output_text.annotation.added",
                    **ids,
                    "annotation_index": n,
                    "annotation": annotation,
                }
            )
        full = self._message(self.text(), status)
        ev.append(
            {
                "type": "response.output_text.done",
                **ids,
                "text": self.text(),
                "annotations": self.annotations(),
            }
        )
        ev.append({"type": "response.content_part.done", **ids, "part": full["content"][0]})
        ev.append({"type": "response.output_item.done", "item": full, "output_index": index})
        return ev


def _function_call(rid: str, name: str, arguments: str, k: int) -> dict[str, Any]:
    return {
        "call_id": "call_" + secrets.token_hex(6),
        "name": name,
        "arguments": arguments,
        "type": "function_call",
        "id": f"fc_{rid}_{k}",
        "status": "completed",
    }


async def _stream(sim: Simulator, request: web.Request, plan: _Answer) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    frames = [
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps({"sequence_number": n, **e}) + b"\n\n"
        for n, e in enumerate(plan.events())
    ]
    fault = plan.d.fault
    if fault in ("cut", "malformed"):
        frames = frames[: plan.d.after + 2]
    try:
        await asyncio.sleep(plan.latency)
        if plan.rate <= 0:
            await resp.write(b"".join(frames))
        else:
            for frame in frames:
                await resp.write(frame)
                await asyncio.sleep(1.0 / plan.rate)
        if fault == "malformed":
            await resp.write(b"data: {this is not json\n\n")
        elif fault == "cut":
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write_eof()
    except (asyncio.CancelledError, ConnectionResetError):
        sim.count("cancelled")
        raise
    return resp
