"""The simulator's side of grok.com's WebSocket chat gateway (``/ws/mgw/``).

It follows the protocol as public clients that track grok.com describe it (see
``upstreams/web_ws.py``): ``session.create`` → ``session.created`` + ``conversation.attached``;
``conversation.item.create`` (or an ``item`` inside ``response.create``, as some clients send)
+ ``response.create`` → the answer as ``response.chunk`` events on their channels,
``response.grok.output`` cards, ``response.search.result`` events, then ``response.done`` with
the response id the next turn names as its parent. It also sends events the adapter must
ignore (notetaker headers, ``conversation.commands.updated``, ``response.created``), counts the
client's ``ping`` events (``web_ws_pings``), and keeps every conversation as a tree of
responses, so ``[turn N]`` proves the earlier turns were kept upstream.

Session checks: the handshake must carry the session cookie and user agent (as the REST side
checks), and ``uid`` must be the signed-in user (:data:`USER_ID`, what ``GET /api/auth/session``
answers) — and match an ``x-userid`` cookie when one is sent. An ``X-Sim`` header on the
handshake asks for a refusal there: ``fault=antibot|cloudflare|expired|usage_limit``.

Directives in the message (``[sim …]``): ``fault=antibot|expired|usage_limit|usage_words|
usage_limit_stream|stream_error|cut|500``, ``think=1``, ``images=N``, ``search=N`` (N web
pages, the first cited inline), ``latency=S`` (seconds before the answer).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from .grok_web import _CLOUDFLARE, _USAGE_LIMIT, _Conversation, _refused, _Response, _said
from .script import Directives, reasoning_words

if TYPE_CHECKING:
    from . import Simulator

USER_ID = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
_SEARCH = re.compile(r"\bsearch=(\d+)")
_EVENT_FAULTS: dict[str, dict[str, Any]] = {
    "antibot": {"code": 7, "message": "Request rejected by anti-bot rules."},
    "expired": {"code": 16, "message": "Unauthenticated."},
    "usage_limit": _USAGE_LIMIT["error"],
    "usage_words": {"message": "You've reached your usage limit for this model. Please try again later."},
    "500": {"code": 13, "message": "Internal error."},
}


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def handshake_refusal(sim: Simulator, request: web.Request) -> web.Response | None:
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    fault = Directives.parse("", request.headers.get("X-Sim")).fault
    if fault == "cloudflare":
        return web.Response(status=403, text=_CLOUDFLARE, content_type="text/html")
    if fault == "antibot":
        return web.json_response(
            {"error": {"code": 7, "message": "Request rejected by anti-bot rules."}}, status=403
        )
    if fault == "expired":
        return web.json_response({"error": {"code": 16, "message": "Unauthenticated."}}, status=401)
    if fault == "usage_limit":
        return web.json_response(_USAGE_LIMIT, status=429, headers={"Retry-After": "120"})
    cookie_uid = request.cookies.get("x-userid")
    if request.query.get("uid") != USER_ID or (cookie_uid and cookie_uid != USER_ID):
        return web.json_response(
            {"error": {"code": 16, "message": "uid is not the signed-in user."}}, status=401
        )
    if not request.headers.get("Origin"):
        return web.json_response({"error": {"code": 7, "message": "Missing Origin."}}, status=403)
    return None


class _Socket:
    """One client connection: its session, the turn being assembled, and the answers."""

    def __init__(
        self,
        sim: Simulator,
        request: web.Request,
        ws: web.WebSocketResponse,
        conversations: dict[str, _Conversation],
        files: set[str],
    ) -> None:
        self.sim, self.request, self.ws = sim, request, ws
        self.conversations, self.files = conversations, files
        self.session_id = ""
        self.thinks = False  # the mode thinks (expert, heavy)
        self.image_count = 0  # images the session lets the model draw in one answer
        self.conversation: _Conversation | None = None
        self.item: dict[str, Any] | None = None

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_str(_dumps({"session_id": self.session_id, "event": event}))

    async def on_event(self, event: dict[str, Any], frame: dict[str, Any]) -> bool:
        """Handles one client event; False once the connection should end."""
        kind = event.get("type")
        if kind == "ping":
            self.sim.count("web_ws_pings")
        elif kind == "session.create":
            self.sim.record("web", "ws:session.create", frame)
            await self.create(event, frame)
        elif kind == "conversation.item.create":
            self.sim.record("web", "ws:conversation.item.create", frame)
            self.item = event
        elif kind == "response.create":
            if isinstance(event.get("item"), dict):  # the single-event shape some clients send
                self.sim.record("web", "ws:conversation.item.create", frame)
                self.item = event
            return await self.respond()
        return True

    async def create(self, event: dict[str, Any], frame: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            await self.send(
                {"type": "error", "error": {"code": "invalid_envelope", "message": "session missing"}}
            )
            return
        x_grok: dict[str, Any] = session.get("x_grok") or {}
        wanted = x_grok.get("conversation_id")
        if wanted:
            self.conversation = self.conversations.get(str(wanted))
            if self.conversation is None or not x_grok.get("load_existing"):
                await self.send(
                    {
                        "type": "error",
                        "error": {"code": "conversation_not_found", "message": "No such conversation."},
                    }
                )
                return
        else:
            self.conversation = _Conversation(str(uuid.uuid4()))
            self.conversations[self.conversation.id] = self.conversation
        self.session_id = self.conversation.id
        self.thinks = session.get("model") in ("expert", "heavy")
        if x_grok.get("enable_image_generation"):
            self.image_count = min(4, int(x_grok.get("image_generation_count") or 0))
        await self.send(
            {"type": "session.created", "client_event_id": event.get("event_id"), "session": session}
        )
        await self.send({"type": "conversation.attached", "conversation": {"id": self.conversation.id}})
        await self.send({"type": "conversation.commands.updated", "commands": []})  # to be ignored

    async def respond(self) -> bool:
        conv, item, self.item = self.conversation, self.item, None
        if conv is None or item is None:
            await self.send({"type": "error", "error": {"code": 3, "message": "No session or no message."}})
            return True
        x_grok = item.get("item", {}).get("x_grok", {}) if isinstance(item.get("item"), dict) else {}
        texts = [c["text"]["text"] for c in x_grok.get("input_chunks", []) if isinstance(c.get("text"), dict)]
        message = "\n".join(str(t) for t in texts)
        attached = [str(f) for f in item.get("file_attachment_ids") or []]
        if any(f not in self.files for f in attached):
            await self.send({"type": "error", "error": {"code": 3, "message": "Unknown file attachment."}})
            return True
        parent = item.get("parent_response_id")
        if parent is None and conv.responses:
            parent = "(missing)"
        if parent is not None and parent not in conv.responses:
            await self.send({"type": "error", "error": {"code": 3, "message": "Unknown parent_response_id."}})
            return True
        depth = conv.responses[parent].depth + 1 if parent is not None else 1
        return await _answer(self, conv, message, parent, depth, attached)


async def _answer(
    sock: _Socket, conv: _Conversation, message: str, parent: str | None, depth: int, attached: list[str]
) -> bool:
    d = Directives.parse(message)
    said = _said(message)
    user_id, reply_id = str(uuid.uuid4()), str(uuid.uuid4())
    conv.responses[user_id] = _Response(parent, depth, said)
    answer = f"[turn {depth}] You said: {said}"
    if attached:
        answer += f" [attached: {len(attached)}]"
    await asyncio.sleep(d.latency if d.latency is not None else sock.sim.config.first_token_latency)
    await sock.send({"type": "response.created", "response": {"id": reply_id, "status": "in_progress"}})
    fault = d.fault
    if fault in _EVENT_FAULTS:
        await sock.send({"type": "error", "error": _EVENT_FAULTS[fault]})
        return True
    if fault == "usage_limit_stream":
        await sock.send(
            {"type": "response.grok.output", "output": {"stream_error": _EVENT_FAULTS["usage_words"]}}
        )
        return True
    await _furniture(sock, said, d, message)
    words = answer.split(" ")
    for i, w in enumerate(words):
        if fault in ("stream_error", "cut") and i == 2:
            if fault == "cut":
                if sock.request.transport is not None:
                    sock.request.transport.close()
                return False
            await sock.send(
                {"type": "response.grok.output", "output": {"stream_error": {"message": "Model failed."}}}
            )
            return True
        await _chunk(sock, w if i == len(words) - 1 else w + " ", "CHANNEL_ASSISTANT_RESPONSE")
        if i == len(words) - 1 and _SEARCH.search(message):
            await sock.send(
                {"type": "response.chunk", "chunk": {"render_citation": {"url": _page(1), "title": "x"}}}
            )
        if sock.sim.config.token_rate > 0:
            await asyncio.sleep(1.0 / sock.sim.config.token_rate)
    asked = message.lower().startswith("generate an image")  # the model draws when asked to
    for _ in range(d.images or (sock.image_count if asked else 0)):
        await _image(sock)
    conv.responses[reply_id] = _Response(user_id, depth, answer)
    await sock.send({"type": "response.output_text.done", "text": answer})
    await sock.send({"type": "response.done", "response": {"id": reply_id, "status": "completed"}})
    return True


async def _chunk(sock: _Socket, text: str, channel: str) -> None:
    await sock.send(
        {
            "type": "response.chunk",
            "chunk": {"metadata": {"step_id": 0}, "text": {"text": text, "channel": channel}},
        }
    )


def _page(i: int) -> str:
    return f"https://example.com/sim/{i}"


async def _furniture(sock: _Socket, said: str, d: Directives, message: str) -> None:
    """Thinking, notetaker headers, search cards and results: everything before the answer."""
    if d.think if d.think is not None else sock.thinks:
        await _chunk(sock, "Thinking about your request", "CHANNEL_ASSISTANT_NOTETAKER_HEADER")
        for w in reasoning_words(said):
            await _chunk(sock, w, "CHANNEL_ANALYSIS")
    m = _SEARCH.search(message)
    if m:
        n = int(m.group(1))
        await sock.send(
            {
                "type": "response.chunk",
                "chunk": {"tool_usage_card": {"web_search": {"args": {"query": said}}}},
            }
        )
        pages = [{"url": _page(i), "title": f"Sim source {i}"} for i in range(1, n + 1)]
        await sock.send(
            {"type": "response.chunk", "chunk": {"tool_result": {"web_search": {"webpages": pages}}}}
        )
        await sock.send(
            {"type": "response.search.result", "result": {"url": _page(1), "title": "Sim source 1"}}
        )


async def _image(sock: _Socket) -> None:
    url = f"users/sim/generated/{secrets.token_hex(4)}/image.jpg"
    for progress in (50, 100):
        data = {
            "id": secrets.token_hex(3),
            "image_chunk": {"imageUrl": url, "progress": progress, "moderated": False},
        }
        await sock.send({"type": "response.grok.output", "output": {"card_attachment": {"jsonData": data}}})


async def gateway(
    sim: Simulator, request: web.Request, conversations: dict[str, _Conversation], files: set[str]
) -> web.StreamResponse:
    sim.count("web_ws_connections")
    refused = handshake_refusal(sim, request)
    if refused is not None:
        return refused
    ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    sock = _Socket(sim, request, ws, conversations, files)
    try:
        await _serve(sock, ws)
    finally:
        sim.count("web_ws_closed")
    return ws


async def _serve(sock: _Socket, ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            frame = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            continue
        event = frame.get("event") if isinstance(frame, dict) else None
        if isinstance(event, dict) and not await sock.on_event(event, frame):
            break
