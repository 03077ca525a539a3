"""Prometheus metrics, one registry per app (no module-level state). No secrets in labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "grok_api_chat_requests", "Chat completion requests by outcome.", ["outcome"], registry=r
        )
        self.rate_limited = Counter(
            "grok_api_rate_limited", "Requests refused by a key's limits.", ["limit"], registry=r
        )
        self.limiter_fail_open = Counter(
            "grok_api_limiter_fail_open",
            "Requests served unchecked because the shared limiter was down.",
            registry=r,
        )
        self.usage_flush_errors = Counter(
            "grok_api_usage_flush_errors", "Failed usage flushes (retried).", registry=r
        )
        self.tokens = Counter("grok_api_tokens", "Tokens charged to keys.", ["kind"], registry=r)
        self.breaker_open = Gauge(
            "grok_api_upstream_circuit_open",
            "1 while a target's circuit breaker is open.",
            ["upstream", "target"],
            registry=r,
        )
        self.stream_errors = Counter(
            "grok_api_stream_errors", "Streams cut by an upstream failure after they began.", registry=r
        )
        # the children the hot path counts with, bound once
        self.requests_ok = self.requests.labels("ok")
        self.requests_error = self.requests.labels("error")
        self.tokens_total = self.tokens.labels("total")
        self.usage_pending = Gauge(
            "grok_api_usage_pending_rows", "Usage rows waiting to be flushed.", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
