"""One place that sees every request start and settle: ids, access log, histograms, traces.

The pipeline calls :meth:`Observer.start` when a request arrives (it picks the request id,
puts it in the logging context, starts the trace) and :meth:`Observer.finish` once the request
has settled; in between it fills the :class:`~grok_api.recent.RequestRecord`. ``finish`` feeds
the latency histograms, the overview's timeline, the recent-requests ring, the grok.com
session status and, when ``GROK_API_ACCESS_LOG`` is on, writes the access-log line; a ``sink``
(the stored request log) gets every settled record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import GatewayError, RateLimited
from .logs import ACCESS_LOGGER, REQUEST_ID, AccessLog, request_id_from
from .metrics import Metrics
from .recent import CURRENT, RecentRequests, RequestRecord
from .timeline import Timeline
from .tracing import RequestTrace, Tracing
from .websession import REFUSAL_CODES, WebSessionStatus

WEB_UPSTREAM = "web"


class Observer:
    def __init__(
        self,
        metrics: Metrics,
        *,
        access_log: bool = False,
        recent_size: int = 1000,
        tracing: Tracing | None = None,
        sink: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.sink = sink  # every settled record (the stored request log), else None
        self.recent = RecentRequests(recent_size)
        self.timeline = Timeline()
        self.web = WebSessionStatus()
        self.tracing = tracing
        self.access: AccessLog | None = None
        if access_log:
            logger = logging.getLogger(ACCESS_LOGGER)
            logger.setLevel(logging.INFO)
            self.access = AccessLog(logger)
        self.in_flight = 0
        self.streams = 0
        metrics.in_flight.set_function(lambda: self.in_flight)
        metrics.streams_in_flight.set_function(lambda: self.streams)

    def start(
        self, method: str, path: str, surface: str, headers: Mapping[str, str]
    ) -> tuple[RequestRecord, RequestTrace | None]:
        """A new request: its record (with its id, now the logging context's) and its trace."""
        rid = request_id_from(headers.get("x-request-id"))
        REQUEST_ID.set(rid)
        record = RequestRecord(rid, method, path, surface, time.time(), time.perf_counter())
        CURRENT.set(record)
        self.in_flight += 1
        trace = self.tracing.start(record, headers) if self.tracing is not None else None
        return record, trace

    async def around(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves a request that is not a surface's (admin, models, health, dashboard, unknown
        routes): it gets a request id too, on its answer and its log lines, and an access line."""
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = request_id_from(given.decode("latin-1") if given is not None else None)
        REQUEST_ID.set(rid)
        record = RequestRecord(rid, scope["method"], scope["path"], "other", time.time(), time.perf_counter())
        CURRENT.set(record)  # a route may name its key and model on it
        tag = (b"x-request-id", rid.encode())

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), tag]}
            elif message["type"] == "http.response.body":
                record.bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, tagged)
        finally:
            record.t_end = time.perf_counter()
            if record.status >= 400 and record.outcome == "ok":  # a route may have named it
                record.outcome = f"error:{record.status}"
            if self.access is not None:
                self._access_line(record)
            if self.sink is not None:
                self.sink(record)

    def stream_started(self) -> None:
        self.streams += 1

    def stream_ended(self) -> None:
        self.streams -= 1

    def finish(self, record: RequestRecord, trace: RequestTrace | None = None) -> None:
        """Everything a settled request feeds; called exactly once per request."""
        record.t_end = time.perf_counter()
        self.in_flight -= 1
        labels: tuple[str, ...] = (
            record.surface,
            record.model or "none",
            record.upstream or "none",
            record.status_class,
        )
        if self.metrics.key_labels:
            labels = (*labels, record.key_id or "none")
        total, ttft, overhead = self.metrics.observers(labels)
        total(record.total)
        first = record.ttfb
        if first is not None:
            ttft(first)
        overhead(record.overhead)
        error = record.status >= 400 or record.outcome != "ok"
        self.timeline.add(record.total, first, record.prompt_tokens + record.completion_tokens, error)
        self.recent.add(record)
        if record.upstream == WEB_UPSTREAM:
            self._web_session(record)
        if self.access is not None:
            self._access_line(record)
        if self.sink is not None:
            self.sink(record)
        if trace is not None:
            trace.finish(record)

    def _web_session(self, record: RequestRecord) -> None:
        if record.error_code in REFUSAL_CODES:
            self.web.record_refusal(record.error_code, record.error_message, record.retry_after)
        elif record.t_first and record.status < 400:
            self.web.record_ok()

    def _access_line(self, record: RequestRecord) -> None:
        """The request's access line: its fields (JSON), a summary (text)."""
        access = self.access
        assert access is not None
        access.write(time.time(), record.fields(), record.summary)


def failed(record: RequestRecord, exc: GatewayError, status: int | None = None) -> None:
    """Notes on ``record`` how a request failed: status (``status`` when the answer had already
    begun with another), code, and its outcome class."""
    record.status = exc.status if status is None else status
    code = exc.code or exc.type
    record.error_code = code
    record.error_message = exc.message
    if isinstance(exc, RateLimited):
        record.retry_after = exc.retry_after
    if record.t_upstream or code.startswith("upstream") or code.startswith("web_"):
        record.outcome = f"upstream_error:{code}"
    elif isinstance(exc, RateLimited):
        record.outcome = f"limited:{code}"
    else:
        record.outcome = f"error:{code}"


def client_gone(record: RequestRecord) -> None:
    record.outcome = "client_gone"
    if not record.status:
        record.status = 499
