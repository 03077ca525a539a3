"""The one request pipeline every surface's POST endpoint runs through.

    authenticate → read + bound + parse the body → surface.prepare (validate, build the
    ChatRequest and the Encoder) → model allowed? → route → limiter admits (a Ticket)
    → upstream.stream(request) → Encoder → settle (usage + ticket), exactly once

A surface (chat completions, Responses, Messages, images) contributes only two things: how it
parses and validates its body (:meth:`Surface.prepare`) and how it encodes the Events
(:class:`Encoder`) — including how an error is shown in its shape, before the first byte
(:meth:`Surface.error_body`) and after it (:meth:`Encoder.error`). Admission, the disconnect
watch, keep-alives, the wait for the first batch and usage accounting live here once: usage is
tallied by the pipeline from the Events it passes on (:class:`Tally`), never by an encoder.

This is the hot path, so it is plain ASGI: ``GatewayApp`` calls :func:`serve` directly, before
FastAPI's routing and dependency machinery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.types import Receive, Scope, Send

from .api.asgi import DisconnectWatch, JSONResponse, SSEResponse
from .auth import duplicate_credentials, duplicated
from .bounds import ANSWER_CAPS, cap_answer, check_identifier, check_values
from .errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    UpstreamError,
)
from .forms import is_form, parse_form
from .limits import Ticket
from .observe import client_gone, failed
from .recent import RequestRecord
from .tracing import RequestTrace
from .upstreams.base import (
    ChatRequest,
    Event,
    Finish,
    Image,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from .usage import estimate_tokens

if TYPE_CHECKING:
    from .api.deps import Gateway
    from .store import KeyRecord

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """One answer's Events in one surface's wire shape.

    ``stream`` says whether the answer goes out as Server-Sent Events (``encode`` returns the
    frames for each batch, ``finish`` the frames that end a completed stream) or as one JSON
    body (``encode`` only collects and returns ``b""``; ``finish`` returns the body).
    ``error`` ends a stream that had already begun, in-band; ``keepalive`` is what is sent when
    the upstream is silent for a while (an SSE comment, or the surface's ping event).
    """

    stream: bool

    @property
    def keepalive(self) -> bytes:
        """Read each time one is sent, so a surface may open its stream with the first one."""
        ...

    def encode(self, batch: Sequence[Event]) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, exc: GatewayError) -> bytes: ...


@dataclass(slots=True)
class Call:
    """What a surface made of a request: the upstream request, its encoder, and how many
    completion tokens to reserve (``None``: the deployment's default reserve).

    Two optional hooks, for surfaces that keep state (chat completions has neither):
    ``load`` is awaited once the key may use the model and before the request is admitted
    (e.g. to fetch a stored conversation; it may update ``request`` and ``prompt_estimate``);
    ``done`` is called once the answer is complete, before its last bytes are sent (e.g. to
    store it, in the background). Neither runs for a request that failed.
    """

    request: ChatRequest
    encoder: Encoder
    prompt_estimate: int
    answer_tokens: int | None = None
    load: Callable[[], Awaitable[None]] | None = None
    done: Callable[[], None] | None = None


class Surface(Protocol):
    """One front-end API: its name, how it turns a body into a :class:`Call`, and its error shape.

    ``forms``: whether it also takes ``multipart/form-data`` bodies; ``prepare`` then gets such a
    body as a :class:`~grok_api.forms.Form` (a JSON body is parsed JSON either way).
    """

    name: str
    forms: bool

    def prepare(self, gw: Gateway, key: KeyRecord, body: Any, raw: bytes) -> Call: ...

    def error_body(self, exc: GatewayError) -> bytes: ...


class Tally:
    """What an answer amounted to, counted from the Events the pipeline passed on."""

    __slots__ = ("delivered_chars", "finish_reason", "first_at", "images", "last_at", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.delivered_chars = 0
        self.first_at = 0.0  # perf_counter when the first batch came (0: none yet)
        self.last_at = 0.0  # … and the last one
        self.images = 0

    def add(self, batch: Sequence[Event]) -> None:
        self.last_at = now = time.perf_counter()
        if not self.first_at:
            self.first_at = now
        for ev in batch:
            kind = type(ev)
            if kind is TextDelta or kind is ReasoningDelta:
                self.delivered_chars += len(ev.text)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                self.delivered_chars += len(ev.arguments)  # type: ignore[union-attr]
            elif kind is Usage:
                self.usage = ev  # type: ignore[assignment]
            elif kind is Finish:
                self.finish_reason = ev.reason  # type: ignore[union-attr]
            elif kind is Image:
                self.images += 1


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class Flight:
    """One request's bookkeeping: who asked, what was admitted, and what it amounted to."""

    __slots__ = (
        "error",
        "key_id",
        "model",
        "prompt_estimate",
        "record",
        "streaming",
        "tally",
        "ticket",
        "trace",
        "watch",
    )

    def __init__(self, record: RequestRecord, trace: RequestTrace | None) -> None:
        self.key_id = ""
        self.model = ""
        self.ticket: Ticket | None = None
        self.prompt_estimate = 0
        self.tally: Tally | None = None  # set once the upstream was asked
        self.error = False
        self.watch: DisconnectWatch | None = None
        self.record = record  # what the access log, histograms and recent requests see
        self.trace = trace  # None unless tracing is on
        self.streaming = False

    def headers(self) -> dict[str, str]:
        rid = {"x-request-id": self.record.id}
        return {**self.ticket.headers, **rid} if self.ticket is not None else rid

    def observe(self, gw: Gateway) -> None:
        """Completes the request's record from its tally and hands it to the observer."""
        record, tally = self.record, self.tally
        if tally is not None:
            record.t_first, record.t_upstream_end = tally.first_at, tally.last_at
            usage = tally.usage
            if usage is not None:
                record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens
                record.reasoning_tokens, record.cached_tokens = usage.reasoning_tokens, usage.cached_tokens
                record.estimated = usage.estimated
            elif tally.delivered_chars or not self.error:
                record.prompt_tokens = self.prompt_estimate
                record.completion_tokens = estimate_tokens(tally.delivered_chars)
                record.estimated = True
        if self.streaming:
            gw.observer.stream_ended()
        gw.observer.finish(record, self.trace)

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
                images=tally.images,
            )
            gw.metrics.tokens_total.inc(used)
        (gw.metrics.requests_error if self.error else gw.metrics.requests_ok).inc()
        gw.limiter.settle(self.ticket, used)
        self.ticket = None


async def serve(gw: Gateway, surface: Surface, scope: Scope, receive: Receive, send: Send) -> None:
    """Serves one request of ``surface``; every failure is answered in that surface's shape."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    flight = Flight(*gw.observer.start(scope["method"], scope["path"], surface.name, headers))
    record = flight.record
    respond: JSONResponse | SSEResponse | None = None
    gw.memory.started()
    try:
        try:
            respond = await _handle(gw, surface, scope, receive, flight, headers)
        except GatewayError as exc:
            flight.error = True
            failed(record, exc)
            if exc.status >= 500:
                log.warning("%s request failed: %s", surface.name, exc.message, extra={"status": exc.status})
            elif isinstance(exc, RateLimited) and flight.ticket is None:
                gw.metrics.rate_limited.labels(exc.code or "").inc()
            respond = JSONResponse(exc.status, surface.error_body(exc), {**flight.headers(), **exc.headers})
        except ClientGone:  # ordinary, and anyone with a key could flood the log with it
            log.debug("%s: the client left before its request was read", surface.name)
            client_gone(record)
            return
        except Exception:
            flight.error = True
            log.exception("unexpected error in %s", surface.name)
            err = GatewayError("The gateway failed to handle this request.")
            failed(record, err)
            respond = JSONResponse(err.status, surface.error_body(err), flight.headers())
        if isinstance(respond, SSEResponse):
            respond.watch = flight.watch
            record.status = 200
            flight.streaming = True
            gw.observer.stream_started()
        else:
            record.status = respond.status
            record.bytes_out = len(respond.body)
            if flight.watch is not None:
                flight.watch.finished = True
        await _respond(respond, flight.trace, scope, receive, send)
    except asyncio.CancelledError:
        if flight.watch is None or not flight.watch.gone:
            raise
        client_gone(record)
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the client left: the upstream call was cancelled, the request is done
    finally:
        if flight.watch is not None:
            flight.watch.stop()
        if isinstance(respond, SSEResponse):
            record.bytes_out = respond.bytes_out
        flight.settle(gw)
        flight.observe(gw)
        gw.memory.finished()


async def _respond(
    respond: JSONResponse | SSEResponse,
    trace: RequestTrace | None,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    if trace is None:
        await respond(scope, receive, send)
        return
    with trace.phase("encode"):
        await respond(scope, receive, send)


async def _handle(
    gw: Gateway, surface: Surface, scope: Scope, receive: Receive, flight: Flight, headers: dict[str, str]
) -> JSONResponse | SSEResponse:
    if twice := duplicate_credentials(scope["headers"]):  # which one counts would be a guess
        raise duplicated(twice)
    client = scope.get("client")
    trace, record = flight.trace, flight.record
    if trace is None:
        key = await gw.auth.authenticate(headers, client[0] if client else "")
    else:
        with trace.phase("authenticate"):
            key = await gw.auth.authenticate(headers, client[0] if client else "")
    record.key_id, record.key_name = key.id, key.name
    gw.limiter.refusals.check(key)  # a key past its rate is refused before the costly parts
    form = check_content_type(headers, surface.forms)
    raw = await read_body(receive, headers, gw.settings.max_body_bytes)
    if form is None:
        await check_values(raw, gw.settings.max_json_elements)
        body = parse_json(raw)
    else:
        body = parse_form(raw, form)
    call = surface.prepare(gw, key, body, raw)
    request = call.request
    check_identifier(request.model, "model")
    gw.auth.check_model(key, request.model)
    if call.load is not None:
        await call.load()
    upstream, request.upstream_model = gw.router.route(request.model)
    request.key_id = key.id
    flight.key_id, flight.model = key.id, request.model
    record.model, record.upstream, record.stream = request.model, upstream.name, call.encoder.stream
    flight.prompt_estimate = call.prompt_estimate
    answer = call.answer_tokens or gw.settings.completion_reserve
    if trace is None:
        flight.ticket = await gw.limiter.acquire(key, call.prompt_estimate + answer)
    else:
        with trace.phase("limiter"):
            flight.ticket = await gw.limiter.acquire(key, call.prompt_estimate + answer)
        trace.upstream_started(upstream.name, request.upstream_model)
    if flight.ticket.granted is not None and request.kind in ANSWER_CAPS:  # not image generation
        cap_answer(request.body, flight.ticket.granted - call.prompt_estimate, request.kind)
    flight.watch = DisconnectWatch(receive)  # from here on, a client that leaves cancels the work
    record.t_upstream = time.perf_counter()
    events = aiter(upstream.stream(request))
    tally = flight.tally = Tally()
    encoder = call.encoder
    if not encoder.stream:
        async for batch in events:
            tally.add(batch)
            encoder.encode(batch)
        body = encoder.finish()
        if call.done is not None:
            call.done()
        return JSONResponse(200, body, flight.headers())
    return await _stream(gw, flight, call, events)


async def _stream(
    gw: Gateway, flight: Flight, call: Call, events: AsyncIterator[Sequence[Event]]
) -> SSEResponse:
    """Waits a keep-alive interval for the first batch before committing to a 200 stream, so that
    an upstream that fails at once gets its real status; a slow one gets keep-alives instead."""
    first_task: asyncio.Future[Sequence[Event]] = asyncio.ensure_future(anext(events))
    try:
        await asyncio.wait({first_task}, timeout=gw.settings.sse_keepalive)
    except asyncio.CancelledError:
        first_task.cancel()
        raise

    if first_task.done() and not first_task.cancelled() and first_task.exception() is None:
        assert flight.tally is not None
        flight.tally.first_at = time.perf_counter()  # it came during the wait, not when relayed

    def on_error(exc: GatewayError) -> None:
        flight.error = True
        failed(flight.record, exc, status=200)
        gw.metrics.stream_errors.inc()

    assert flight.tally is not None
    common: dict[str, Any] = {
        "tally": flight.tally,
        "headers": flight.headers(),
        "keepalive": gw.settings.sse_keepalive,
        "on_error": on_error,
        "on_done": call.done,
    }
    encoder = call.encoder
    if not first_task.done():
        return SSEResponse(encoder, events, pending=first_task, **common)
    try:
        first = first_task.result()
    except StopAsyncIteration:
        raise UpstreamError("The upstream ended the answer without sending anything.") from None
    return SSEResponse(encoder, events, first=first, **common)


def check_content_type(headers: dict[str, str], forms: bool = False) -> str | None:
    """A body that says it is not JSON is refused (415); one that says nothing is read as JSON.
    With ``forms``, a ``multipart/form-data`` body is taken too: its Content-Type is returned."""
    kind = headers.get("content-type")
    if kind is None:
        return None
    if forms and is_form(kind):
        return kind
    if "json" not in kind.lower():
        also = " or 'multipart/form-data'" if forms else ""
        raise UnsupportedMediaType(
            f"Content-Type '{kind}' is not supported; send the body as 'Content-Type: application/json'{also}."
        )
    return None


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
    if not raw or raw.isspace():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).", code="invalid_json"
        ) from None
