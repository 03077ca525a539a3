"""``POST /v1/chat/completions``: authenticate, validate, route, then encode the Events.

This is the hot path, so it is a plain ASGI endpoint (:func:`chat_endpoint`): ``GatewayApp``
calls it directly, before FastAPI's routing and dependency machinery, which cost more than
the whole request otherwise does. The FastAPI route below exists for the OpenAPI schema and
delegates to the same endpoint, so there is one implementation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from ..errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    UpstreamError,
)
from ..limits import Ticket
from ..stream import Aggregator, ChunkEncoder, Tally
from ..upstreams.base import ChatRequest, Event
from ..usage import estimate_prompt_tokens
from .deps import Gateway
from .responses import DisconnectWatch, JSONResponse, SSEResponse
from .schemas import ChatCompletionRequest, validate_chat

log = logging.getLogger(__name__)
router = APIRouter()

PATH = "/v1/chat/completions"


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class Flight:
    """One request's bookkeeping: who asked, what was admitted, and what it amounted to."""

    __slots__ = ("error", "key_id", "model", "prompt_estimate", "tally", "ticket", "watch")

    def __init__(self) -> None:
        self.key_id = ""
        self.model = ""
        self.ticket: Ticket | None = None
        self.prompt_estimate = 0
        self.tally: Tally | None = None  # set once the upstream was asked
        self.error = False
        self.watch: DisconnectWatch | None = None

    def headers(self) -> dict[str, str]:
        return self.ticket.headers if self.ticket is not None else {}

    def settle(self, gw: Gateway) -> None:
        """Records usage and ends the limiter's hold, exactly once, however the request ended."""
        if self.ticket is None:
            return
        used = 0
        if self.tally is not None:
            tally = self.tally
            used = gw.usage.record(
                self.key_id,
                self.model,
                tally.usage,
                prompt_estimate=self.prompt_estimate,
                delivered_chars=tally.delivered_chars,
                error=self.error,
            )
            gw.metrics.tokens_total.inc(used)
        (gw.metrics.requests_error if self.error else gw.metrics.requests_ok).inc()
        gw.limiter.settle(self.ticket, used)
        self.ticket = None


async def chat_endpoint(gw: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    """Serves one chat completion request; every failure is answered OpenAI-shaped."""
    flight = Flight()
    gw.memory.started()
    try:
        try:
            respond = await _handle(gw, scope, receive, flight)
        except GatewayError as exc:
            flight.error = True
            if exc.status >= 500:
                log.warning("chat request failed: %s", exc.message, extra={"status": exc.status})
            elif isinstance(exc, RateLimited) and flight.ticket is None:
                gw.metrics.rate_limited.labels(exc.code or "").inc()
            respond = JSONResponse(exc.status, exc.json_bytes(), {**flight.headers(), **exc.headers})
        except Exception:
            flight.error = True
            log.exception("unexpected error in chat completions")
            err = GatewayError("The gateway failed to handle this request.")
            respond = JSONResponse(err.status, err.json_bytes())
        if isinstance(respond, SSEResponse):
            respond.watch = flight.watch
        elif flight.watch is not None:
            flight.watch.finished = True
        await respond(scope, receive, send)
    except ClientGone:
        return
    except asyncio.CancelledError:
        if flight.watch is None or not flight.watch.gone:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the client left: the upstream call was cancelled, the request is done
    finally:
        if flight.watch is not None:
            flight.watch.stop()
        flight.settle(gw)
        gw.memory.finished()


async def _handle(gw: Gateway, scope: Scope, receive: Receive, flight: Flight) -> JSONResponse | SSEResponse:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    key = await gw.auth.authenticate(headers, client[0] if client else "")
    check_content_type(headers)
    raw = await read_body(receive, headers, gw.settings.max_body_bytes)
    body = parse_json(raw)
    req = validate_chat(body, gw.settings, raw)
    gw.auth.check_model(key, req.model)
    upstream, upstream_model = gw.router.route(req.model)
    messages = body["messages"]
    flight.key_id, flight.model = key.id, req.model
    flight.prompt_estimate = estimate_prompt_tokens(messages)
    answer = req.max_completion_tokens or req.max_tokens or gw.settings.completion_reserve
    flight.ticket = await gw.limiter.acquire(key, flight.prompt_estimate + answer)
    chat = ChatRequest(
        model=req.model,
        upstream_model=upstream_model,
        messages=messages,
        stream=bool(req.stream),
        body=body,
        key_id=key.id,
    )
    flight.watch = DisconnectWatch(receive)  # from here on, a client that leaves cancels the work
    events = aiter(upstream.stream(chat))
    if not chat.stream:
        agg = Aggregator(req.model)
        flight.tally = agg.tally
        async for batch in events:
            agg.add(batch)
        return JSONResponse(200, orjson.dumps(agg.result()), flight.headers())
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    encoder = ChunkEncoder(req.model, include_usage=include_usage)
    flight.tally = encoder.tally
    return await _stream(gw, flight, encoder, events)


async def _stream(
    gw: Gateway, flight: Flight, encoder: ChunkEncoder, events: AsyncIterator[Sequence[Event]]
) -> SSEResponse:
    """Waits a keep-alive interval for the first batch before committing to a 200 stream, so that
    an upstream that fails at once gets its real status; a slow one gets keep-alives instead."""
    first_task: asyncio.Future[Sequence[Event]] = asyncio.ensure_future(anext(events))
    try:
        await asyncio.wait({first_task}, timeout=gw.settings.sse_keepalive)
    except asyncio.CancelledError:
        first_task.cancel()
        raise

    def on_error(exc: GatewayError) -> None:
        flight.error = True
        gw.metrics.stream_errors.inc()

    common: dict[str, Any] = {
        "headers": flight.headers(),
        "keepalive": gw.settings.sse_keepalive,
        "on_error": on_error,
    }
    if not first_task.done():
        return SSEResponse(encoder, events, pending=first_task, **common)
    try:
        first = first_task.result()
    except StopAsyncIteration:
        raise UpstreamError("The upstream ended the answer without sending anything.") from None
    return SSEResponse(encoder, events, first=first, **common)


def check_content_type(headers: dict[str, str]) -> None:
    """A body that says it is not JSON is refused (415); one that says nothing is read as JSON."""
    kind = headers.get("content-type")
    if kind is not None and "json" not in kind.lower():
        raise UnsupportedMediaType(
            f"Content-Type '{kind}' is not supported; send the body as 'Content-Type: application/json'."
        )


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole request body; 413 as soon as it passes ``limit`` bytes."""
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).", code="invalid_json"
        ) from None


class _Delegate(Response):
    """Hands a request that reached FastAPI's router to the ASGI endpoint."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await chat_endpoint(self.gw, scope, receive, send)


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
    return _Delegate(request.app.state.gateway)
