"""``POST /v1/chat/completions``: the chat completions surface of the pipeline.

The pipeline (:mod:`grok_api.pipeline`) does everything but this surface's own parsing and
encoding: :class:`ChatSurface` validates the body and picks the encoder (SSE chunks or one
``chat.completion``). ``GatewayApp`` serves the path as plain ASGI; the FastAPI route below
exists for the OpenAPI schema and delegates to the same pipeline, so there is one
implementation.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from ..errors import GatewayError
from ..pipeline import Call, Surface, serve
from ..store import KeyRecord
from ..stream import Aggregator, ChunkEncoder
from ..upstreams.base import ChatRequest
from ..usage import estimate_prompt_tokens
from .deps import Gateway
from .schemas import ChatCompletionRequest, validate_chat

router = APIRouter()

PATH = "/v1/chat/completions"


class ChatSurface:
    name = "chat"
    forms = False

    @staticmethod
    def prepare(gw: Gateway, key: KeyRecord, body: Any, raw: bytes) -> Call:
        req = validate_chat(body, gw.settings, raw)
        messages = body["messages"]
        stream = bool(req.stream)
        request = ChatRequest(
            model=req.model, upstream_model=req.model, messages=messages, stream=stream, body=body
        )
        if stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            encoder: ChunkEncoder | Aggregator = ChunkEncoder(req.model, include_usage=include_usage)
        else:
            encoder = Aggregator(req.model)
        return Call(
            request,
            encoder,
            prompt_estimate=estimate_prompt_tokens(messages),
            answer_tokens=req.max_completion_tokens or req.max_tokens,
        )

    @staticmethod
    def error_body(exc: GatewayError) -> bytes:
        return exc.json_bytes()


SURFACE: Surface = ChatSurface()


class Delegate(Response):
    """Hands a request that reached FastAPI's router to the pipeline (the hot path normally
    gets there first); one implementation whichever way a request comes."""

    def __init__(self, gw: Gateway, surface: Surface) -> None:
        self.gw = gw
        self.surface = surface
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(self.gw, self.surface, scope, receive, send)


# The body's schema for the OpenAPI document: its sub-models go to components.schemas.
REQUEST_SCHEMA = ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
SCHEMA_COMPONENTS: dict[str, Any] = REQUEST_SCHEMA.pop("$defs", {})


@router.post(
    PATH,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}}
    },
    summary="Create a chat completion (streamed as SSE when stream=true)",
)
async def chat_completions(request: Request) -> Response:
    return Delegate(request.app.state.gateway, SURFACE)
