"""The official xAI API: OpenAI's wire format at ``GROK_API_XAI_BASE_URL``.

xAI's error bodies are ``{"code": "<grpc status text>", "error": "<message>"}``; they are
mapped here to the gateway's errors. A refused ``XAI_API_KEY`` (xAI answers 400 "Incorrect
API key provided", or 401/403) is the operator's problem, not the client's: it becomes a 502
that says so and never repeats the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from ..errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from ..logs import with_request_id
from .base import (
    ChatRequest,
    Event,
    Finish,
    Image,
    ModelInfo,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from .http import HTTPOptions, PooledClient, converted, read_lines, request_body
from .sse import SSEDecoder
from .xai_responses import ResponsesDecoder

_ERROR_BODY_LIMIT = 64 * 1024


class XAIUpstream:
    """An :class:`~grok_api.upstreams.base.Upstream` for xAI's OpenAI-compatible API."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        http: HTTPOptions | None = None,
        name: str = "xai",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._client = PooledClient(http or HTTPOptions())
        self._session, self._proxy = self._client.session, self._client.proxy

    async def aclose(self) -> None:
        await self._client.aclose()

    async def models(self) -> list[ModelInfo]:
        async with (
            converted(self.name),
            self._session.get(self.base_url + "/models", headers=self._headers, proxy=self._proxy) as resp,
        ):
            if resp.status >= 400:
                raise await _error_from(resp, self.name)
            data = orjson.loads(await resp.read())
        return [
            ModelInfo(id=m["id"], owned_by=self.name, created=int(m.get("created") or 0))
            for m in data.get("data", [])
            if isinstance(m, dict) and isinstance(m.get("id"), str)
        ]

    async def stream(self, request: ChatRequest) -> AsyncIterator[Sequence[Event]]:
        if request.kind == "image" or request.kind == "image_edit":
            yield await self._images(request)
            return
        decoder: SSEDecoder
        if request.kind == "responses":  # xAI's own /v1/responses: always streamed
            path, body, decoder = "/responses", _responses_body(request), ResponsesDecoder(self.name)
        else:
            path, body, decoder = "/chat/completions", _chat_body(request), ChunkDecoder(self.name)
        streamed = request.stream or request.kind == "responses"
        async with self._post(path, body) as resp:
            if not streamed:
                yield events_from_completion(_loads(await resp.read(), self.name))
                return
            async for lines in read_lines(resp.content.iter_any()):  # the SSE decode loop, inline: it is hot
                events = decoder.feed(lines)
                if events:
                    yield events
                if decoder.error is not None:
                    raise decoder.error
                if decoder.done:
                    return
            raise UpstreamError(f"{self.name} ended the stream before it was complete")

    async def _images(self, request: ChatRequest) -> list[Event]:
        """xAI's ``/v1/images/generations`` (``/v1/images/edits`` for an edit): one ``Image``
        Event per image."""
        path = "/images/edits" if request.kind == "image_edit" else "/images/generations"
        async with self._post(path, {**request.body, "model": request.upstream_model}) as resp:
            data = _loads(await resp.read(), self.name)
        return events_from_images(data, self.name)

    @asynccontextmanager
    async def _post(self, path: str, body: dict[str, Any]) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer of ``POST {base_url}{path}`` with ``body`` as JSON: the one way every call
        is made (proxy, ``x-request-id``, the API key, a large body written in pieces); a
        refusal (status >= 400) and a transport failure are raised as the gateway's errors."""
        async with (
            converted(self.name),
            self._session.post(
                self.base_url + path,
                data=request_body(orjson.dumps(body)),
                headers=with_request_id(self._headers),
                proxy=self._proxy,
            ) as resp,
        ):
            if resp.status >= 400:
                raise await _error_from(resp, self.name)
            yield resp


def _chat_body(request: ChatRequest) -> dict[str, Any]:
    """The client's chat body for xAI: its model, and usage asked for when streamed."""
    body = dict(request.body)
    body["model"] = request.upstream_model
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream_options", None)
    return body


def _responses_body(request: ChatRequest) -> dict[str, Any]:
    """The Responses body for xAI: always streamed (one decoder for both shapes of answer)."""
    return {**request.body, "model": request.upstream_model, "stream": True}


def events_from_images(data: Any, upstream: str) -> list[Event]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise UpstreamError(f"{upstream} sent an image response without images")
    out: list[Event] = []
    for item in items:
        if not isinstance(item, dict) or not (item.get("url") or item.get("b64_json")):
            raise UpstreamError(f"{upstream} sent an image without a url or b64_json")
        b64 = item.get("b64_json")
        if isinstance(b64, str) and b64.startswith("data:"):
            b64 = b64.partition(",")[2]  # xAI has sent data URLs here; OpenAI's shape is bare base64
        out.append(
            Image(
                url=item.get("url"),
                b64_json=b64 or None,
                revised_prompt=str(item.get("revised_prompt") or ""),
            )
        )
    out.append(Finish("stop"))
    return out


def _loads(raw: bytes, upstream: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"{upstream} sent a malformed response: {raw[:80]!r}") from exc


