"""The simulator's side of xAI's API: ``/v1/models`` and ``/v1/chat/completions``.

Its catalog is xAI's lineup after the retirement of May 15, 2026 (``grok-4-fast-*``,
``grok-4-1-fast-*``, ``grok-4-0709``, ``grok-code-fast-1``, ``grok-3`` and
``grok-imagine-image-pro`` are gone): ``grok-4.5``, ``grok-4.3``, Grok 4.20 as
``grok-4.20-0309-reasoning`` / ``grok-4.20-0309-non-reasoning`` (listed by those names, also
answering to the aliases ``grok-4.20-reasoning``, ``grok-4.20``, ``grok-4.20-non-reasoning``),
``grok-3-mini``, and the image models (``images.py``). Only ``grok-3-mini`` shows its reasoning
(``reasoning_content``) unasked; ``[sim think=1]`` makes any model think aloud. Function
calls (``[sim tool=N]``, ``tool_choice``) and ``response_format`` follow the request's schemas
(``structured``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .images import IMAGE_MODELS
from .script import (
    Directives,
    answer_words,
    count_tokens,
    last_user_text,
    prompt_tokens,
    reasoning_words,
)
from .structured import BadRequest, as_dict, call_arguments, json_answer, planned_calls

if TYPE_CHECKING:
    from . import Simulator

MODELS = (
    "grok-4.5",
    "grok-4.3",
    "grok-4.20-0309-reasoning",
    "grok-4.20-0309-non-reasoning",
    "grok-3-mini",
)
ALIASES = {
    "grok-4.20-reasoning": "grok-4.20-0309-reasoning",
    "grok-4.20": "grok-4.20-0309-reasoning",
    "grok-4.20-non-reasoning": "grok-4.20-0309-non-reasoning",
}
REASONING_MODELS = frozenset({"grok-3-mini"})

_FAULT_BODIES: dict[str, tuple[int, str, str]] = {
    "400": (400, "Client specified an invalid argument", "The simulator was asked to reject this request."),
    "401": (401, "Unauthenticated", "No or an invalid authentication header was provided."),
    "403": (403, "The caller does not have permission to execute the specified operation", "Forbidden."),
    "429": (429, "Too many requests", "The simulator is rate limiting this request."),
    "500": (500, "Internal error", "The simulator failed on purpose."),
    "503": (503, "Service unavailable", "The simulator is unavailable on purpose."),
}


def xai_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"code": code, "error": message}),
        content_type="application/json",
        headers=headers,
    )


def routes(sim: Simulator) -> list[web.RouteDef]:
    async def models(request: web.Request) -> web.Response:
        created = 1_700_000_000
        ids = (*MODELS, *IMAGE_MODELS)
        data = [{"id": m, "object": "model", "created": created, "owned_by": "xai"} for m in ids]
        return web.json_response({"object": "list", "data": data}, dumps=_dumps)

    async def chat(request: web.Request) -> web.StreamResponse:
        sim.count("xai_requests")
        refused = _check_key(sim, request)
        if refused is not None:
            return refused
        try:
            body = orjson.loads(await request.read())
            messages = body["messages"]
            model = body["model"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return xai_error(400, "Client specified an invalid argument", "Malformed request body.")
        sim.record("xai", request.path, body)
        if not isinstance(messages, list) or not messages:
            return xai_error(400, "Client specified an invalid argument", "messages must not be empty.")
        if model not in MODELS and model not in ALIASES:
            return xai_error(
                404,
                "Some requested entity was not found",
                f"The model {model} does not exist or your team does not have access to it.",
            )
        prompt = last_user_text(messages)
        d = Directives.parse(prompt, request.headers.get("X-Sim"))
        if d.times is not None:
            sim.seen[prompt] += 1
            if sim.seen[prompt] > d.times:
                d.fault = None
        if d.fault in _FAULT_BODIES:
            status, code, message = _FAULT_BODIES[d.fault]
            headers = {"Retry-After": str(d.retry_after)} if status == 429 else None
            return xai_error(status, code, message, headers)
        if d.fault == "hang":
            await sim.hang()
        try:
            plan = _Plan(sim, body, d)
        except BadRequest as exc:
            return xai_error(400, "Client specified an invalid argument", str(exc))
        if not body.get("stream"):
            generation = (len(plan.words) + len(plan.reasoning)) / plan.rate if plan.rate > 0 else 0.0
            if not await _wait_unless_gone(sim, request, plan.latency + generation):
                return web.Response(status=499)
            return web.json_response(plan.completion(), dumps=_dumps)
        return await _stream(sim, request, plan)

    return [web.get("/v1/models", models), web.post("/v1/chat/completions", chat)]


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _check_key(sim: Simulator, request: web.Request) -> web.Response | None:
    if sim.config.xai_api_key is None:
        return None
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if secrets.compare_digest(given.encode(), sim.config.xai_api_key.encode()):
        return None
    masked = f"{given[:2]}***{given[-2:]}" if len(given) > 4 else "***"
    return xai_error(
        400,
        "Client specified an invalid argument",
        f"Incorrect API key provided: {masked}. You can obtain an API key from https://console.x.ai.",
    )


class _Plan:
    """One deterministic answer: its tokens, reasoning, tool call and usage."""

    def __init__(self, sim: Simulator, body: dict[str, Any], d: Directives) -> None:
        self.model: str = body["model"]
        messages = body["messages"]
        prompt = last_user_text(messages)
        turn = sum(1 for m in messages if m.get("role") == "user")
        self.d = d
        self.id = "sim-" + secrets.token_hex(8)
        self.created = int(time.time())
        self.latency = d.latency if d.latency is not None else sim.config.first_token_latency
        self.rate = d.rate if d.rate is not None else sim.config.token_rate
        think = d.think if d.think is not None else self.model in REASONING_MODELS
        self.reasoning = reasoning_words(prompt) if think else []
        answered = messages[-1].get("role") == "tool"  # a tool's result came back: answer it
        self.tools = _tool_calls(body, prompt, d.tool, answered)
        words = answer_words(prompt, turn, d.tokens)
        fmt = as_dict(body.get("response_format"))
        shaped = json_answer(fmt.get("type"), as_dict(fmt.get("json_schema")).get("schema"), prompt, words)
        self.words = [] if self.tools else words if shaped is None else shaped
        cap = body.get("max_completion_tokens") or body.get("max_tokens")  # honoured, as xAI does
        self.cut = isinstance(cap, int) and 0 <= cap < len(self.words)
        if self.cut:
            self.words = self.words[:cap]
        self.prompt_tokens = prompt_tokens(messages)
        history = messages[:-1]
        self.cached_tokens = prompt_tokens(history) if len(messages) > 1 else 0
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tools else "length" if self.cut else "stop"

    def usage(self) -> dict[str, Any]:
        completion = len(self.words) + sum(count_tokens(t["function"]["arguments"]) for t in self.tools)
        reasoning = len(self.reasoning)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion + reasoning,
            "prompt_tokens_details": {"text_tokens": self.prompt_tokens, "cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.words), "refusal": None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tools:
            message["tool_calls"] = self.tools
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage(),
            "system_fingerprint": "fp_sim",
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """One chunk as xAI writes it: ``finish_reason`` only on the last, role on the first."""
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if finish is not None:
            choice["finish_reason"] = finish
        obj = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "system_fingerprint": "fp_sim",
        }
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def frames(self) -> list[bytes]:
        """Every frame of the stream but the trailing usage chunk and ``[DONE]``."""
        deltas: list[dict[str, Any]] = [{"reasoning_content": w} for w in self.reasoning]
        deltas += [{"content": w} for w in self.words]
        deltas += [{"tool_calls": [{"index": i, **tool}]} for i, tool in enumerate(self.tools)]
        if not deltas:
            deltas.append({"content": ""})
        deltas[0] = {"role": "assistant", **deltas[0]}
        frames = [self.chunk(delta) for delta in deltas]
        frames.append(self.chunk({}, self.finish_reason))
        return frames

    def tail(self) -> bytes:
        out = b""
        if self.include_usage:
            obj = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage(),
                "system_fingerprint": "fp_sim",
            }
            out = b"data: " + orjson.dumps(obj) + b"\n\n"
        return out + b"data: [DONE]\n\n"


def _tool_calls(body: dict[str, Any], prompt: str, asked: int, answered: bool) -> list[dict[str, Any]]:
    """The calls to answer with (``structured.planned_calls``), as xAI writes them."""
    functions = [
        (str(f.get("name", "tool")), f.get("parameters"))
        for f in (as_dict(t.get("function")) for t in body.get("tools") or () if isinstance(t, dict))
    ]
    parallel = body.get("parallel_tool_calls") is not False
    planned = planned_calls(functions, body.get("tool_choice"), asked, answered, parallel)
    return [
        {
            "id": "call_" + secrets.token_hex(6),
            "type": "function",
            "function": {"name": name, "arguments": call_arguments(parameters, prompt, k)},
        }
        for k, (name, parameters) in enumerate(planned)
    ]


async def _wait_unless_gone(sim: Simulator, request: web.Request, seconds: float) -> bool:
    """Sleeps ``seconds``, watching the connection; False (and counted) if the client left."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            sim.count("cancelled")
            return False
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, 0.05))


async def _paced(frames: list[bytes], rate: float) -> AsyncIterator[bytes]:
    if rate <= 0:  # as fast as possible, in writes of 256 frames: a client that leaves stops it
        for start in range(0, len(frames), 256):
            yield b"".join(frames[start : start + 256])
            await asyncio.sleep(0)
        return
    for frame in frames:
        yield frame
        await asyncio.sleep(1.0 / rate)


async def _stream(sim: Simulator, request: web.Request, plan: _Plan) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    frames = plan.frames()
    fault = plan.d.fault
    if fault in ("cut", "stall", "malformed"):
        frames = frames[: plan.d.after]
    try:
        await asyncio.sleep(plan.latency)
        async for data in _paced(frames, plan.rate):
            await resp.write(data)
        if fault == "malformed":
            await resp.write(b"data: {this is not json\n\n")
        elif fault == "stall":
            await sim.hang()
        elif fault == "cut":
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write(plan.tail())
        await resp.write_eof()
    except (asyncio.CancelledError, ConnectionResetError):
        sim.count("cancelled")
        raise
    return resp
