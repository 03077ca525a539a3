"""The Python client: conversations with Grok through a Grok-Api gateway (or any OpenAI-compatible URL).

Built on the ``openai`` SDK and importing nothing of the server, so ``pip install grok-api``
(without the ``[server]`` extra) is enough to use it::

    from grok_api import Grok

    g = Grok()  # GROK_API_BASE_URL (default http://127.0.0.1:8000/v1) and GROK_API_KEY
    convo = g.conversation("grok-4.3", system="You are terse.")
    print(convo.say("Name a moon of Saturn."))
    for piece in convo.stream("And one of Jupiter?"):
        print(piece, end="", flush=True)

A conversation keeps its history and sends it whole each turn, as the OpenAI API wants; on
grok.com models the gateway recognises the history and continues the same grok.com
conversation. Errors are the ``openai`` SDK's typed exceptions (``openai.AuthenticationError``,
``openai.RateLimitError``, ``openai.APIConnectionError`` …); a failed turn leaves the history
as it was.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import openai

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncConversation",
    "AsyncGrok",
    "Conversation",
    "Delta",
    "Grok",
    "Usage",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
Message = dict[str, str]


def resolve_base_url(base_url: str | None = None) -> str:
    """The argument, else ``GROK_API_BASE_URL``, else the local gateway."""
    return base_url or os.environ.get("GROK_API_BASE_URL") or DEFAULT_BASE_URL


def _resolve_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("GROK_API_KEY")
    if not key:
        raise openai.OpenAIError(
            "no API key: pass api_key= or set GROK_API_KEY (a key from `grok-api keys create`)"
        )
    return key


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of a streamed answer: its text, or its reasoning."""

    kind: Literal["text", "reasoning"]
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """The token counts the gateway reported for the last answer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass
class _Turns:
    """The state a conversation keeps; shared by the sync and async shapes."""

    model: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    usage: Usage | None = None
    reasoning: str = ""

    @property
    def history(self) -> list[Message]:
        """The user and assistant messages so far (a copy), without the system prompt."""
        return [dict(m) for m in self.messages]

    def reset(self) -> None:
        """Forget the history (model and system prompt stay): the next turn starts anew."""
        self.messages.clear()
        self.usage = None
        self.reasoning = ""

    def request(self, text: str, stream: bool, extra: dict[str, Any]) -> dict[str, Any]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [*head, *self.messages, {"role": "user", "content": text}],
            **self.params,
            **extra,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def record(self, text: str, answer: str, reasoning: str) -> None:
        """A turn went through (or was stopped after part of its answer): keep it."""
        self.messages += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        self.reasoning = reasoning

    def take_usage(self, usage: Any) -> None:
        if usage is not None:
            self.usage = Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)

    def deltas(self, chunk: Any) -> Iterator[Delta]:
        self.take_usage(chunk.usage)
        for choice in chunk.choices[:1]:
            reasoning = getattr(choice.delta, "reasoning_content", None)
            if reasoning:
                yield Delta("reasoning", reasoning)
            if choice.delta.content:
                yield Delta("text", choice.delta.content)

    def answer_of(self, completion: Any) -> tuple[str, str]:
        self.take_usage(completion.usage)
        message = completion.choices[0].message
        return message.content or "", getattr(message, "reasoning_content", None) or ""


class Conversation(_Turns):
    """A conversation with one model; made by :meth:`Grok.conversation`."""

    def __init__(self, client: openai.OpenAI, model: str, system: str | None, params: dict[str, Any]) -> None:
        super().__init__(model=model, system=system, params=params)
        self._client = client

    def say(self, text: str, **params: Any) -> str:
        """Send ``text``, wait for the whole answer, return it (and keep both in the history)."""
        completion = self._client.chat.completions.create(**self.request(text, False, params))
        answer, reasoning = self.answer_of(completion)
        self.record(text, answer, reasoning)
        return answer

    def stream(self, text: str, **params: Any) -> Iterator[str]:
        """Send ``text`` and yield the answer's text as it arrives."""
        return (d.text for d in self.deltas_of(text, **params) if d.kind == "text")

    def deltas_of(self, text: str, **params: Any) -> Generator[Delta]:
        """Like :meth:`stream`, with the reasoning too. Stopped early (``close()``, Ctrl-C), what
        arrived is kept; a turn that fails, even mid-answer, leaves the history as it was."""
        parts: dict[str, list[str]] = {"text": [], "reasoning": []}
        stream = self._client.chat.completions.create(**self.request(text, True, params))
        failed = False
        try:
            for chunk in stream:
                for d in self.deltas(chunk):
                    parts[d.kind].append(d.text)
                    yield d
        except Exception:
            failed = True
            raise
        finally:
            stream.close()
            if not failed and (parts["text"] or parts["reasoning"]):
                self.record(text, "".join(parts["text"]), "".join(parts["reasoning"]))


