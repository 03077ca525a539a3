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
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

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
_SDK = TypeVar("_SDK", bound="openai.OpenAI | openai.AsyncOpenAI")


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
    """The state a conversation keeps, and all it does with it: the sync and async shapes
    differ only in how they call the SDK."""

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

    def answered(self, text: str, completion: Any) -> str:
        """A whole answer to ``text`` came: keep the turn, return the answer."""
        self.take_usage(completion.usage)
        message = completion.choices[0].message
        answer: str = message.content or ""
        self.record(text, answer, getattr(message, "reasoning_content", None) or "")
        return answer


class _Streamed:
    """The answer to one streamed turn as it arrives. As a context manager around the stream, it
    keeps the turn when the stream ends or is stopped early (``close()``, Ctrl-C, a cancelled
    task: not an ``Exception``) and drops it when the turn fails, even mid-answer."""

    def __init__(self, turns: _Turns, text: str) -> None:
        self.turns = turns
        self.text = text
        self.parts: dict[str, list[str]] = {"text": [], "reasoning": []}

    def deltas(self, chunk: Any) -> Iterator[Delta]:
        self.turns.take_usage(chunk.usage)
        for choice in chunk.choices[:1]:
            reasoning = getattr(choice.delta, "reasoning_content", None)
            if reasoning:
                self.parts["reasoning"].append(reasoning)
                yield Delta("reasoning", reasoning)
            if choice.delta.content:
                self.parts["text"].append(choice.delta.content)
                yield Delta("text", choice.delta.content)

    def __enter__(self) -> _Streamed:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        failed = kind is not None and issubclass(kind, Exception)
        if not failed and (self.parts["text"] or self.parts["reasoning"]):
            self.turns.record(self.text, "".join(self.parts["text"]), "".join(self.parts["reasoning"]))


class _Conversation(_Turns, Generic[_SDK]):
    """A conversation on one SDK client (``openai.OpenAI`` or ``openai.AsyncOpenAI``)."""

    def __init__(self, client: _SDK, model: str, system: str | None, params: dict[str, Any]) -> None:
        super().__init__(model=model, system=system, params=params)
        self._client = client


class Conversation(_Conversation[openai.OpenAI]):
    """A conversation with one model; made by :meth:`Grok.conversation`."""

    def say(self, text: str, **params: Any) -> str:
        """Send ``text``, wait for the whole answer, return it (and keep both in the history)."""
        return self.answered(text, self._client.chat.completions.create(**self.request(text, False, params)))

    def stream(self, text: str, **params: Any) -> Iterator[str]:
        """Send ``text`` and yield the answer's text as it arrives."""
        return (d.text for d in self.deltas_of(text, **params) if d.kind == "text")

    def deltas_of(self, text: str, **params: Any) -> Generator[Delta]:
        """Like :meth:`stream`, with the reasoning too. Stopped early (``close()``, Ctrl-C), what
        arrived is kept; a turn that fails, even mid-answer, leaves the history as it was."""
        with (
            _Streamed(self, text) as answer,
            self._client.chat.completions.create(**self.request(text, True, params)) as stream,
        ):
            for chunk in stream:
                yield from answer.deltas(chunk)


class AsyncConversation(_Conversation[openai.AsyncOpenAI]):
    """The async shape of :class:`Conversation`; made by :meth:`AsyncGrok.conversation`."""

    async def say(self, text: str, **params: Any) -> str:
        """Send ``text``, wait for the whole answer, return it (and keep both in the history)."""
        return self.answered(
            text, await self._client.chat.completions.create(**self.request(text, False, params))
        )

    async def stream(self, text: str, **params: Any) -> AsyncIterator[str]:
        """Send ``text`` and yield the answer's text as it arrives."""
        async with aclosing(self.deltas_of(text, **params)) as deltas:
            async for d in deltas:
                if d.kind == "text":
                    yield d.text

    async def deltas_of(self, text: str, **params: Any) -> AsyncGenerator[Delta]:
        """Like :meth:`stream`, with the reasoning too. Stopped early, what arrived is kept."""
        with _Streamed(self, text) as answer:
            stream = await self._client.chat.completions.create(**self.request(text, True, params))
            async with stream:
                async for chunk in stream:
                    for d in answer.deltas(chunk):
                        yield d


_Conv = TypeVar("_Conv", bound=_Conversation[Any])


class _Client(Generic[_SDK, _Conv]):
    """What :class:`Grok` and :class:`AsyncGrok` share: the options, the ``openai`` client they
    make of them, and conversations on it. Only the calls that go over the network differ."""

    _sdk: type[_SDK]
    _conversation: type[_Conv]

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        **openai_options: Any,
    ) -> None:
        self.openai: _SDK = self._sdk(
            base_url=resolve_base_url(base_url),
            api_key=_resolve_key(api_key),
            timeout=timeout,
            max_retries=max_retries,
            **openai_options,
        )

    def conversation(self, model: str, system: str | None = None, **params: Any) -> _Conv:
        """A new conversation; ``params`` (e.g. ``temperature=0.2``) go with every request."""
        return self._conversation(self.openai, model, system, params)


class Grok(_Client[openai.OpenAI, Conversation]):
    """A client of a Grok-Api gateway. ``openai`` is the underlying ``openai.OpenAI`` client."""

    _sdk = openai.OpenAI
    _conversation = Conversation

    def models(self) -> list[str]:
        """The ids of the models this key may use."""
        return [m.id for m in self.openai.models.list()]

    def close(self) -> None:
        self.openai.close()

    def __enter__(self) -> Grok:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGrok(_Client[openai.AsyncOpenAI, AsyncConversation]):
    """The async shape of :class:`Grok`, on ``openai.AsyncOpenAI``."""

    _sdk = openai.AsyncOpenAI
    _conversation = AsyncConversation

    async def models(self) -> list[str]:
        """The ids of the models this key may use."""
        return [m.id async for m in self.openai.models.list()]

    async def close(self) -> None:
        await self.openai.close()

    async def __aenter__(self) -> AsyncGrok:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
