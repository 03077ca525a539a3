"""One turn over grok.com's chat gateway (``wss://grok.com/ws/mgw/?uid=<user id>``).

The socket is opened with the user's ``Cookie``, ``User-Agent`` and ``Origin``; then, per turn:

1. → ``session.create`` (``session.model`` is the mode; ``session.x_grok`` the options: a new
   conversation is ``is_temporary`` / ``disable_memory`` when ``GROK_API_WEB_TEMPORARY`` is on;
   a continuation names ``x_grok.conversation_id`` with ``load_existing`` and the top-level
   ``session_id``);
2. ← ``session.created`` and ``conversation.attached``;
3. → ``conversation.item.create`` (the user message as ``x_grok.input_chunks``: file mentions,
   then the text; ``parent_response_id`` when continuing; ``file_attachment_ids``) and
   ``response.create``;
4. ← the answer (``web_ws_decode.py``) until ``response.done``.

A ``ping`` event goes out whenever ``heartbeat`` seconds passed since the last frame sent, so a
slow answer keeps its socket. Public clients disagree on details (some send the item inside
``response.create``, some wait for ``conversation.commands.updated``); this follows the
majority, and the decoder ignores what it does not know.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from ..conversations import Handle
from ..errors import GatewayError, UpstreamError, UpstreamTimeout
from .base import Event
from .web_answer import cloudflare_error, error_from
from .web_transport import HandshakeRefused, Transport, WebSocket
from .web_ws_decode import GatewayDecoder

GATEWAY_PATH = "/ws/mgw/"


@dataclass(slots=True, frozen=True)
class Turn:
    mode: str
    message: str
    handle: Handle | None
    temporary: bool = True
    image_count: int = 2
    attachments: list[str] = field(default_factory=list)


def gateway_url(base_url: str, user_id: str) -> tuple[str, str]:
    """The gateway's URL and the ``Origin`` to send with it."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    origin = f"{parts.scheme}://{parts.netloc}"
    return f"{scheme}://{parts.netloc}{GATEWAY_PATH}?uid={quote(user_id, safe='')}", origin


def session_create(turn: Turn, event_id: str) -> dict[str, Any]:
    x_grok: dict[str, Any] = {
        "protocol_capabilities": ["conversation_attached", "custom_methods_v1"],
        "use_chunk": True,
        "enable_side_by_side": True,
        "force_side_by_side": False,
        "enable_image_generation": turn.image_count > 0,
        "image_generation_count": turn.image_count,
        "disable_text_follow_ups": True,
        "disable_artifact": True,
        "force_concise": False,
    }
    frame: dict[str, Any] = {}
    if turn.handle is None:
        x_grok.update(keep_context=False, is_temporary=turn.temporary, disable_memory=turn.temporary)
    else:
        x_grok.update(conversation_id=turn.handle.conversation_id, load_existing=True, needs_history=False)
        frame["session_id"] = turn.handle.conversation_id
    frame["event"] = {
        "type": "session.create",
        "event_id": event_id,
        "session": {"model": turn.mode, "x_grok": x_grok},
    }
    return frame


def turn_events(turn: Turn, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    chunks: list[dict[str, Any]] = [
        {"mention": {"target": {"file_mention": {"file_id": f}}}} for f in turn.attachments
    ]
    chunks.append({"text": {"text": turn.message}})
    item: dict[str, Any] = {
        "type": "message",
        "role": "user",
        "x_grok": {"client_message_id": str(uuid.uuid4()), "input_chunks": chunks},
    }
    event: dict[str, Any] = {"type": "conversation.item.create", "event_id": f"evt_msg_{uuid.uuid4()}"}
    event["item"] = item
    if turn.attachments:
        item["file_attachment_ids"] = event["file_attachment_ids"] = list(turn.attachments)
    if turn.handle is not None:
        event["parent_response_id"] = turn.handle.response_id
    create = {"type": "response.create", "event_id": f"evt_resp_{uuid.uuid4()}"}
    return {"session_id": session_id, "event": event}, {"session_id": session_id, "event": create}


async def open_socket(transport: Transport, url: str, headers: Mapping[str, str]) -> WebSocket:
    try:
        return await transport.ws(url, headers)
    except HandshakeRefused as exc:
        raise handshake_error(exc) from None


def handshake_error(exc: HandshakeRefused) -> GatewayError:
    if "html" in exc.content_type:
        return cloudflare_error(exc.status)
    what = {403: "Request rejected by anti-bot rules", 401: "not signed in"}.get(exc.status, "refused")
    return error_from(exc.status, {"message": f"the chat gateway handshake was refused ({what})"})


def _dumps(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


async def run_turn(
    socket: WebSocket,
    turn: Turn,
    decoder: GatewayDecoder,
    *,
    heartbeat: float,
    read_timeout: float,
) -> AsyncIterator[list[Event]]:
    """Drives one turn on an open socket; yields the answer's Events, one batch per frame."""
    await socket.send(_dumps(session_create(turn, decoder.session_event_id)))
    sent_turn = False
    last_sent = last_frame = time.monotonic()
    while not decoder.done:
        now = time.monotonic()
        wait = max(0.0, min(last_sent + heartbeat, last_frame + read_timeout) - now)
        try:
            frame = await socket.receive(wait)
        except TimeoutError:
            frame = b""
        now = time.monotonic()
        if frame is None:
            raise UpstreamError("grok.com closed the chat gateway connection before the answer was complete")
        if now - last_sent >= heartbeat:
            await socket.send(_dumps({"event": {"type": "ping", "event_id": f"evt_hb_{int(now * 1000)}"}}))
            last_sent = now
        if not frame:
            if now - last_frame >= read_timeout:
                raise UpstreamTimeout("grok.com's chat gateway sent nothing in time")
            continue
        last_frame = now
        events = decoder.feed(frame)
        if not sent_turn and decoder.ready:
            sent_turn = True
            session_id = decoder.session_id or decoder.conversation_id or ""
            for event in turn_events(turn, session_id):
                await socket.send(_dumps(event))
            last_sent = now
        if events:
            yield events


def user_id_from_cookies(cookies: str) -> str | None:
    for part in cookies.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == "x-userid" and value.strip():
            return value.strip()
    return None


async def fetch_user_id(transport: Transport, base_url: str, headers: Mapping[str, str]) -> str:
    """The signed-in user's id, from ``GET /api/auth/session`` with the same session."""
    resp = await transport.get(f"{base_url}/api/auth/session", headers)
    try:
        raw = await resp.read(64 * 1024)
        status, ctype = resp.status, resp.headers.get("Content-Type", "")
    finally:
        await resp.close()
    if "html" in ctype:
        raise cloudflare_error(status)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    data: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    if status >= 400:
        err = data.get("error")
        err = err if isinstance(err, dict) else {}
        said = err.get("message") or f"HTTP {status}"
        raise error_from(status, {**err, "message": f"the session lookup was refused: {said}"})
    session, user = data.get("session"), data.get("user")
    for value in (
        session.get("userId") if isinstance(session, dict) else None,
        user.get("id") if isinstance(user, dict) else None,
        data.get("userId"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise error_from(401, {"message": "grok.com's session lookup names no user (signed out?)"})
