"""What one request amounted to (:class:`RequestRecord`), and the most recent ones in a ring.

The pipeline fills one record per request as it goes (who asked, which model and upstream,
when the first byte came, what the answer cost) and hands it over once it settles; the access
log, the latency histograms, the overview's timeline and :class:`RecentRequests` (the
dashboard's Requests page) all read that one record. The ring is bounded and per instance.
"""

from __future__ import annotations

from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .logs import utc_stamp


@dataclass(slots=True)
class RequestRecord:
    id: str
    method: str
    path: str
    surface: str
    started: float  # epoch seconds
    t0: float  # perf_counter at the start
    stream: bool = False
    key_id: str = ""
    key_name: str = ""
    model: str = ""
    upstream: str = ""
    target: str = ""  # which of the upstream's targets served it (a URL and credential label)
    status: int = 0
    outcome: str = "ok"  # ok, client_gone, upstream_error:<code>, limited:<code>, error:<code>
    error_code: str = ""
    error_message: str = ""
    retry_after: float | None = None
    t_upstream: float = 0.0  # perf_counter when the upstream was asked (0: never)
    t_first: float = 0.0  # perf_counter of the first batch
    t_upstream_end: float = 0.0
    t_end: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    bytes_out: int = 0

    @property
    def total(self) -> float:
        return max(0.0, self.t_end - self.t0)

    @property
    def ttfb(self) -> float | None:
        return self.t_first - self.t0 if self.t_first else None

    @property
    def upstream_time(self) -> float:
        if not self.t_upstream:
            return 0.0
        return max(0.0, (self.t_upstream_end or self.t_end) - self.t_upstream)

    @property
    def overhead(self) -> float:
        return max(0.0, self.total - self.upstream_time)

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx" if self.status else "none"

    def summary(self) -> str:
        """One line for people (the text access log's message)."""
        return (
            f"{self.method} {self.path} {self.status} {self.total * 1000:.1f}ms"
            f" key={self.key_name or '-'} model={self.model or '-'} outcome={self.outcome}"
        )

    def fields(self) -> dict[str, Any]:
        """The access log's (and the Requests page's) fields: never a key or a credential.

        Written once per request when the access log is on, so written for speed: durations
        are rounded to the microsecond with integer arithmetic, not ``round()``."""
        t0 = self.t0
        total = self.t_end - t0 if self.t_end > t0 else 0.0
        return {
            "request_id": self.id,
            "time": utc_stamp(self.started),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "surface": self.surface,
            "stream": self.stream,
            "key_id": self.key_id or None,
            "key_name": self.key_name or None,
            "model": self.model or None,
            "upstream": self.upstream or None,
            "target": self.target or None,
            "latency_ms": int(total * 1e6 + 0.5) / 1000,
            "ttfb_ms": int((self.t_first - t0) * 1e6 + 0.5) / 1000 if self.t_first else None,
            "upstream_ms": int(self.upstream_time * 1e6 + 0.5) / 1000,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
            "estimated": self.estimated,
            "bytes_out": self.bytes_out,
            "outcome": self.outcome,
        }


# The record of the request being served, so that code far down (the failover) can note on it.
CURRENT: ContextVar[RequestRecord | None] = ContextVar("grok_api_request_record", default=None)


def note_target(label: str) -> None:
    """Notes which upstream target the current request went to (the last one tried)."""
    record = CURRENT.get()
    if record is not None:
        record.target = label


class RecentRequests:
    """The last ``size`` requests of this instance, newest first when read."""

    def __init__(self, size: int = 1000) -> None:
        self._ring: deque[RequestRecord] = deque(maxlen=size)

    def add(self, record: RequestRecord) -> None:
        self._ring.append(record)

    def __len__(self) -> int:
        return len(self._ring)

    def query(self, wanted: RequestFilter | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest requests ``wanted`` matches (all of them without one), newest first."""
        out: list[dict[str, Any]] = []
        for r in reversed(self._ring):
            if wanted is not None and not wanted.matches(r):
                continue
            out.append(r.fields())
            if len(out) >= limit:
                break
        return out


def status_range(text: str) -> tuple[int, int]:
    """``429`` → (429, 429); ``4xx`` → (400, 499); ValueError for anything else."""
    text = text.strip().lower()
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    if len(text) == 3 and text.isdigit() and text[0] in "12345":
        return int(text), int(text)
    raise ValueError(f"'{text}' is neither a status (429) nor a class of them (4xx)")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which recent requests a reader wants: every one given must match. ``status`` is an
    inclusive range (see :func:`status_range`); ``since`` (at or after) and ``before`` (strictly
    before) bound when the request arrived, in epoch seconds."""

    key_id: str | None = None
    model: str | None = None
    request_id: str | None = None
    status: tuple[int, int] | None = None
    since: float | None = None
    before: float | None = None

    def matches(self, r: RequestRecord) -> bool:
        if self.key_id and r.key_id != self.key_id:
            return False
        if self.model and r.model != self.model:
            return False
        if self.request_id and r.id != self.request_id:
            return False
        if self.status is not None and not self.status[0] <= r.status <= self.status[1]:
            return False
        if self.since is not None and r.started < self.since:
            return False
        return self.before is None or r.started < self.before
