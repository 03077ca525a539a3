"""What the simulator answers: deterministic, prompt-dependent, with per-request directives.

A request asks for behaviour with a directive in its last user message, ``[sim key=value …]``,
or with the same ``key=value`` pairs in an ``X-Sim`` header (the header wins). Keys:

``fault``   400, 401, 403, 429, 500, 503, ``hang`` (no answer at all), ``stall`` (stop
            sending mid-stream), ``cut`` (drop the connection mid-stream), ``malformed``
            (a line that is not JSON mid-stream)
``after``   tokens sent before a mid-stream fault (default 3)
``retry_after``  seconds for the 429's ``Retry-After`` (default 2)
``tokens``  answer length in tokens (at most 100,000), filled with deterministic words
``latency`` seconds before the first token; ``rate`` tokens per second (0 = no pacing)
``tool``    ``1``: answer with a call of the first tool in ``tools``; ``N``: N parallel calls
            (of the tools in turn); ``tool_choice`` and the arguments: see ``structured``
``think``   ``1``/``0``: emit reasoning tokens, whatever the model
``images``  (grok.com) the answer carries N generated image links
``times``   the fault hits only the first N requests with this same prompt (then it recovers)

Without ``tokens``, the answer is ``[turn N] You said: <last user text>``, where N counts the
user messages: a test can see both the prompt and the history it was sent with.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

MAX_TOKENS = 100_000  # the longest answer a directive gets: a simulator must not be made to eat memory
_DIRECTIVE = re.compile(r"\[sim((?:\s+[a-z_]+=[^\s\]]+)*)\s*\]")
_PAIR = re.compile(r"([a-z_]+)=([^\s\]]+)")
_WORDS = (
    "grok orbit signal vector lattice photon quasar kernel tensor cipher harbor meadow "
    "ember delta prism summit falcon river beacon comet"
).split()


@dataclass(slots=True)
class Directives:
    fault: str | None = None
    after: int = 3
    retry_after: int = 2
    tokens: int | None = None
    latency: float | None = None
    rate: float | None = None
    tool: int = 0  # tool calls to answer with
    think: bool | None = None
    images: int = 0
    times: int | None = None  # the fault hits only the first N requests with this prompt

    @classmethod
    def parse(cls, text: str, header: str | None = None) -> Directives:
        pairs: dict[str, str] = {}
        for m in _DIRECTIVE.finditer(text):
            pairs.update(_PAIR.findall(m.group(1)))
        if header:
            pairs.update(_PAIR.findall(header))
        d = cls()
        d.fault = pairs.get("fault")
        d.after = _int(pairs.get("after"), 3)
        d.retry_after = _int(pairs.get("retry_after"), 2)
        tokens = _int(pairs.get("tokens"), None)
        d.tokens = None if tokens is None else min(tokens, MAX_TOKENS)
        d.latency = _float(pairs.get("latency"))
        d.rate = _float(pairs.get("rate"))
        tool = pairs.get("tool", "")
        d.tool = int(tool) if tool.isdigit() else int(tool in ("true", "yes"))
        d.images = _int(pairs.get("images"), 0)
        d.times = _int(pairs.get("times"), None)
        if "think" in pairs:
            d.think = pairs["think"] in ("1", "true", "yes")
        return d


def _int(v: str | None, default: int | None) -> Any:
    try:
        return int(v) if v is not None else default
    except ValueError:
        return default


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def strip_directives(text: str) -> str:
    return _DIRECTIVE.sub("", text).strip()


def text_of(content: Any) -> str:
    """The text of an OpenAI message ``content``: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def count_tokens(text: str) -> int:
    """The simulator's tokenizer: whitespace-separated words."""
    return len(text.split())


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(3 + count_tokens(text_of(m.get("content"))) for m in messages)


def answer_words(prompt: str, turn: int, tokens: int | None) -> list[str]:
    """The answer as a list of tokens (words, each but the last with its trailing space)."""
    if tokens is None:
        words = f"[turn {turn}] You said: {strip_directives(prompt) or '(nothing)'}".split()
    else:
        seed = hashlib.sha256(prompt.encode()).digest()
        words = [_WORDS[(seed[i % 32] + i) % len(_WORDS)] for i in range(max(0, tokens))]
    return [w + " " for w in words[:-1]] + words[-1:]


def reasoning_words(prompt: str) -> list[str]:
    words = f"Thinking about: {strip_directives(prompt)[:80] or 'the question'}".split()
    return [w + " " for w in words]
