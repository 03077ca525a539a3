"""Prometheus metrics, one registry per app (no module-level state). No secrets in labels."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds. The overhead's buckets resolve tenths of a millisecond; the others span a long answer.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0
)  # fmt: skip
MAX_LABEL_SETS = 1000
LATENCY_LABELS = ["surface", "model", "upstream", "status"]


class Metrics:
    def __init__(self, *, key_labels: bool = False) -> None:
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

        # usage that could not be kept as it came (issue 10): alarms, normally 0
        self.usage_rows_dropped = Counter(
            "grok_api_usage_rows_dropped", "Usage rows the store refused as data (logged).", registry=r
        )
        self.usage_rows_folded = Counter(
            "grok_api_usage_rows_folded",
            "Usage past the pending-row cap, folded into each key's '(other models)' row.",
            registry=r,
        )

        labels = [*LATENCY_LABELS, "key"] if key_labels else LATENCY_LABELS
        self.key_labels = key_labels
        self.duration = Histogram(
            "grok_api_request_duration_seconds",
            "Time from a request's arrival to its last byte.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "grok_api_time_to_first_token_seconds",
            "Time from a request's arrival to the upstream's first output.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "grok_api_overhead_seconds",
            "The gateway's own share of a request: total time minus the time spent waiting on the upstream.",
            labels,
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("grok_api_requests_in_flight", "Requests being served now.", registry=r)
        self.streams_in_flight = Gauge(
            "grok_api_streams_in_flight", "Streamed answers being sent now.", registry=r
        )
        self._children: dict[tuple[str, ...], tuple[Callable[[float], None], ...]] = {}

    def observers(self, labels: tuple[str, ...]) -> tuple[Callable[[float], None], ...]:
        """The three histograms' ``observe`` for one label set, looked up once and kept."""
        found = self._children.get(labels)
        if found is None:
            if len(self._children) >= MAX_LABEL_SETS:  # model ids come from clients: bound them
                labels = (labels[0], "other", *labels[2:])
                found = self._children.get(labels)
                if found is not None:
                    return found
            found = self._children[labels] = (
                self.duration.labels(*labels).observe,
                self.ttft.labels(*labels).observe,
                self.overhead.labels(*labels).observe,
            )
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
