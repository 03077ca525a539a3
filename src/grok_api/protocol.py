"""uvicorn's httptools protocol with the bounds a public server needs.

- request line + headers over ``max_header_bytes`` → 431, connection closed (httptools itself
  would buffer a header of any size);
- headers that do not arrive within ``header_timeout`` seconds, or a body that stops for
  ``body_timeout`` seconds before its end → 408, connection closed (a connection that sends
  nothing at all is closed quietly);
- more than ``max_connections`` open connections → the new one gets a 503 and is closed.

Timers are armed only when a request is *incomplete* after a network read, so an ordinary
request (headers and body in one read) costs one counter and no timer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(slots=True, frozen=True)
class Bounds:
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 30.0
    body_timeout: float = 60.0
    max_connections: int = 4096


def _bounds_of(config: Config) -> Bounds:
    """The bounds of the gateway ``config`` serves (its ``app.state.settings``), found once."""
    found: Bounds | None = getattr(config, "_grok_api_bounds", None)
    if found is not None:
        return found
    app: Any = config.loaded_app
    while app is not None and getattr(getattr(app, "state", None), "settings", None) is None:
        app = getattr(app, "app", None)
    settings = app.state.settings if app is not None else None
    found = (
        Bounds(
            settings.max_header_bytes,
            settings.request_header_timeout,
            settings.request_body_timeout,
            settings.max_connections,
        )
        if settings is not None
        else Bounds()
    )
    config._grok_api_bounds = found  # type: ignore[attr-defined]
    return found


def _reply(status: int, reason: str, message: str, code: str) -> bytes:
    body = orjson.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """See the module's docstring."""

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.bounds = _bounds_of(config)
        self._in_head = True  # waiting for (the rest of) a request's headers
        self._head_bytes = 0
        self._in_body = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._discarding = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.bounds.max_connections:
            self._refuse(
                503, "Service Unavailable", "The gateway has too many open connections.", "overloaded"
            )
            return
        self._arm(self.bounds.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing() or self._discarding:
            return
        if self._in_head and self._head_bytes:
            if self._head_bytes > self.bounds.max_header_bytes:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    f"The request's headers are larger than {self.bounds.max_header_bytes} bytes.",
                    "headers_too_large",
                )
            elif self._timer is None:
                self._arm(self.bounds.header_timeout)
        elif self._in_body:
            self._deadline = self.loop.time() + self.bounds.body_timeout
            if self._timer is None:
                self._arm(self.bounds.body_timeout)

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body = False, True
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._in_body, self._head_bytes = True, False, 0
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds
        self._timer = self.loop.call_at(self._deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._discarding:
            return
        now = self.loop.time()
        if self._in_body:
            if now < self._deadline or self.flow.read_paused:  # more arrived, or the app reads slowly
                self._timer = self.loop.call_at(max(self._deadline, now + 1.0), self._expired)
            elif self.cycle is not None and self.cycle.response_started:
                self.transport.close()
            else:
                self._refuse(
                    408, "Request Timeout", "The request body did not arrive in time.", "request_timeout"
                )
            return
        if self.cycle is not None and not self.cycle.response_complete:
            if self._head_bytes:  # a pipelined request waits for the one being answered
                self._arm(self.bounds.header_timeout)
            return
        if not self._head_bytes:
            self.transport.close()  # a connection that never sent a request
            return
        self._refuse(408, "Request Timeout", "The request headers did not arrive in time.", "request_timeout")

    def _refuse(self, status: int, reason: str, message: str, code: str) -> None:
        """Answers and closes; what the client still sends for a moment is read and dropped, so that
        the close is not a reset that would destroy the answer before the client reads it."""
        self._disarm()
        self._discarding = True
        self.transport.write(_reply(status, reason, message, code))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(1.0, self.transport.close)
        else:
            self.transport.close()