class AsyncConversation(_Turns):
    """The async shape of :class:`Conversation`; made by :meth:`AsyncGrok.conversation`."""

    def __init__(
        self, client: openai.AsyncOpenAI, model: str, system: str | None, params: dict[str, Any]
    ) -> None:
        super().__init__(model=model, system=system, params=params)
        self._client = client

    async def say(self, text: str, **params: Any) -> str:
        """Send ``text``, wait for the whole answer, return it (and keep both in the history)."""
        completion = await self._client.chat.completions.create(**self.request(text, False, params))
        answer, reasoning = self.answer_of(completion)
        self.record(text, answer, reasoning)
        return answer

    async def stream(self, text: str, **params: Any) -> AsyncIterator[str]:
        """Send ``text`` and yield the answer's text as it arrives."""
        async for d in self.deltas_of(text, **params):
            if d.kind == "text":
                yield d.text

    async def deltas_of(self, text: str, **params: Any) -> AsyncGenerator[Delta]:
        """Like :meth:`stream`, with the reasoning too. Stopped early, what arrived is kept."""
        parts: dict[str, list[str]] = {"text": [], "reasoning": []}
        stream = await self._client.chat.completions.create(**self.request(text, True, params))
        failed = False
        try:
            async for chunk in stream:
                for d in self.deltas(chunk):
                    parts[d.kind].append(d.text)
                    yield d
        except Exception:
            failed = True
            raise
        finally:
            await stream.close()
            if not failed and (parts["text"] or parts["reasoning"]):
                self.record(text, "".join(parts["text"]), "".join(parts["reasoning"]))


class Grok:
    """A client of a Grok-Api gateway. ``openai`` is the underlying ``openai.OpenAI`` client."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        **openai_options: Any,
    ) -> None:
        self.openai = openai.OpenAI(
            base_url=resolve_base_url(base_url),
            api_key=_resolve_key(api_key),
            timeout=timeout,
            max_retries=max_retries,
            **openai_options,
        )

    def conversation(self, model: str, system: str | None = None, **params: Any) -> Conversation:
        """A new conversation; ``params`` (e.g. ``temperature=0.2``) go with every request."""
        return Conversation(self.openai, model, system, params)

    def models(self) -> list[str]:
        """The ids of the models this key may use."""
        return [m.id for m in self.openai.models.list()]

    def close(self) -> None:
        self.openai.close()

    def __enter__(self) -> Grok:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGrok:
    """The async shape of :class:`Grok`, on ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        **openai_options: Any,
    ) -> None:
        self.openai = openai.AsyncOpenAI(
            base_url=resolve_base_url(base_url),
            api_key=_resolve_key(api_key),
            timeout=timeout,
            max_retries=max_retries,
            **openai_options,
        )

    def conversation(self, model: str, system: str | None = None, **params: Any) -> AsyncConversation:
        """A new conversation; ``params`` (e.g. ``temperature=0.2``) go with every request."""
        return AsyncConversation(self.openai, model, system, params)

    async def models(self) -> list[str]:
        """The ids of the models this key may use."""
        return [m.id async for m in self.openai.models.list()]

    async def close(self) -> None:
        await self.openai.close()

    async def __aenter__(self) -> AsyncGrok:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
