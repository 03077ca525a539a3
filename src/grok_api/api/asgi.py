"""How answers are sent: one JSON body, or an SSE stream with keep-alives; and the watch that
notices a client going away so the upstream call is cancelled at once. Shared by every surface:
what the bytes are is the surface's Encoder's business."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from ..errors import GatewayError, Unavailable, UpstreamError
from ..upstreams.base import Event

if TYPE_CHECKING:
    from ..pipeline import Encoder, Tally

log = logging.getLogger(__name__)

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def header_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


class DisconnectWatch:
    """Cancels the request's task when its client disconnects (once the body has been read).

    The watching task starts only once the request has taken ``after`` seconds: most requests
    that are over before that never pay for a task, and a client leaving a long one is still
    noticed within ``after`` seconds.
    """

    def __init__(self, receive: Receive, after: float = 0.05) -> None:
        self.gone = False
        self.finished = False  # the last byte is being sent: a disconnect now is the normal end
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(after, self._start)

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.ensure_future(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self.finished:
                    self.gone = True
                    self._task.cancel()
                return

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


class JSONResponse:
    """A complete JSON answer, sent as-is."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = _JSON_HEADERS + header_list(headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class SSEResponse:
    """Streams the encoded Events, passing each batch through the request's Tally first.

    ``first`` is the first batch when it came before the headers had to go; otherwise
    ``pending`` is still producing it, and the stream starts at once with keep-alive comments.
    The encoder's keep-alive (an SSE comment or the surface's ping) is also sent whenever the
    upstream is silent for ``keepalive`` seconds, so that proxies do not cut a long wait. A
    failure after the stream began ends it in-band, in the encoder's error shape.
    """

    def __init__(
        self,
        encoder: Encoder,
        rest: AsyncIterator[Sequence[Event]],
        *,
        tally: Tally,
        headers: dict[str, str],
        keepalive: float,
        first: Sequence[Event] | None = None,
        pending: asyncio.Future[Sequence[Event]] | None = None,
        on_error: Callable[[GatewayError], None] = lambda exc: None,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self.tally = tally
        self.rest = rest
        self.headers = headers
        self.keepalive = keepalive
        self.first = first
        self.pending = pending
        self.on_error = on_error
        self.on_done = on_done
        self.watch: DisconnectWatch | None = None
        self._last = 0.0
        self.bytes_out = 0  # for the access log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._send_all(send)
        except asyncio.CancelledError:
            if self.watch is None or not self.watch.gone:
                # not the client: the server is stopping and the grace period is over
                with contextlib.suppress(Exception):
                    cut = Unavailable("The gateway is shutting down; this answer was cut short.")
                    body = self.encoder.error(cut)
                    await send({"type": "http.response.body", "body": body, "more_body": False})
            raise
        finally:
            if self.pending is not None:
                self.pending.cancel()
            await aclose(self.rest)

    async def _send_all(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": _SSE_HEADERS + header_list(self.headers),
            }
        )
        self._last = time.monotonic()
        loop = asyncio.get_running_loop()
        # the keep-alive task starts only if the stream is still going after one interval
        keepalive: list[asyncio.Task[None]] = []
        timer = loop.call_later(
            self.keepalive, lambda: keepalive.append(loop.create_task(self._keep_alive(send)))
        )
        try:
            tail = await self._relay(send)
        finally:
            timer.cancel()
            for task in keepalive:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.watch is not None:
            self.watch.finished = True
        self.bytes_out += len(tail)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _relay(self, send: Send) -> bytes:
        encode = self.encoder.encode
        add = self.tally.add
        try:
            first = self.first
            if first is None:
                assert self.pending is not None
                try:
                    first = await self.pending
                except StopAsyncIteration:
                    raise UpstreamError("The upstream ended the answer without sending anything.") from None
            add(first)
            await self._send(send, encode(first))
            async for batch in self.rest:
                add(batch)
                data = encode(batch)
                if data:
                    self._last = time.monotonic()
                    self.bytes_out += len(data)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            tail = self.encoder.finish()
            if self.on_done is not None:
                self.on_done()
            return tail
        except GatewayError as exc:
            self.on_error(exc)
            log.warning("stream cut by upstream error: %s", exc.message, extra={"status": exc.status})
            return self.encoder.error(exc)

    async def _send(self, send: Send, data: bytes) -> None:
        self._last = time.monotonic()
        self.bytes_out += len(data)
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _keep_alive(self, send: Send) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._last + self.keepalive - time.monotonic()))
            if time.monotonic() - self._last >= self.keepalive:
                await self._send(send, self.encoder.keepalive)


async def aclose(it: Any) -> None:
    """Closes an upstream's event iterator, releasing its connection."""
    close = getattr(it, "aclose", None)
    if close is not None:
        try:
            await close()
        except GatewayError:
            log.debug("upstream error while closing a stream", exc_info=True)
