"""What a grok.com answer becomes, whichever protocol carried it: Events, and the errors.

Both decoders (REST NDJSON in ``web_decode.py``, the WebSocket gateway in ``web_ws_decode.py``)
feed one :class:`Answer`: answer text, thinking, search sources, generated images. It owns the
choices the user makes about how those are shown:

Thinking (``thinking_display`` / ``GROK_API_WEB_THINKING``): ``reasoning`` (``reasoning_content``
deltas, default), ``inline`` (``<think>…</think>`` in the content, for clients that show nothing
else) or ``hidden``.

Search sources (``GROK_API_WEB_SOURCES``): each distinct source becomes a ``Citation`` Event (the
Responses surface turns them into ``url_citation`` annotations) and, in the text, ``inline``
``[n](url)`` markers where grok.com cites them (default), a ``list`` of sources after the answer,
or ``none``.

Generated images are appended as Markdown images; ``image_link`` decides the URL (absolute
grok.com asset URLs by default, or the gateway's own cache, see ``web_images.py``).

grok.com reports no token counts: usage is estimated at 4 characters a token — the prompt
from the message actually sent (only the new message when a conversation continues), the
completion from the answer and the thinking — and marked as an estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import GatewayError, InvalidRequest, RateLimited, UpstreamError
from ..usage import estimate_tokens
from .base import Citation, Event, Finish, ReasoningDelta, TextDelta, Usage
from .web_tags import RenderTags

THINKING_MODES = ("reasoning", "inline", "hidden")
SOURCE_MODES = ("inline", "list", "none")
REFRESH = (
    "Refresh the session: sign in to grok.com in your browser, then copy its Cookie header "
    "(sso, sso-rw, cf_clearance, x-userid) into GROK_API_WEB_COOKIES and its User-Agent into "
    "GROK_API_WEB_USER_AGENT."
)
_USAGE_WORDS = ("usage limit", "usage quota")


@dataclass(slots=True, frozen=True)
class Display:
    thinking: str = "reasoning"
    sources: str = "inline"


def absolute_link(assets_url: str) -> Callable[[str], str]:
    base = assets_url.rstrip("/")

    def link(url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{base}/{url.lstrip('/')}"

    return link


class Answer:
    """One answer being decoded: what the client was sent, and what ends it."""

    __slots__ = (
        "_in_think",
        "_last_cited",
        "_sources",
        "_tags",
        "_text",
        "_thinking_chars",
        "display",
        "image_link",
        "images",
        "sent_chars",
    )

    def __init__(self, display: Display, image_link: Callable[[str], str], *, sent_chars: int) -> None:
        self.display = display
        self.image_link = image_link
        self.sent_chars = sent_chars
        self.images: list[str] = []
        self._text: list[str] = []
        self._thinking_chars = 0
        self._in_think = False
        self._sources: dict[str, tuple[int, str]] = {}  # url -> (number, title)
        self._last_cited = 0
        self._tags = RenderTags()

    def answer_text(self) -> str:
        """The answer as the client received it (without thinking), for conversation memory."""
        return "".join(self._text)

    def text(self, token: str, out: list[Event]) -> None:
        if self._tags.held or "<" in token:
            for cited, piece in self._tags.feed(token):
                if cited:
                    self.cite(piece, None, out)
                else:
                    self._emit(piece, out)
        else:
            self._emit(token, out)

    def card(self, card_id: Any, url: Any, out: list[Event]) -> None:
        """A card grok.com attached (a citation card: its id and URL)."""
        if isinstance(card_id, str) and isinstance(url, str) and self.source(url, None, out):
            self._tags.cards[card_id] = url

    def _emit(self, token: str, out: list[Event]) -> None:
        if self._in_think:
            self._in_think = False
            out.append(TextDelta("\n</think>\n\n"))
        self._text.append(token)
        out.append(TextDelta(token))

    def thinking(self, token: str, out: list[Event]) -> None:
        self._thinking_chars += len(token)
        mode = self.display.thinking
        if mode == "reasoning":
            out.append(ReasoningDelta(token))
        elif mode == "inline":
            if not self._in_think:
                self._in_think = True
                token = "<think>\n" + token
            out.append(TextDelta(token))

    def source(self, url: Any, title: Any, out: list[Event]) -> int:
        """A search result; its number (0 when it is not a usable URL)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 4096:
            return 0
        known = self._sources.get(url)
        if known is not None:
            return known[0]
        name = title if isinstance(title, str) and title.strip() else url
        number = len(self._sources) + 1
        self._sources[url] = (number, name)
        out.append(Citation(url, name))
        return number

    def cite(self, url: Any, title: Any, out: list[Event]) -> None:
        """grok.com cites a source at this point of the answer."""
        number = self.source(url, title, out)
        if number and self.display.sources == "inline" and number != self._last_cited:
            self._last_cited = number
            last = self._text[-1] if self._text else ""
            space = "" if not last or last[-1].isspace() else " "
            self._emit(f"{space}[{number}]({url})", out)

    def image(self, url: Any) -> None:
        if isinstance(url, str) and url and url not in self.images:
            self.images.append(url)

    def finish(self) -> list[Event]:
        out: list[Event] = []
        held = self._tags.flush()
        if held:
            self._emit(held, out)
        if self._in_think:
            self._in_think = False
            out.append(TextDelta("\n</think>\n\n"))
        tail = "".join(f"\n\n![image]({self.image_link(u)})" for u in self.images)
        if self._sources and self.display.sources == "list":
            rows = "\n".join(f"{n}. [{t}]({u})" for u, (n, t) in self._sources.items())
            tail += f"\n\nSources:\n{rows}"
        if tail:
            self._text.append(tail)
            out.append(TextDelta(tail))
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


def _code(err: dict[str, Any]) -> int | str | None:
    code = err.get("code")
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return code if isinstance(code, int | str) else None


def error_from(status: int, err: dict[str, Any], retry_after: str | None = None) -> GatewayError:
    """A grok.com error object (HTTP body or in-stream) as the gateway's error, saying what to do.

    A usage limit is recognised by the status (429), the code (8, or one naming an exhausted
    resource) or only by its words: grok.com often says "usage limit" in a message and nothing else.
    """
    message = str(err.get("message") or err.get("error") or "no message")
    code = _code(err)
    lowered = message.lower()
    if (
        status == 429
        or code == 8
        or (isinstance(code, str) and "exhausted" in code.lower())
        or any(w in lowered for w in _USAGE_WORDS)
    ):
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else 60.0
        return RateLimited(
            f"grok.com usage limit reached: {message}", retry_after=seconds, code="web_usage_limit"
        )
    if status == 403 or code == 7 or "anti-bot" in lowered:
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


def cloudflare_error(status: int) -> GatewayError:
    return UpstreamError(
        f"grok.com answered with a Cloudflare challenge (HTTP {status}): the session's "
        f"cf_clearance cookie is missing, expired or was issued to another browser. {REFRESH}",
        code="web_session_refused",
    )
