"""The last hour of this instance, a minute at a time: for the dashboard's overview.

Each minute keeps counts (requests, errors, tokens) and latency and time-to-first-token
histograms on fixed log-spaced bounds, so p50/p99 over any span of minutes come from summed
bucket counts (no samples kept; a constant amount of memory).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any

# 0.25 ms … ~330 s, each bound 1.5 × the one before: quantiles are within ~25 % of the truth
BOUNDS: tuple[float, ...] = tuple(0.00025 * 1.5**i for i in range(36))
MINUTES = 60


def _zeros() -> list[int]:
    return [0] * (len(BOUNDS) + 1)


@dataclass(slots=True)
class Minute:
    minute: int = -1
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    latency: list[int] = field(default_factory=_zeros)
    ttft: list[int] = field(default_factory=_zeros)


def quantile(counts: list[int], q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (``None`` without samples)."""
    n = sum(counts)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= rank and c:
            return BOUNDS[i] if i < len(BOUNDS) else BOUNDS[-1]
    return BOUNDS[-1]


class Timeline:
    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._minutes = [Minute() for _ in range(MINUTES)]

    def _slot(self, minute: int) -> Minute:
        m = self._minutes[minute % MINUTES]
        if m.minute != minute:
            m.minute, m.requests, m.errors, m.tokens = minute, 0, 0, 0
            m.latency, m.ttft = _zeros(), _zeros()
        return m

    def add(self, latency: float, ttft: float | None, tokens: int, error: bool) -> None:
        m = self._slot(int(self._clock()) // 60)
        m.requests += 1
        m.errors += error
        m.tokens += tokens
        m.latency[bisect.bisect_left(BOUNDS, latency)] += 1
        if ttft is not None:
            m.ttft[bisect.bisect_left(BOUNDS, ttft)] += 1

    def summary(self) -> dict[str, Any]:
        """Per-minute points for the last hour (oldest first) and the hour's totals."""
        now = int(self._clock()) // 60
        points = []
        latency, ttft = _zeros(), _zeros()
        requests = errors = tokens = 0
        for minute in range(now - MINUTES + 1, now + 1):
            m = self._minutes[minute % MINUTES]
            live = m.minute == minute
            r, e, t = (m.requests, m.errors, m.tokens) if live else (0, 0, 0)
            points.append(
                {
                    "t": minute * 60,
                    "requests": r,
                    "errors": e,
                    "tokens": t,
                    "p50": quantile(m.latency, 0.5) if live else None,
                    "p99": quantile(m.latency, 0.99) if live else None,
                }
            )
            if live:
                requests, errors, tokens = requests + r, errors + e, tokens + t
                latency = [a + b for a, b in zip(latency, m.latency, strict=True)]
                ttft = [a + b for a, b in zip(ttft, m.ttft, strict=True)]
        span = MINUTES * 60
        return {
            "window_seconds": span,
            "requests": requests,
            "errors": errors,
            "tokens": tokens,
            "requests_per_second": requests / span,
            "tokens_per_second": tokens / span,
            "error_rate": errors / requests if requests else 0.0,
            "latency_p50": quantile(latency, 0.5),
            "latency_p99": quantile(latency, 0.99),
            "ttft_p50": quantile(ttft, 0.5),
            "ttft_p99": quantile(ttft, 0.99),
            "points": points,
        }
