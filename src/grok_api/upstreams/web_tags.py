"""grok.com's ``<grok:render …>…</grok:render>`` markup, taken out of streamed answer text.

Some public clients report grok.com putting citations in the answer text as render tags
(``<grok:render card_id="…" card_type="citation_card" type="render_inline_citation">
<argument name="citation_id">5</argument></grok:render>``), the URL coming apart in a
``card_attachment`` {``id``, ``url``}; others see citations only as ``render_citation`` chunks.
Either way no markup may reach a client: a complete tag becomes a citation of its card's URL
when that card is known, and disappears otherwise; text that may be the start of a tag is
held until it is clear (a tag that never closes within :data:`MAX_HELD` characters is let
through as the text it is).
"""

from __future__ import annotations

import re

OPEN = "<grok:render"
CLOSE = "</grok:render>"
MAX_HELD = 4096
_CARD = re.compile(r'card_id="([^"]+)"')


class RenderTags:
    __slots__ = ("cards", "held")

    def __init__(self) -> None:
        self.held = ""
        self.cards: dict[str, str] = {}

    def feed(self, token: str) -> list[tuple[bool, str]]:
        """Pieces of text (``False``, text) and citations (``True``, url), in order."""
        buf, out = self.held + token, []
        self.held = ""
        while buf:
            start = buf.find(OPEN)
            if start < 0:
                keep = _partial_suffix(buf)
                if buf[: len(buf) - keep]:
                    out.append((False, buf[: len(buf) - keep]))
                self.held = buf[len(buf) - keep :]
                break
            if start:
                out.append((False, buf[:start]))
            end = _tag_end(buf, start)
            if end < 0:
                if len(buf) - start > MAX_HELD:
                    out.append((False, buf[start:]))
                else:
                    self.held = buf[start:]
                break
            card = _CARD.search(buf, start, end)
            url = self.cards.get(card.group(1)) if card else None
            if url:
                out.append((True, url))
            buf = buf[end:]
        return out

    def flush(self) -> str:
        """What is still held when the answer ends: text if it was no tag after all."""
        held, self.held = self.held, ""
        return "" if held.startswith(OPEN) else held


def _tag_end(buf: str, start: int) -> int:
    """Where the tag starting at ``start`` ends (past its closing), or -1 if it has not yet."""
    opener_end = buf.find(">", start)
    if opener_end < 0:
        return -1
    if buf[opener_end - 1] == "/":
        return opener_end + 1
    close = buf.find(CLOSE, opener_end)
    return -1 if close < 0 else close + len(CLOSE)


def _partial_suffix(buf: str) -> int:
    """How many characters at the end of ``buf`` could begin ``<grok:render``."""
    for k in range(min(len(OPEN) - 1, len(buf)), 0, -1):
        if OPEN.startswith(buf[-k:]):
            return k
    return 0
