"""grok.com's NDJSON answer → Events.

Both line shapes are read: on ``/conversations/new`` the fields sit under ``result.response``
(and ``result.conversation.conversationId`` comes first); on ``/responses`` they sit directly
under ``result``. ``token`` lines with ``isThinking`` are reasoning, other tokens tagged
``final`` (or untagged) are the answer, other tags (``header``, ``tool_usage_card``, …) are
interface furniture and skipped; ``modelResponse`` closes the answer with its ``responseId``
and any ``generatedImageUrls``, which are appended as Markdown images with absolute URLs.

Thinking is shown one of three ways: ``reasoning`` (``reasoning_content`` deltas, default),
``inline`` (``<think>…</think>`` in the content, for clients that show nothing else) or
``hidden``.

grok.com reports no token counts: usage is estimated at 4 characters a token — the prompt
from the message actually sent (only the new message when a conversation continues), the
completion from the answer and the thinking — and marked as an estimate.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import GatewayError, InvalidRequest, RateLimited, UpstreamError
from ..usage import estimate_tokens
from .base import Event, Finish, ReasoningDelta, TextDelta, Usage

THINKING_MODES = ("reasoning", "inline", "hidden")
REFRESH = (
    "Refresh the session: sign in to grok.com in your browser, then copy its Cookie header "
    "(sso, sso-rw, cf_clearance) into GROK_API_WEB_COOKIES and its User-Agent into "
    "GROK_API_WEB_USER_AGENT."
)
_ANSWER_TAGS = (None, "final")


class WebDecoder:
    def __init__(self, display: str, assets_url: str, *, sent_chars: int) -> None:
        self.display = display
        self.assets_url = assets_url
        self.sent_chars = sent_chars
        self.conversation_id: str | None = None
        self.response_id: str | None = None
        self.images: list[str] = []
        self.answered = False
        self._text: list[str] = []
        self._thinking_chars = 0
        self._in_think = False

    def answer_text(self) -> str:
        """The answer as the client received it (without thinking), for conversation memory."""
        return "".join(self._text)

    def feed(self, lines: list[bytes]) -> list[Event]:
        out: list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UpstreamError(f"grok.com sent a malformed line: {line[:80]!r}") from None
            if not isinstance(obj, dict):
                continue
            self._line(obj, out)
        return out

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
            self._token(token, body, out)
        final = body.get("modelResponse")
        if isinstance(final, dict):
            self.answered = True
            if final.get("responseId"):
                self.response_id = str(final["responseId"])
            self.images = [str(u) for u in final.get("generatedImageUrls") or [] if u]

    def _token(self, token: str, body: dict[str, Any], out: list[Event]) -> None:
        if body.get("isThinking"):
            self._thinking_chars += len(token)
            if self.display == "reasoning":
                out.append(ReasoningDelta(token))
            elif self.display == "inline":
                if not self._in_think:
                    self._in_think = True
                    token = "<think>\n" + token
                out.append(TextDelta(token))
            return
        if body.get("messageTag") not in _ANSWER_TAGS:
            return
        if self._in_think:
            self._in_think = False
            out.append(TextDelta("\n</think>\n\n"))
        self._text.append(token)
        out.append(TextDelta(token))

    def finish(self) -> list[Event]:
        """The Events that end the answer; an answer without its ``modelResponse`` was cut."""
        if not self.answered:
            raise UpstreamError("grok.com ended the answer before it was complete")
        out: list[Event] = []
        if self._in_think:
            self._in_think = False
            out.append(TextDelta("\n</think>\n\n"))
        if self.images:
            links = "".join(f"\n\n![image]({self._absolute(u)})" for u in self.images)
            self._text.append(links)
            out.append(TextDelta(links))
        completion = estimate_tokens(len(self.answer_text()) + self._thinking_chars)
        out.append(
            Usage(
                prompt_tokens=estimate_tokens(self.sent_chars),
                completion_tokens=completion,
                reasoning_tokens=estimate_tokens(self._thinking_chars),
                estimated=True,
            )
        )
        out.append(Finish("stop"))
        return out

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{self.assets_url}/{url.lstrip('/')}"


def error_from(status: int, err: dict[str, Any], retry_after: str | None = None) -> GatewayError:
    """A grok.com error object (HTTP body or in-stream) as the gateway's error, saying what to do."""
    message = str(err.get("message") or "no message")
    code = err.get("code")
    if status == 429 or code == 8:
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else 60.0
        return RateLimited(
            f"grok.com usage limit reached: {message}", retry_after=seconds, code="web_usage_limit"
        )
    if status == 403 or code == 7 or "anti-bot" in message.lower():
        return UpstreamError(
            f"grok.com refused the session ({message}). {REFRESH}", code="web_session_refused"
        )
    if status == 401 or code == 16:
        return UpstreamError(
            f"grok.com says the session is signed out ({message}). {REFRESH}", code="web_session_expired"
        )
    if 400 <= status < 500:
        return InvalidRequest(f"grok.com refused the request: {message}")
    return UpstreamError(f"grok.com failed ({status}): {message}")
