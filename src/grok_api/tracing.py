"""OpenTelemetry traces, optional and off by default.

Tracing is on when ``GROK_API_TRACING=on``, or with ``auto`` (the default) when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and
``OTEL_SDK_DISABLED`` is not true. The ``opentelemetry`` packages are imported only then
(``pip install 'grok-api[tracing]'``): off, the pipeline holds ``None`` and pays one ``is None``
test per request; not installed, a warning says so once and the gateway runs untraced. (FastAPI
itself depends on ``opentelemetry-api``; the SDK and the exporter are what the extra adds.)

Each request is a server span (its parent taken from an incoming ``traceparent``), with child
spans for authentication, the limiter, the upstream call (an event and an attribute mark its
first byte) and the encoding of the answer. Spans go to the global tracer provider when one
was set up (e.g. by ``opentelemetry-instrument`` or a test), else to an OTLP/HTTP exporter
configured by the standard ``OTEL_*`` variables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .recent import RequestRecord

log = logging.getLogger(__name__)


def wanted(mode: str, environ: Mapping[str, str] = os.environ) -> bool:
    if mode == "off" or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if mode == "on":
        return True
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


class Tracing:
    """A tracer and what to shut down with it."""

    def __init__(self, tracer: Any, provider: Any = None) -> None:
        self.tracer = tracer
        self._provider = provider  # ours to shut down (None: someone else's)
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._propagator = TraceContextTextMapPropagator()

    def start(self, record: RequestRecord, headers: Mapping[str, str]) -> RequestTrace:
        parent = self._propagator.extract(headers) if "traceparent" in headers else None
        from opentelemetry.trace import SpanKind

        span = self.tracer.start_span(
            f"{record.method} {record.path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": record.method,
                "url.path": record.path,
                "grok_api.request_id": record.id,
                "grok_api.surface": record.surface,
            },
        )
        return RequestTrace(self.tracer, span)

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


class RequestTrace:
    """One request's span and its children."""

    __slots__ = ("_ctx", "_tracer", "span", "upstream")

    def __init__(self, tracer: Any, span: Any) -> None:
        from opentelemetry.trace import set_span_in_context

        self._tracer = tracer
        self.span = span
        self._ctx = set_span_in_context(span)
        self.upstream: Any = None

    def child(self, name: str, **attributes: Any) -> Any:
        return self._tracer.start_span(name, context=self._ctx, attributes=attributes or None)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Any]:
        span = self.child(name)
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            span.end()

    def upstream_started(self, upstream: str, model: str) -> None:
        self.upstream = self.child("upstream", **{"grok_api.upstream": upstream, "grok_api.model": model})

    def _upstream_ended(self, record: RequestRecord) -> None:
        """Ends the upstream span when its last batch came, with its first byte marked."""
        span, self.upstream = self.upstream, None
        if span is None:
            return
        now_ns, now = time.time_ns(), time.perf_counter()

        def wall(perf: float) -> int:
            return now_ns - int((now - perf) * 1e9)

        if record.t_first:
            span.add_event("first_byte", timestamp=wall(record.t_first))
            span.set_attribute("grok_api.time_to_first_byte_ms", (record.t_first - record.t_upstream) * 1000)
        if record.error_code and record.outcome.startswith("upstream_error"):
            span.set_attribute("error.type", record.error_code)
        span.end(end_time=wall(record.t_upstream_end) if record.t_upstream_end else None)

    def finish(self, record: RequestRecord) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._upstream_ended(record)
        span = self.span
        span.set_attribute("http.response.status_code", record.status)
        span.set_attribute("grok_api.outcome", record.outcome)
        if record.model:
            span.set_attribute("gen_ai.request.model", record.model)
        if record.key_id:
            span.set_attribute("grok_api.key_id", record.key_id)
        span.set_attribute("gen_ai.usage.input_tokens", record.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", record.completion_tokens)
        if record.status >= 500:
            span.set_status(Status(StatusCode.ERROR, record.error_code or "server error"))
        span.end()


def build(mode: str) -> Tracing | None:
    """The tracing for ``GROK_API_TRACING=mode`` (``None``: off)."""
    if not wanted(mode):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        log.warning(
            "tracing was asked for but the OpenTelemetry SDK is not installed: pip install 'grok-api[tracing]'"
        )
        return None

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return Tracing(current.get_tracer("grok_api"))
    provider = _otlp_provider()
    return Tracing(provider.get_tracer("grok_api"), provider)


def _otlp_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "grok-api")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
