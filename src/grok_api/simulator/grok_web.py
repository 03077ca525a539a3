"""The simulator's side of grok.com's web chat: the REST protocol (NDJSON), and the routes of
its other endpoints (the WebSocket gateway in ``grok_ws.py``, session and uploads in
``grok_files.py``).

``POST /rest/app-chat/conversations/new`` starts a conversation; ``POST
/rest/app-chat/conversations/{id}/responses`` continues it from ``parentResponseId``. The
simulator keeps every conversation as a tree of responses, so an answer can say how deep in
its conversation it is: ``[turn N] You said: <message>`` proves the earlier turns were kept
upstream, not resent. Directives in the message (``[sim …]``): ``fault=antibot|cloudflare|
expired|usage_limit|usage_limit_stream|stream_error|cut|500``, ``think=1`` (thinking tokens), ``images=N``; ``fault=usage_limit_stream`` refuses inside a
200 answer (error code 8), as grok.com does for some limits.

A request must carry the session cookie the simulator was given (``sso=…``, default: any
``sso``), and the user agent too when one was given; otherwise it answers as grok.com does
when it refuses a session: 403 ``Request rejected by anti-bot rules``.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .script import Directives, reasoning_words, strip_directives

if TYPE_CHECKING:
    from . import Simulator

_ANTIBOT = {"error": {"code": 7, "message": "Request rejected by anti-bot rules.", "details": []}}
_CLOUDFLARE = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>cf-chl</body></html>"
_USAGE_LIMIT = {
    "error": {"code": 8, "message": "Too many requests: you have reached your usage limit.", "details": []}
}


@dataclass
class _Response:
    parent: str | None
    depth: int
    said: str


@dataclass
class _Conversation:
    id: str
    responses: dict[str, _Response] = field(default_factory=dict)


def _said(message: str) -> str:
    """What the user said last; a folded history ends with its last ``[user]`` turn."""
    return strip_directives(message.rsplit("[user]\n", 1)[-1]) or "(nothing)"


def _asked_images(body: dict[str, Any], message: str) -> int:
    """Images the model draws unasked by a directive: when generation is on and the message asks."""
    if not body.get("enableImageGeneration") or not message.lower().startswith("generate an image"):
        return 0
    return max(1, min(4, int(body.get("imageGenerationCount") or 2)))


def routes(sim: Simulator) -> list[web.RouteDef]:
    """REST chat, the WebSocket chat gateway, the session lookup and uploads, sharing state."""
    from . import grok_files, grok_ws

    conversations: dict[str, _Conversation] = {}
    ws_conversations: dict[str, _Conversation] = {}
    files: set[str] = set()

    async def new(request: web.Request) -> web.StreamResponse:
        return await _answer(sim, request, conversations, None)

    async def responses(request: web.Request) -> web.StreamResponse:
        return await _answer(sim, request, conversations, request.match_info["cid"])

    async def gateway(request: web.Request) -> web.StreamResponse:
        return await grok_ws.gateway(sim, request, ws_conversations, files)

    async def session(request: web.Request) -> web.StreamResponse:
        return await grok_files.auth_session(sim, request)

    async def upload(request: web.Request) -> web.StreamResponse:
        return await grok_files.upload(sim, request, files)

    async def asset(request: web.Request) -> web.StreamResponse:
        return await grok_files.asset(sim, request)

    return [
        web.post("/rest/app-chat/conversations/new", new),
        web.post("/rest/app-chat/conversations/{cid}/responses", responses),
        web.get("/ws/mgw/", gateway),
        web.get("/api/auth/session", session),
        web.post("/http/upload-file-v2/direct", upload),
        web.get("/users/{tail:.*}", asset),
    ]


def _refused(sim: Simulator, request: web.Request) -> web.Response | None:
    cookies = request.headers.get("Cookie", "")
    wanted = sim.config.web_cookie
    has = f"sso={wanted}" in cookies if wanted else "sso=" in cookies
    agent_ok = (
        sim.config.web_user_agent is None or request.headers.get("User-Agent") == sim.config.web_user_agent
    )
    if has and agent_ok:
        return None
    return web.json_response(_ANTIBOT, status=403, dumps=lambda o: orjson.dumps(o).decode())


async def _answer(
    sim: Simulator, request: web.Request, conversations: dict[str, _Conversation], cid: str | None
) -> web.StreamResponse:
    sim.count("web_requests")
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    try:
        body = orjson.loads(await request.read())
        message = str(body["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return web.json_response({"error": {"code": 3, "message": "Bad request body."}}, status=400)
    sim.record("web", request.path, body)
    d = Directives.parse(message)
    early = _early_fault(d.fault)
    if early is not None:
        return early
    if cid is None:
        conv = _Conversation(str(uuid.uuid4()))
        conversations[conv.id] = conv
        depth = 1
    else:
        conv_or_none = conversations.get(cid)
        parent = body.get("parentResponseId")
        if conv_or_none is None:
            return web.json_response({"error": {"code": 5, "message": "Conversation not found."}}, status=404)
        conv = conv_or_none
        if parent not in conv.responses:
            return web.json_response(
                {"error": {"code": 3, "message": "Unknown parentResponseId."}}, status=400
            )
        depth = conv.responses[parent].depth + 1
    return await _stream(sim, request, conv, body, message, depth, new=cid is None)


def _early_fault(fault: str | None) -> web.Response | None:
    if fault == "antibot":
        return web.json_response(_ANTIBOT, status=403)
    if fault == "cloudflare":
        return web.Response(status=403, text=_CLOUDFLARE, content_type="text/html")
    if fault == "expired":
        return web.json_response({"error": {"code": 16, "message": "Unauthenticated."}}, status=401)
    if fault == "usage_limit":
        return web.json_response(_USAGE_LIMIT, status=429, headers={"Retry-After": "120"})
    if fault == "500":
        return web.json_response({"error": {"code": 13, "message": "Internal error."}}, status=500)
    return None


async def _stream(
    sim: Simulator,
    request: web.Request,
    conv: _Conversation,
    body: dict[str, Any],
    message: str,
    depth: int,
    *,
    new: bool,
) -> web.StreamResponse:
    d = Directives.parse(message)
    said = _said(message)
    user_id, reply_id = str(uuid.uuid4()), str(uuid.uuid4())
    conv.responses[user_id] = _Response(body.get("parentResponseId"), depth, said)
    answer = f"[turn {depth}] You said: {said}"
    count = d.images or _asked_images(body, message)
    images = [f"users/sim/generated/{secrets.token_hex(4)}/image.jpg" for _ in range(count)]

    def wrap(obj: dict[str, Any]) -> bytes:
        return orjson.dumps({"result": {"response": obj} if new else obj}) + b"\n"

    lines: list[bytes] = []
    if new:
        lines.append(
            orjson.dumps(
                {"result": {"conversation": {"conversationId": conv.id, "title": "New conversation"}}}
            )
            + b"\n"
        )
    lines.append(wrap({"userResponse": {"responseId": user_id, "message": message, "sender": "human"}}))
    thinking = bool(body.get("isReasoning")) or bool(d.think)
    for w in reasoning_words(said) if thinking else []:
        lines.append(
            wrap(
                {
                    "token": w,
                    "isThinking": True,
                    "isSoftStop": False,
                    "responseId": reply_id,
                    "messageTag": "header",
                }
            )
        )
    words = answer.split(" ")
    for i, w in enumerate(words):
        token = w if i == len(words) - 1 else w + " "
        lines.append(
            wrap(
                {
                    "token": token,
                    "isThinking": False,
                    "isSoftStop": False,
                    "responseId": reply_id,
                    "messageTag": "final",
                }
            )
        )
    cut = len(lines) - 2 if d.fault in ("stream_error", "cut") else None
    final = {
        "responseId": reply_id,
        "message": answer,
        "sender": "assistant",
        "parentResponseId": user_id,
        "generatedImageUrls": images,
    }
    lines.append(wrap({"finalMetadata": {"followUpSuggestions": []}}))
    lines.append(wrap({"modelResponse": final}))
    if new:
        lines.append(orjson.dumps({"result": {"title": {"newTitle": said[:40]}}}) + b"\n")

    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    await asyncio.sleep(sim.config.first_token_latency)
    if d.fault == "usage_limit_stream":  # refused inside a 200 answer, before any token
        await resp.write(wrap({"error": _USAGE_LIMIT["error"]}))
        await resp.write_eof()
        return resp
    for i, line in enumerate(lines):
        if cut is not None and i == cut:
            if d.fault == "stream_error":
                await resp.write(wrap({"error": {"code": 13, "message": "The model failed mid-answer."}}))
                break
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write(line)
        if sim.config.token_rate > 0:
            await asyncio.sleep(1.0 / sim.config.token_rate)
    else:
        conv.responses[reply_id] = _Response(user_id, depth, answer)
    await resp.write_eof()
    return resp
