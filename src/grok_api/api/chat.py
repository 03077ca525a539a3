"""``POST /v1/chat/completions``: authenticate, validate, route, then encode the Events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import orjson
from fastapi import APIRouter, Request, Response
from starlette.types import Message, Receive, Scope, Send

from ..errors import GatewayError, UpstreamError
from ..stream import Aggregator, ChunkEncoder, sse_error
from ..upstreams.base import ChatRequest, Event
from .deps import gateway, read_json
from .schemas import ChatCompletionRequest, validate_chat

log = logging.getLogger(__name__)
router = APIRouter()

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@router.post(
    "/v1/chat/completions",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
        }
    },
    summary="Create a chat completion (streamed as SSE when stream=true)",
)
async def chat_completions(request: Request) -> Response:
    gw = gateway(request)
    key = await gw.auth.authenticate(request.headers)
    body = await read_json(request, gw.settings.max_body_bytes)
    req = validate_chat(body)
    gw.auth.check_model(key, req.model)
    upstream, upstream_model = gw.router.route(req.model)
    chat = ChatRequest(
        model=req.model,
        upstream_model=upstream_model,
        messages=body["messages"],
        stream=bool(req.stream),
        body=body,
        key_id=key.id,
    )
    events = aiter(upstream.stream(chat))
    if not chat.stream:
        agg = Aggregator(req.model)
        async for batch in events:
            agg.add(batch)
        return Response(orjson.dumps(agg.result()), media_type="application/json")
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    encoder = ChunkEncoder(req.model, include_usage=include_usage)
    # The first batch is awaited before any byte is sent, so that an upstream that fails
    # outright gets its real status (4xx/5xx), not a 200 stream carrying an error.
    try:
        first = await anext(events)
    except StopAsyncIteration:
        raise UpstreamError("The upstream ended the answer without sending anything.") from None
    return SSEResponse(encoder, first, events)


class SSEResponse(Response):
    """Streams the encoded Events; a client that goes away cancels the upstream call."""

    def __init__(
        self,
        encoder: ChunkEncoder,
        first: Sequence[Event],
        rest: AsyncIterator[Sequence[Event]],
    ) -> None:
        self.encoder = encoder
        self.first = first
        self.rest = rest
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, task, gone))
        try:
            await self._send_all(send)
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            task.uncancel()
        finally:
            watcher.cancel()
            await _aclose(self.rest)

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        encode = self.encoder.encode
        await send({"type": "http.response.body", "body": encode(self.first), "more_body": True})
        try:
            async for batch in self.rest:
                data = encode(batch)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            tail = self.encoder.close()
        except GatewayError as exc:
            log.warning("stream cut by upstream error: %s", exc.message, extra={"status": exc.status})
            tail = sse_error(exc)
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _watch_disconnect(receive: Receive, task: asyncio.Task[object], gone: asyncio.Event) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            task.cancel()
            return


async def _aclose(it: AsyncIterator[Sequence[Event]]) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(GatewayError):
            await aclose()
