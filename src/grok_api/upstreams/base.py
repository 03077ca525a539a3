"""The upstream contract and the normalized Events every upstream speaks.

An upstream is one object with two async methods:

``stream(request)``
    Sends one chat request and yields the answer as **batches** of Events: each batch is the
    list of Events decoded from what one network read delivered (a batch is never empty).
    Batching lets the encoders write one frame per read instead of one per token; that is
    what keeps long streams cheap. The Events of one answer come in this order:
    ``TextDelta`` / ``ReasoningDelta`` / ``ToolCallDelta`` / ``Citation`` / ``ServerTool`` in
    any interleaving, then exactly one ``Finish``; a ``Usage`` may come anywhere, and the last
    one wins; a ``ResponseId``, when the upstream names its answer, comes first. Encoders
    ignore the kinds they have no shape for.

    Failures are raised, never yielded: a :class:`~grok_api.errors.GatewayError` subclass
    (``UpstreamError`` 502, ``UpstreamUnavailable`` 503, ``UpstreamTimeout`` 504,
    ``InvalidRequest`` 400, ``ModelNotFound`` 404, ``RateLimited`` 429). Raised before the
    first batch, the caller may retry elsewhere or answer with that status; raised after it,
    the stream is cut and the client is told in-band. An upstream must not raise anything
    else: foreign exceptions are converted where they happen.

    Cancelling the iteration (the client went away) must release the upstream connection.

    Image generation uses the same method: a request with ``kind == "image"`` (made by
    ``POST /v1/images/generations``) carries the prompt as its one user message and the client's
    image parameters in ``body`` (``n``, ``response_format`` ``url``/``b64_json``,
    ``aspect_ratio``, ``resolution``); the answer is one batch of ``Image`` Events (one per
    image, each with ``url`` or ``b64_json`` as asked), an optional ``Usage``, then ``Finish``.
    An upstream that cannot generate images raises ``InvalidRequest`` for such a request. The
    pipeline counts the ``Image`` Events for usage (the ``images`` column). Image editing
    (``kind == "image_edit"``, made by ``POST /v1/images/edits``) is the same, with the source
    images in ``body`` as xAI takes them (``image`` or ``images``, ``{"url", "type"}`` each).

``models()``
    The model ids the upstream serves now, as ``ModelInfo``.

``aclose()``
    Releases pooled connections; called once when the app stops.

Events are plain slotted dataclasses (not frozen: a frozen init costs several times more, and
a long stream makes hundreds of them); treat them as immutable.

Built-in upstreams register the same way an outside one would: ``router.Router.add``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of one tool call; ``id``/``name`` come with the first piece of each index."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Finish:
    reason: str = "stop"


@dataclass(slots=True)
class Citation:
    """A source the answer draws on (a search result, a web page, a post on X); surfaces may show
    it as an annotation."""

    url: str
    title: str = ""


@dataclass(slots=True)
class Image:
    """One generated image: a URL, or the image itself as base64 (``b64_json``)."""

    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str = ""


@dataclass(slots=True)
class ResponseId:
    """The upstream's own id for this answer (xAI's stored response id), sent before any output."""

    id: str


@dataclass(slots=True)
class ServerTool:
    """A tool the upstream ran itself (xAI's ``web_search``, ``x_search``, ``code_execution``):
    its finished output item, in the Responses API's shape, as the upstream sent it."""

    item: dict[str, Any]


Event = (
    TextDelta | ReasoningDelta | ToolCallDelta | Citation | Image | Usage | Finish | ResponseId | ServerTool
)


@dataclass(slots=True)
class ChatRequest:
    """What the gateway asks an upstream for.

    ``body`` is the client's JSON object as parsed (validated, not copied): upstreams that
    speak the OpenAI wire format forward it with ``model`` replaced by ``upstream_model``.
    Surfaces that are not chat completions (Messages) translate their body into this shape.
    ``kind`` says what is asked: ``"chat"`` (an answer), ``"image"`` (image generation),
    ``"image_edit"`` (image editing), or
    ``"responses"`` (a Responses API body, for an upstream that serves ``/v1/responses`` itself;
    ``messages`` still holds the conversation as chat messages, for estimates and for upstreams
    that only take messages).
    """

    model: str
    upstream_model: str
    messages: list[dict[str, Any]]
    stream: bool
    body: dict[str, Any]
    key_id: str | None = None
    kind: str = "chat"  # "chat", "image", "image_edit" or "responses" (see above and the module docstring)


@dataclass(slots=True, frozen=True)
class ModelInfo:
    id: str
    owned_by: str
    created: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Upstream(Protocol):
    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Sequence[Event]]: ...

    async def models(self) -> list[ModelInfo]: ...

    async def aclose(self) -> None: ...
