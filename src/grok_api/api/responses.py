"""``POST /v1/responses``: the Responses API surface of the pipeline (what is stored is read
and deleted through :mod:`.responses_stored`).

Where a request goes decides how it is served:

- **xAI's API** serves the Responses API itself: the body is forwarded to its
  ``/v1/responses`` (server-side tools, reasoning, structured output and xAI's stored state work
  as xAI documents them) and its event stream decoded into Events. ``previous_response_id`` is
  passed on when the earlier response was made there too; the gateway checks first that it
  belongs to the calling key.
- **grok.com** takes messages only: the conversation is rebuilt from the stored responses
  (``previous_response_id``, walked back by :mod:`.responses_history`) and sent as chat
  messages, which the grok.com upstream recognises as a continuation of the same grok.com
  conversation. What grok.com cannot do (tools, images, structured output, sampling and
  length controls) is refused with a 400.

Every answer with ``store`` (the default) is kept, owned by the key that made it, for
``GROK_API_RESPONSES_TTL`` seconds, with its own input items and the id of the response it
continued; another key's id reads as unknown (404).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request

from ..conversations import text_of
from ..errors import GatewayError, InvalidRequest
from ..pipeline import Call, Surface
from ..store import KeyRecord
from ..store.responses import StoredResponse
from ..upstreams.base import ChatRequest
from ..usage import estimate_prompt_tokens
from .chat import Delegate
from .deps import Gateway, gateway
from .responses_encode import ResponsesEncoder
from .responses_history import earlier
from .responses_input import (
    ResponsesRequest,
    references,
    resolve_references,
    stored_input,
    to_input,
    to_messages,
    validate_responses,
)
from .responses_stored import response_store
from .schemas import Bounds, check_bounds

router = APIRouter()

PATH = "/v1/responses"
_WEB_REFUSED = ("max_output_tokens", "temperature", "top_p", "reasoning", "parallel_tool_calls")


class ResponsesSurface:
    name = "responses"
    forms = False

    @staticmethod
    def prepare(gw: Gateway, key: KeyRecord, body: Any, raw: bytes) -> Call:
        if isinstance(body, dict):
            check_bounds(body, gw.settings, raw)  # how deep it nests (this surface has no "messages")
        req = validate_responses(body)
        upstream = gw.router.route(req.model)[0].name
        messages = to_messages(req.input)
        _check_size(messages, gw.settings)
        referenced = references(req.input)
        if upstream != "xai" and not referenced:  # else once the references are resolved
            _refuse_for_web(req, messages)
        stream = bool(req.stream)
        store = req.store is not False
        encoder = ResponsesEncoder(req.model, _echo(body, req, store), stream=stream)
        instructions = [{"role": "system", "content": req.instructions}] if req.instructions else []
        request = ChatRequest(
            model=req.model,
            upstream_model=req.model,
            messages=[*instructions, *messages],
            stream=stream,
            body=body,
            kind="responses" if upstream == "xai" else "chat",
        )
        call = Call(
            request,
            encoder,
            prompt_estimate=estimate_prompt_tokens(request.messages),
            answer_tokens=req.max_output_tokens,
        )
        turn = _Turn(gw, key, call, upstream, req, messages, instructions)
        if req.previous_response_id or referenced:
            call.load = turn.load
        if store:
            call.done = turn.save
        return call

    @staticmethod
    def error_body(exc: GatewayError) -> bytes:
        return exc.json_bytes()


SURFACE: Surface = ResponsesSurface()


class _Turn:
    """One request's conversation: what came before it (``load``) and keeping it (``save``)."""

    def __init__(
        self,
        gw: Gateway,
        key: KeyRecord,
        call: Call,
        upstream: str,
        req: ResponsesRequest,
        messages: list[dict[str, Any]],
        instructions: list[dict[str, Any]],
    ) -> None:
        self.gw, self.key, self.call, self.upstream = gw, key, call, upstream
        self.req = req
        self.input = req.input  # item references resolved, once loaded
        self.messages = messages
        self.instructions = instructions
        self._items: list[dict[str, Any]] | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        """This turn's input items, as stored with its response."""
        if self._items is None:
            self._items = stored_input(self.input)
        return self._items

    async def load(self) -> None:
        if references(self.input):
            await self._resolve()
        if self.req.previous_response_id:
            await self._continue(self.req.previous_response_id)

    async def _resolve(self) -> None:
        """``item_reference`` items replaced by the key's own stored items they name."""
        store = response_store(self.gw)
        assert isinstance(self.input, list)
        resolved = await resolve_references(self.input, lambda ids: store.find_items(ids, self.key.id))
        self.input = resolved
        self.messages = to_messages(resolved)
        _check_size(self.messages, self.gw.settings)
        if self.upstream != "xai":
            _refuse_for_web(self.req, self.messages)
        request = self.call.request
        request.messages = [*self.instructions, *self.messages]
        request.body = {**request.body, "input": resolved}
        self.call.prompt_estimate = estimate_prompt_tokens(request.messages)

    async def _continue(self, previous_id: str) -> None:
        request = self.call.request
        size = len(orjson.dumps(self.items))
        before = await earlier(response_store(self.gw), self.key.id, previous_id, self.gw.settings, size)
        history = before.messages
        _check_size([*history, *self.messages], self.gw.settings)  # as a chat's whole history
        request.messages = [*self.instructions, *history, *self.messages]
        self.call.prompt_estimate = estimate_prompt_tokens(request.messages)
        if self.upstream == "xai" and before.upstream != "xai":
            # made elsewhere: xAI has no state to continue, so it gets the conversation itself
            body = {k: v for k, v in request.body.items() if k != "previous_response_id"}
            body["input"] = to_input([*history, *self.messages])
            request.body = body

    def save(self) -> None:
        encoder = self.call.encoder
        assert isinstance(encoder, ResponsesEncoder)
        store = response_store(self.gw)
        store.save(
            StoredResponse(
                id=encoder.id,
                key_id=self.key.id,
                model=self.call.request.model,
                upstream=self.upstream,
                created_at=encoder.created_at,
                expires_at=store.expiry(time.time()),
                response=encoder.response(),
                input=self.items,
                previous_response_id=self.req.previous_response_id,
            )
        )


