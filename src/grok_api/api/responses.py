"""``POST /v1/responses`` (the Responses API surface of the pipeline), ``GET`` and ``DELETE
/v1/responses/{id}``.

Where a request goes decides how it is served:

- **xAI's API** serves the Responses API itself: the body is forwarded to its
  ``/v1/responses`` (server-side tools, reasoning, structured output and xAI's stored state work
  as xAI documents them) and its event stream decoded into Events. ``previous_response_id`` is
  passed on when the earlier response was made there too; the gateway checks first that it
  belongs to the calling key.
- **grok.com** takes messages only: the conversation is rebuilt from the stored responses
  (``previous_response_id``) and sent as chat messages, which the grok.com upstream recognises
  as a continuation of the same grok.com conversation. What grok.com cannot do (tools, images,
  structured output, sampling and length controls) is refused with a 400.

Every answer with ``store`` (the default) is kept, owned by the key that made it, for
``GROK_API_RESPONSES_TTL`` seconds; another key's id reads as unknown (404).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request

from ..conversations import text_of
from ..errors import GatewayError, InvalidRequest, NotFound, Unavailable
from ..pipeline import Call, Surface
from ..store import KeyRecord
from ..store.responses import ResponseStore, StoredResponse
from ..upstreams.base import ChatRequest
from ..usage import estimate_prompt_tokens
from .chat import Delegate
from .deps import Gateway, gateway
from .responses_encode import ResponsesEncoder
from .responses_input import (
    ResponsesRequest,
    references,
    resolve_references,
    to_input,
    to_messages,
    validate_responses,
)
from .schemas import Bounds, check_bounds

router = APIRouter()

PATH = "/v1/responses"
LATE_WRITE_GRACE = 0.1  # seconds a follow-up waits for its previous response to be stored elsewhere
_WEB_REFUSED = ("max_output_tokens", "temperature", "top_p", "reasoning", "parallel_tool_calls")


class ResponsesSurface:
    name = "responses"

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
        turn = _Turn(gw, key, call, upstream, messages, instructions)
        if referenced and isinstance(req.input, list):
            turn.referenced = (req, req.input)
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
        messages: list[dict[str, Any]],
        instructions: list[dict[str, Any]],
    ) -> None:
        self.gw, self.key, self.call, self.upstream = gw, key, call, upstream
        self.messages = messages
        self.instructions = instructions
        self.history: list[dict[str, Any]] = []
        self.referenced: tuple[ResponsesRequest, list[dict[str, Any]]] | None = None

    async def load(self) -> None:
        if self.referenced is not None:
            await self._resolve(*self.referenced)
        if self.call.request.body.get("previous_response_id"):
            await self._continue()

    async def _resolve(self, req: ResponsesRequest, items: list[dict[str, Any]]) -> None:
        """``item_reference`` items replaced by the key's own stored items they name."""
        store = _store(self.gw)
        resolved = await resolve_references(items, lambda item_id: store.find_item(item_id, self.key.id))
        self.messages = to_messages(resolved)
        _check_size(self.messages, self.gw.settings)
        if self.upstream != "xai":
            _refuse_for_web(req, self.messages)
        request = self.call.request
        request.messages = [*self.instructions, *self.messages]
        request.body = {**request.body, "input": resolved}
        self.call.prompt_estimate = estimate_prompt_tokens(request.messages)

    async def _continue(self) -> None:
        request = self.call.request
        previous_id = str(request.body["previous_response_id"])
        store = _store(self.gw)
        previous = await store.get(previous_id, self.key.id)
        if previous is None:
            # written just now by another worker, perhaps: its write may still be under way
            await asyncio.sleep(LATE_WRITE_GRACE)
            previous = await store.get(previous_id, self.key.id)
        if previous is None:
            raise NotFound(
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        self.history = previous.history
        _check_size([*self.history, *self.messages], self.gw.settings)  # as a chat's whole history
        request.messages = [*self.instructions, *self.history, *self.messages]
        self.call.prompt_estimate = estimate_prompt_tokens(request.messages)
        if self.upstream == "xai" and previous.upstream != "xai":
            # made elsewhere: xAI has no state to continue, so it gets the conversation itself
            body = {k: v for k, v in request.body.items() if k != "previous_response_id"}
            body["input"] = to_input([*self.history, *self.messages])
            request.body = body

    def save(self) -> None:
        encoder = self.call.encoder
        assert isinstance(encoder, ResponsesEncoder)
        now = time.time()
        answer: dict[str, Any] = {"role": "assistant", "content": encoder.output_text()}
        calls = [
            {"id": i.call_id, "type": "function", "function": {"name": i.name, "arguments": i.text()}}
            for i in encoder.items
            if i.kind == "function_call"
        ]
        if calls:
            answer["tool_calls"] = calls
        store = _store(self.gw)
        store.save(
            StoredResponse(
                id=encoder.id,
                key_id=self.key.id,
                model=self.call.request.model,
                upstream=self.upstream,
                created_at=encoder.created_at,
                expires_at=store.expiry(now),
                response=encoder.response(),
                history=[*self.history, *self.messages, answer],
            )
        )


def _store(gw: Gateway) -> ResponseStore:
    if gw.responses is None:
        raise Unavailable("Stored responses are not available on this gateway.")
    return gw.responses


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


async def _owned(request: Request, response_id: str) -> tuple[ResponseStore, KeyRecord]:
    gw = gateway(request)
    key = await gw.auth.authenticate(request.headers, request.client.host if request.client else "")
    return _store(gw), key


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"No response with id '{response_id}' found.", param="response_id")


@router.get("/v1/responses/{response_id}", summary="Retrieve a stored response")
async def get_response(response_id: str, request: Request) -> dict[str, Any]:
    store, key = await _owned(request, response_id)
    found = await store.get(response_id, key.id)
    if found is None:
        raise _not_found(response_id)
    return found.response


@router.delete("/v1/responses/{response_id}", summary="Delete a stored response")
async def delete_response(response_id: str, request: Request) -> dict[str, Any]:
    store, key = await _owned(request, response_id)
    if not await store.delete(response_id, key.id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


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