class ChunkDecoder(SSEDecoder):
    """Turns ``data:`` lines of OpenAI chat chunks into Events."""

    __slots__ = ("finished",)

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.finished = False

    def _feed(self, lines: list[bytes], out: list[Event]) -> None:
        # The hot loop of every stream: one iteration per line, kept flat and local.
        append = out.append
        loads = orjson.loads
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event:/id: fields
            payload = line[5:]
            if len(payload) < 10:
                if payload.strip() == b"[DONE]":
                    self.done = True
                    break
                if not payload.strip():
                    continue
            try:
                chunk = loads(payload)
            except orjson.JSONDecodeError:
                raise self.malformed(payload) from None
            if "error" in chunk:
                raise _error_from_body(502, chunk, self.upstream)
            choices = chunk.get("choices")
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta:
                    text = delta.get("content")
                    if text and len(delta) == 1:  # the common case: nothing but text
                        append(TextDelta(text))
                    else:
                        _delta_events(delta, out)
                reason = choice.get("finish_reason")
                if reason and not self.finished:
                    self.finished = True
                    append(Finish(reason))
            usage = chunk.get("usage")
            if usage:
                append(usage_from(usage))
        if self.done and not self.finished:
            self.finished = True
            append(Finish("stop"))


def _delta_events(delta: dict[str, Any], out: list[Event]) -> None:
    reasoning = delta.get("reasoning_content")
    if reasoning:
        out.append(ReasoningDelta(reasoning))
    content = delta.get("content")
    if content:
        out.append(TextDelta(content))
    for call in delta.get("tool_calls") or ():
        out.append(_tool_delta(call))


def _tool_delta(call: dict[str, Any]) -> ToolCallDelta:
    fn = call.get("function") or {}
    return ToolCallDelta(
        index=int(call.get("index") or 0),
        id=call.get("id"),
        name=fn.get("name"),
        arguments=fn.get("arguments") or "",
    )


def usage_from(u: dict[str, Any]) -> Usage:
    """Usage with OpenAI's meaning: ``completion_tokens`` includes the reasoning tokens.

    xAI counts reasoning outside ``completion_tokens`` (its ``total_tokens`` adds all three);
    when the total says so, reasoning is folded in, so that prompt + completion = total.
    """
    completion_details = u.get("completion_tokens_details") or {}
    prompt_details = u.get("prompt_tokens_details") or {}
    prompt = int(u.get("prompt_tokens") or 0)
    completion = int(u.get("completion_tokens") or 0)
    reasoning = int(completion_details.get("reasoning_tokens") or 0)
    if reasoning and int(u.get("total_tokens") or 0) == prompt + completion + reasoning:
        completion += reasoning
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
    )


def events_from_completion(data: Any) -> list[Event]:
    """The Events of a non-streamed ``chat.completion``."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamError("xAI sent a response without choices")
    out: list[Event] = []
    reason = "stop"
    for choice in data["choices"][:1]:
        message = choice.get("message") or {}
        if message.get("reasoning_content"):
            out.append(ReasoningDelta(message["reasoning_content"]))
        if message.get("content"):
            out.append(TextDelta(message["content"]))
        for i, call in enumerate(message.get("tool_calls") or ()):
            out.append(_tool_delta({"index": i, **call}))
        reason = choice.get("finish_reason") or reason
    if data.get("usage"):
        out.append(usage_from(data["usage"]))
    out.append(Finish(reason))
    return out


async def _error_from(resp: aiohttp.ClientResponse, upstream: str) -> GatewayError:
    raw = await resp.content.read(_ERROR_BODY_LIMIT)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = {"error": raw.decode("utf-8", "replace").strip()[:500] or resp.reason}
    err = _error_from_body(resp.status, body, upstream)
    if isinstance(err, RateLimited) and err.retry_after is None:
        err = RateLimited(err.message, retry_after=_retry_after(resp.headers.get("Retry-After")))
    return err


def _retry_after(value: str | None, default: float = 1.0) -> float:
    """Seconds from a ``Retry-After`` header; HTTP dates and junk fall back to ``default``."""
    try:
        return max(0.0, float(value)) if value else default
    except ValueError:
        return default


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err:
            return str(err)
        if body.get("message"):
            return str(body["message"])
    return str(body)[:500]


def _refuses_our_key(status: int, body: Any, message: str) -> bool:
    """xAI refusing the gateway's own credentials: 401/403, or its 400 for a bad key (code
    ``Client specified an invalid argument``, message ``Incorrect API key provided: …``). Matched
    exactly, so that a client's own bad request is never taken for the gateway's."""
    if status in (401, 403):
        return True
    code = body.get("code") if isinstance(body, dict) else None
    return status == 400 and code == _INVALID_ARGUMENT and message.startswith("Incorrect API key provided")


_INVALID_ARGUMENT = "Client specified an invalid argument"


def _error_from_body(status: int, body: Any, upstream: str) -> GatewayError:
    message = _error_message(body)
    if _refuses_our_key(status, body, message):
        return UpstreamError(
            f"{upstream} refused the gateway's upstream credentials (XAI_API_KEY); "
            "the operator must set a valid key",
            code="upstream_auth_failed",
        )
    if status == 404:
        return ModelNotFound(message)
    if status == 410:  # xAI retired Live Search: ``search_parameters`` is answered with 410 Gone
        return InvalidRequest(
            f"{upstream} no longer offers Live Search ('search_parameters'): use the Responses API "
            "(POST /v1/responses) with the 'web_search' / 'x_search' tools instead. "
            f"({message})",
            param="search_parameters",
            code="live_search_retired",
        )
    if status == 429:
        return RateLimited(f"{upstream} is rate limiting requests: {message}")
    if status == 413:
        return InvalidRequest(message, code="request_too_large")
    if 400 <= status < 500:
        return InvalidRequest(message)
    if status == 503:
        return UpstreamUnavailable(f"{upstream} is unavailable ({status}): {message}")
    return UpstreamError(f"{upstream} failed ({status}): {message}")
