"""grok.com's REST answer (NDJSON) → Events; the fallback protocol (``GROK_API_WEB_PROTOCOL=rest``).

Both line shapes are read: on ``/conversations/new`` the fields sit under ``result.response``
(and ``result.conversation.conversationId`` comes first); on ``/responses`` they sit directly
under ``result``. ``token`` lines with ``isThinking`` are reasoning, other tokens tagged
``final`` (or untagged) are the answer, other tags (``header``, ``tool_usage_card``, …) are
interface furniture and skipped; ``webSearchResults`` are sources; ``modelResponse`` closes
the answer with its ``responseId`` and any ``generatedImageUrls``. What the answer becomes is
``web_answer.Answer``'s business.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..errors import GatewayError, UpstreamError
from .base import Event
from .web_answer import Answer, Display, absolute_link, error_from

_ANSWER_TAGS = (None, "final")


class WebDecoder:
    def __init__(
        self,
        display: Display | str,
        assets_url: str | Callable[[str], str],
        *,
        sent_chars: int,
    ) -> None:
        if isinstance(display, str):
            display = Display(thinking=display)
        link = absolute_link(assets_url) if isinstance(assets_url, str) else assets_url
        self.answer = Answer(display, link, sent_chars=sent_chars)
        self.conversation_id: str | None = None
        self.response_id: str | None = None
        self.answered = False
        self._pending: GatewayError | None = None

    def answer_text(self) -> str:
        return self.answer.answer_text()

    def feed(self, lines: list[bytes]) -> list[Event]:
        """The Events of complete lines. A bad line (or an error line) raises; the Events decoded
        before it in the same read are returned first and the error is raised by the next call
        (``feed`` or ``finish``), so what a client sees does not depend on where reads were cut."""
        self._raise_pending()
        out: list[Event] = []
        try:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise UpstreamError(f"grok.com sent a malformed line: {line[:80]!r}") from None
                if isinstance(obj, dict):
                    self._line(obj, out)
        except GatewayError as exc:
            if not out:
                raise
            self._pending = exc
        return out

    def _raise_pending(self) -> None:
        if self._pending is not None:
            exc, self._pending = self._pending, None
            raise exc

    def _line(self, obj: dict[str, Any], out: list[Event]) -> None:
        if isinstance(obj.get("error"), dict):
            raise error_from(502, obj["error"])
        result = obj.get("result")
        if not isinstance(result, dict):
            return
        conversation = result.get("conversation")
        if isinstance(conversation, dict) and conversation.get("conversationId"):
            self.conversation_id = str(conversation["conversationId"])
        body = result.get("response", result)
        if not isinstance(body, dict):
            return
        if isinstance(body.get("error"), dict):
            raise error_from(502, body["error"])
        token = body.get("token")
        if isinstance(token, str) and token:
            if body.get("isThinking"):
                self.answer.thinking(token, out)
            elif body.get("messageTag") in _ANSWER_TAGS:
                self.answer.text(token, out)
        results = body.get("webSearchResults")
        if isinstance(results, dict):
            results = results.get("results")
        if isinstance(results, list):
            for r in results:
                if isinstance(r, dict):
                    self.answer.source(r.get("url"), r.get("title"), out)
        final = body.get("modelResponse")
        if isinstance(final, dict):
            self.answered = True
            if final.get("responseId"):
                self.response_id = str(final["responseId"])
            for url in final.get("generatedImageUrls") or []:
                self.answer.image(url)

    def finish(self) -> list[Event]:
        """The Events that end the answer; an answer without its ``modelResponse`` was cut."""
        self._raise_pending()
        if not self.answered:
            raise UpstreamError("grok.com ended the answer before it was complete")
        return self.answer.finish()