def _check_size(messages: list[dict[str, Any]], bounds: Bounds) -> None:
    if len(messages) > bounds.max_messages:
        raise InvalidRequest(
            f"Too many input items: {len(messages)} (at most {bounds.max_messages}).",
            param="input",
            code="too_many_messages",
        )
    chars = sum(len(text_of(m.get("content"))) for m in messages)
    if chars > bounds.max_content_chars:
        raise InvalidRequest(
            f"The input holds {chars} characters (at most {bounds.max_content_chars}).",
            param="input",
            code="content_too_long",
        )


def _refuse_for_web(req: ResponsesRequest, messages: list[dict[str, Any]]) -> None:
    """What grok.com cannot do is refused, never silently dropped."""
    hint = "; use an xAI API model for it."
    if not messages:
        raise InvalidRequest("The grok.com upstream needs at least one input message.", param="input")
    for name in _WEB_REFUSED:
        if getattr(req, name) is not None:
            raise InvalidRequest(f"The grok.com upstream does not support '{name}'{hint}", param=name)
    if req.tools:
        raise InvalidRequest(f"The grok.com upstream does not support tools{hint}", param="tools")
    if req.tool_choice not in (None, "auto", "none"):
        raise InvalidRequest(
            f"The grok.com upstream does not support 'tool_choice'{hint}", param="tool_choice"
        )
    if req.text is not None and req.text.format is not None and req.text.format.type != "text":
        raise InvalidRequest(
            f"The grok.com upstream does not support structured output{hint}", param="text.format"
        )
    for i, m in enumerate(messages):
        content = m.get("content")
        if m.get("role") == "tool" or m.get("tool_calls"):
            raise InvalidRequest(
                f"The grok.com upstream does not support function calls{hint}", param="input"
            )
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if part.get("type") == "image_url" and not part["image_url"]["url"].startswith("data:"):
                raise InvalidRequest(
                    "grok.com takes images as base64 data: URLs (uploaded with your session); the "
                    "gateway does not fetch image URLs for it: send the image's bytes.",
                    param=f"input[{i}].content[{j}].image_url",
                )


def _echo(body: dict[str, Any], req: ResponsesRequest, store: bool) -> dict[str, Any]:
    """The request's parameters as the response object repeats them."""
    echo: dict[str, Any] = {
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": req.reasoning.effort, "summary": None} if req.reasoning else None,
        "store": store,
        "temperature": req.temperature,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": req.tool_choice if req.tool_choice is not None else "auto",
        "tools": [_tool(t) for t in req.tools or ()],
        "top_p": req.top_p,
        "truncation": "disabled",
        "metadata": req.metadata or {},
    }
    if req.user is not None:
        echo["user"] = req.user
    return echo


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        return {"parameters": None, "strict": None, **tool}
    return tool


# The body's schema for the OpenAPI document: its sub-models go to components.schemas.
REQUEST_SCHEMA = ResponsesRequest.model_json_schema(ref_template="#/components/schemas/{model}")
SCHEMA_COMPONENTS: dict[str, Any] = REQUEST_SCHEMA.pop("$defs", {})


@router.post(
    PATH,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}}
    },
    summary="Create a model response (streamed as SSE when stream=true)",
)
async def create_response(request: Request) -> Delegate:
    return Delegate(gateway(request), SURFACE)
