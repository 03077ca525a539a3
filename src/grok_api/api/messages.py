"""``POST /v1/messages`` (Anthropic's Messages API) and ``POST /v1/messages/count_tokens``.

The body is translated into the pipeline's ChatRequest (:mod:`.messages_request`), so every
upstream serves it, and the answer is encoded by :mod:`grok_api.stream_messages`. Every error on
these paths — authentication, limits, validation, upstream failures — is in Anthropic's shape
``{"type": "error", "error": {"type", "message"}}``. Keys come as ``x-api-key`` (what Anthropic's
SDKs send) or ``Authorization: Bearer``; ``anthropic-version`` and ``anthropic-beta`` headers are
accepted and not needed.

``count_tokens`` answers an estimate (4 characters a token plus 4 a message, the gateway's own
rule), not a tokenizer's count: neither upstream offers a token counter for this shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..bounds import check_identifier, check_values
from ..errors import GatewayError
from ..pipeline import Call, Surface, check_content_type, parse_json, read_body
from ..recent import CURRENT
from ..store import KeyRecord
from ..stream_messages import MessageAggregator, MessageStreamEncoder, error_body
from ..upstreams.base import ChatRequest
from ..usage import estimate_prompt_tokens
from .chat import Delegate
from .deps import Gateway, gateway
from .messages_request import thinking_enabled, to_chat
from .schemas import check_bounds
from .surface_schemas import COUNT_TOKENS, MESSAGES, json_body

router = APIRouter()

PATH = "/v1/messages"


class MessagesSurface:
    name = "messages"
    forms = False

    @staticmethod
    def prepare(gw: Gateway, key: KeyRecord, body: Any, raw: bytes) -> Call:
        chat = to_chat(body)
        check_bounds(chat, gw.settings, raw)
        messages = chat["messages"]
        estimate = estimate_prompt_tokens(messages)
        stream = chat["stream"]
        model = chat["model"]
        thinking = thinking_enabled(body)
        request = ChatRequest(model=model, upstream_model=model, messages=messages, stream=stream, body=chat)
        encoder: MessageStreamEncoder | MessageAggregator
        if stream:
            encoder = MessageStreamEncoder(model, thinking=thinking, prompt_estimate=estimate)
        else:
            encoder = MessageAggregator(model, thinking=thinking, prompt_estimate=estimate)
        return Call(request, encoder, prompt_estimate=estimate, answer_tokens=chat["max_tokens"])

    @staticmethod
    def error_body(exc: GatewayError) -> bytes:
        return error_body(exc)


SURFACE: Surface = MessagesSurface()


def _error(exc: GatewayError) -> Response:
    return Response(
        error_body(exc), status_code=exc.status, headers=exc.headers, media_type="application/json"
    )


@router.post(
    PATH,
    openapi_extra=json_body(MESSAGES),
    summary="Create a message (Anthropic's Messages API; streamed as SSE when stream=true)",
)
async def create_message(request: Request) -> Response:
    return Delegate(request.app.state.gateway, SURFACE)


@router.post(
    PATH + "/count_tokens",
    openapi_extra=json_body(COUNT_TOKENS),
    summary="Count a message's input tokens (an estimate)",
)
async def count_tokens(request: Request) -> Response:
    """The same checks as a message up to the model (bounds, a key past its rate refused before its
    body is read), and the access line names the key and model; nothing is charged."""
    gw = gateway(request)
    record = CURRENT.get()
    try:
        key = await gw.auth.authenticate(request.headers, request.client.host if request.client else "")
        if record is not None:
            record.key_id, record.key_name = key.id, key.name
        gw.limiter.refusals.check(key)
        headers = dict(request.headers)
        check_content_type(headers)
        raw = await read_body(request.receive, headers, gw.settings.max_body_bytes)
        await check_values(raw, gw.settings.max_json_elements)
        body = parse_json(raw)
        if isinstance(body, dict):
            body = {**body, "max_tokens": 1, "stream": False}  # not needed to count
        chat = to_chat(body)
        check_bounds(chat, gw.settings, raw)
        check_identifier(chat["model"], "model")
        if record is not None:
            record.model = chat["model"]
        gw.auth.check_model(key, chat["model"])
    except GatewayError as exc:
        return _error(exc)
    tokens = estimate_prompt_tokens(chat["messages"])
    tokens += sum(len(str(t)) // 4 for t in chat.get("tools", ()))
    return Response(f'{{"input_tokens":{tokens}}}', media_type="application/json")
