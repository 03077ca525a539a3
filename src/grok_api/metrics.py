"""Prometheus metrics, one registry per app (no module-level state). No secrets in labels."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_go_float: Callable[[float], str] = floatToGoString  # how Prometheus writes an `le` (1.0, 0.0001)

# Seconds. The overhead's buckets resolve tenths of a millisecond; the others span a long answer.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0
)  # fmt: skip
MAX_LABEL_SETS = 1000
LATENCY_LABELS = ["surface", "model", "upstream", "status"]


class _Series:
    """One label set's buckets (not cumulative; the last is +Inf) and sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le is inclusive, as bisect_left
        self.sum += value


class LatencyHistogram(Collector):
    """A labelled Prometheus histogram for the hot path: an observation is a bisect and two
    additions. ``prometheus_client``'s own takes a lock and walks its buckets one by one, three
    times a request (a third of what observing a request cost). It is observed on the event
    loop's thread only; a scrape copies each series' counts before summing them.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = list(labelnames)
        self.bounds = tuple(sorted(buckets))
        self._les = [*(_go_float(b) for b in self.bounds), "+Inf"]
        self._series: dict[tuple[str, ...], _Series] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Series:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
            series = self._series[values] = _Series(self.bounds)
        return series

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in list(self._series.items()):
            counts, total = list(series.counts), series.sum
            cumulative, buckets = 0, []
            for le, count in zip(self._les, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(list(values), buckets, total)
        yield family


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
        self.request_log_dropped = Counter(
            "grok_api_request_log_dropped",
            "Request records not stored: the database was away or slow and the queue was full (oldest first).",
            registry=r,
        )
        self.request_log_pending = Gauge(
            "grok_api_request_log_pending", "Request records waiting to be stored.", registry=r
        )

        labels = [*LATENCY_LABELS, "key"] if key_labels else LATENCY_LABELS
        self.key_labels = key_labels
        self.duration = LatencyHistogram(
            "grok_api_request_duration_seconds",
            "Time from a request's arrival to its last byte.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = LatencyHistogram(
            "grok_api_time_to_first_token_seconds",
            "Time from a request's arrival to the upstream's first output.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = LatencyHistogram(
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
