"""grok.com's chat gateway (WebSocket ``/ws/mgw/``): server events → Events.

Every frame is ``{"session_id"?, "event": {"type": …}}``. What is read (as public clients that
follow grok.com describe it; anything else is ignored, so new furniture does not break answers):

- ``session.created`` (its ``client_event_id`` is our ``session.create`` id) and
  ``conversation.attached`` (``conversation.id``): the session is ready for the turn;
- ``response.chunk``: ``chunk.text = {"text", "channel"}`` — ``CHANNEL_ASSISTANT_RESPONSE`` (or
  no channel) is the answer, a channel naming ANALYSIS/REASONING/THINKING is thinking, others
  (e.g. the notetaker header) are skipped; ``chunk.render_citation`` cites a source at that
  point; ``chunk.tool_result.web_search.webpages[]`` and ``…x_post.posts[]`` are sources;
- ``response.output_text.delta`` / ``.done`` (the OpenAI-Realtime-style text events; a delta
  with ``x_grok.is_thinking`` is thinking);
- ``response.search.result`` (``result.url``/``title``, or ``result.web_results[]``);
- ``response.grok.output``: ``output.card_attachment`` (``jsonData`` — an object or a JSON
  string — with ``image_chunk`` {``imageUrl``, ``progress``, ``moderated``}: a generated
  image once ``progress`` is 100), ``output.tool_result.web_search_results[]``, or
  ``output.stream_error`` (a failure);
- ``response.done``: ``response.id`` (the parent of the next turn) and ``response.status``
  (``completed``; anything else failed); ``error`` (``error.code``/``message``);
  ``session.ended`` before ``response.done`` means the answer was cut.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import UpstreamError
from .base import Event
from .web_answer import Answer, error_from

_ANSWER, _THINKING, _SKIP = 0, 1, 2


class ConversationGone(UpstreamError):
    """grok.com cannot load the conversation a continuation named (start a new one instead)."""


def _channel_kind(channel: str) -> int:
    upper = channel.upper()
    if not upper or upper == "CHANNEL_ASSISTANT_RESPONSE":
        return _ANSWER
    if "ANALYSIS" in upper or "REASONING" in upper or "THINKING" in upper:
        return _THINKING
    return _SKIP


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class GatewayDecoder:
    def __init__(self, answer: Answer, session_event_id: str = "") -> None:
        self.answer = answer
        self.session_event_id = session_event_id
        self.session_id: str | None = None
        self.conversation_id: str | None = None
        self.response_id: str | None = None
        self.created = False
        self.attached = False
        self.done = False
        self.output = False  # anything of the answer came
        self._kinds: dict[str, int] = {}
        self._handlers = {
            "response.chunk": self._chunk,
            "response.output_text.delta": self._text_delta,
            "response.output_text.done": self._text_done,
            "response.search.result": self._search_result,
            "response.grok.output": self._grok_output,
            "response.done": self._done,
            "session.created": self._created,
            "conversation.attached": self._attached,
            "error": self._error,
            "session.ended": self._ended,
        }

    @property
    def ready(self) -> bool:
        return self.created and self.attached

    def feed(self, frame: bytes | str) -> list[Event]:
        try:
            envelope = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return []  # not ours to understand
        out: list[Event] = []
        if not isinstance(envelope, dict):
            return out
        event = envelope.get("event")
        if not isinstance(event, dict):
            return out
        handler = self._handlers.get(event.get("type"))  # type: ignore[arg-type]
        if handler is not None:
            if envelope.get("session_id") and self.session_id is None:
                self.session_id = str(envelope["session_id"])
            handler(event, out)
        return out

    def _chunk(self, event: dict[str, Any], out: list[Event]) -> None:
        chunk = event.get("chunk")
        if not isinstance(chunk, dict):
            return
        text = chunk.get("text")
        if isinstance(text, dict):
            token = text.get("text")
            if isinstance(token, str) and token:
                channel = text.get("channel") or ""
                kind = self._kinds.get(channel)
                if kind is None:
                    kind = self._kinds[channel] = _channel_kind(str(channel))
                if kind == _ANSWER:
                    self.output = True
                    self.answer.text(token, out)
                elif kind == _THINKING:
                    self.output = True
                    self.answer.thinking(token, out)
            return
        cite = chunk.get("render_citation")
        if isinstance(cite, dict):
            self.answer.cite(cite.get("url"), cite.get("title"), out)
        result = chunk.get("tool_result")
        if isinstance(result, dict):
            self._tool_result(result, out)

    def _tool_result(self, result: dict[str, Any], out: list[Event]) -> None:
        for page in _obj(result.get("web_search")).get("webpages") or []:
            if isinstance(page, dict):
                self.answer.source(page.get("url"), page.get("title"), out)
        for post in _obj(result.get("x_post")).get("posts") or []:
            if isinstance(post, dict):
                handle = post.get("userhandle") or post.get("username")
                post_id = post.get("post_id") or post.get("postId")
                if isinstance(handle, str) and isinstance(post_id, str | int):
                    url = f"https://x.com/{handle}/status/{post_id}"
                    self.answer.source(url, post.get("text") or f"@{handle}", out)

    def _text_delta(self, event: dict[str, Any], out: list[Event]) -> None:
        delta = event.get("delta")
        if isinstance(delta, str) and delta:
            self.output = True
            if _obj(event.get("x_grok")).get("is_thinking"):
                self.answer.thinking(delta, out)
            else:
                self.answer.text(delta, out)

    def _text_done(self, event: dict[str, Any], out: list[Event]) -> None:
        text = event.get("text")
        if isinstance(text, str) and text and not self.answer.answer_text():
            self.output = True
            self.answer.text(text, out)

    def _search_result(self, event: dict[str, Any], out: list[Event]) -> None:
        result = _obj(event.get("result"))
        if result.get("url"):
            self.answer.source(result.get("url"), result.get("title"), out)
        for r in result.get("web_results") or []:
            if isinstance(r, dict):
                self.answer.source(r.get("url"), r.get("title"), out)

    def _grok_output(self, event: dict[str, Any], out: list[Event]) -> None:
        output = _obj(event.get("output"))
        error = output.get("stream_error")
        if isinstance(error, dict):
            raise error_from(502, error)
        card = _obj(output.get("card_attachment"))
        if card.get("url"):  # a citation card, for a <grok:render card_id=…> tag in the text
            self.answer.card(card.get("id"), card.get("url"), out)
        data = card.get("jsonData")
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                data = None
        image = _obj(_obj(data).get("image_chunk") or card.get("image_chunk"))
        if image.get("progress") == 100 and not image.get("moderated"):
            self.output = True
            self.answer.image(image.get("imageUrl"))
        for r in _obj(output.get("tool_result")).get("web_search_results") or []:
            if isinstance(r, dict):
                self.answer.source(r.get("url"), r.get("title"), out)

    def _done(self, event: dict[str, Any], out: list[Event]) -> None:
        response = _obj(event.get("response"))
        if response.get("id"):
            self.response_id = str(response["id"])
        status = response.get("status")
        if status and status != "completed":
            reason = _obj(response.get("status_details")).get("reason") or status
            raise error_from(502, {"message": f"the answer did not complete ({reason})"})
        self.done = True

    def _created(self, event: dict[str, Any], out: list[Event]) -> None:
        echoed = event.get("client_event_id")
        if not echoed or echoed == self.session_event_id:
            self.created = True

    def _attached(self, event: dict[str, Any], out: list[Event]) -> None:
        conversation = _obj(event.get("conversation"))
        if conversation.get("id"):
            self.conversation_id = str(conversation["id"])
            self.attached = True

    def _error(self, event: dict[str, Any], out: list[Event]) -> None:
        err = event.get("error")
        err = err if isinstance(err, dict) else {"message": str(err or "unknown error")}
        code = str(err.get("code") or "").lower()
        if not self.output and ("not_found" in code or code == "5"):
            raise ConversationGone(f"grok.com cannot continue that conversation: {err.get('message')}")
        raise error_from(502, err)

    def _ended(self, event: dict[str, Any], out: list[Event]) -> None:
        if not self.done:
            raise UpstreamError("grok.com ended the session before the answer was complete")
