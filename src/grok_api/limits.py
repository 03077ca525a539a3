"""Per-key limits: requests/minute, tokens/minute, concurrency and token budgets.

One protocol, two backends:

- :class:`MemoryLimiter` — in this process (the default; one process).
- :class:`RedisLimiter` — shared by every instance: one atomic Lua script per check, using
  Redis's clock (``TIME``), keys hash-tagged per API key so it works on Redis Cluster.

Algorithms: requests per minute use GCRA (a burst of up to the whole minute's allowance, then
one request every ``60/rpm`` seconds); tokens per minute use a token bucket holding ``tpm``
tokens and refilled continuously, from which each request *reserves* its prompt estimate plus
its ``max_tokens`` up front and is reconciled with what it really used when it ends (the
difference is refunded, or charged). Concurrency counts requests in flight. Budgets are
reserved against like the bucket: a request is granted at most what is left of each budget
(today's (UTC), this month's, the total) after what was used and what the requests in flight
hold (``Ticket.granted``; the pipeline caps ``max_tokens`` to it), so concurrent requests
overshoot a budget only by what an upstream sends past ``max_tokens``.

``acquire`` admits a request or raises ``RateLimited`` (429 with ``Retry-After``) or
``QuotaExceeded`` (429, ``insufficient_quota``); ``settle`` ends it. Every admitted request gets
OpenAI's ``x-ratelimit-*`` headers for the limits its key has.
"""

from __future__ import annotations

import calendar
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from .errors import QuotaExceeded, RateLimited, Unavailable
from .store.keys import KeyRecord, Limits
from .store.usage import UsageStore

log = logging.getLogger(__name__)

REQUESTS, TOKENS, CONCURRENCY, BUDGET_DAY, BUDGET_MONTH, BUDGET_TOTAL = range(1, 7)
_REASONS = {
    REQUESTS: "requests",
    TOKENS: "tokens",
    CONCURRENCY: "concurrency",
    BUDGET_DAY: "budget_day",
    BUDGET_MONTH: "budget_month",
    BUDGET_TOTAL: "budget_total",
}


def reset_text(seconds: float) -> str:
    """A duration as OpenAI writes it in ``x-ratelimit-reset-*``: ``850ms``, ``6s``, ``1m30s``."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{max(0, ms)}ms"
    minutes, ms = divmod(ms, 60_000)
    whole, frac = divmod(ms, 1000)
    secs = f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(slots=True)
class Decision:
    """What a check found: admitted or the limit that refused, and the state for the headers."""

    allowed: bool
    reason: int = 0
    retry_after: float = 0.0
    requests_remaining: int = -1
    requests_reset: float = 0.0
    tokens_remaining: int = -1
    tokens_reset: float = 0.0
    granted: int = -1  # tokens grantable under the key's budgets (-1: it has none)


@dataclass(slots=True)
class Ticket:
    """An admitted request, to be settled once when it ends."""

    key_id: str
    limits: Limits
    reserved: int = 0
    request_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    checked: bool = False  # False: the key has no limits, or the limiter was down (fail open)
    granted: int | None = None  # tokens this request may use under the key's budgets (None: no budget)


def rate_headers(limits: Limits, d: Decision) -> dict[str, str]:
    headers: dict[str, str] = {}
    if limits.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, d.requests_remaining))
        headers["x-ratelimit-reset-requests"] = reset_text(d.requests_reset)
    if limits.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, d.tokens_remaining))
        headers["x-ratelimit-reset-tokens"] = reset_text(d.tokens_reset)
    return headers


def period_starts(now: float) -> tuple[int, int]:
    """Epoch seconds of the current UTC day's and month's start."""
    t = time.gmtime(now)
    day = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
    month = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    return day, month


def _next_month(now: float) -> int:
    t = time.gmtime(now)
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0))


def refusal(limits: Limits, d: Decision, now: float) -> RateLimited:
    """The 429 for a refused check, with its headers and a message naming the limit."""
    headers = rate_headers(limits, d)
    reason = d.reason
    if reason in (BUDGET_DAY, BUDGET_MONTH, BUDGET_TOTAL):
        if reason == BUDGET_DAY:
            budget, period, retry = limits.budget_day, "daily", period_starts(now)[0] + 86400 - now
        elif reason == BUDGET_MONTH:
            budget, period, retry = limits.budget_month, "monthly", _next_month(now) - now
        else:
            budget, period, retry = limits.budget_total, "total", None
        return QuotaExceeded(
            f"This key's {period} token budget of {budget} tokens is used up.",
            retry_after=retry,
            headers=headers,
        )
    retry = max(d.retry_after, 0.001)
    what = {
        REQUESTS: f"requests: this key allows {limits.rpm} requests per minute",
        TOKENS: f"tokens: this key allows {limits.tpm} tokens per minute",
        CONCURRENCY: f"concurrency: this key allows {limits.concurrency} requests at once",
    }[reason]
    return RateLimited(
        f"Rate limit reached for {what}. Retry after {reset_text(retry)}.",
        retry_after=retry,
        headers=headers,
        code=f"rate_limit_{_REASONS[reason]}",
    )


class Refusals:
    """Keys refused lately for their requests per minute or a budget, remembered for the wait
    the refusal named (at most ``horizon`` seconds, so that a raised limit soon counts), so that
    :meth:`check` can refuse such a key before its body is read and parsed. A dict lookup; no
    store or Redis round trip. Token and concurrency refusals depend on the request and the
    moment, so they are not remembered; a key whose limits changed meanwhile is checked anew."""

    def __init__(self, *, horizon: float = 5.0, max_keys: int = 10_000) -> None:
        self.horizon = horizon
        self.max_keys = max_keys
        self._until: dict[str, tuple[float, Limits, RateLimited]] = {}

    def remember(self, key: KeyRecord, exc: RateLimited, reason: int) -> RateLimited:
        if reason in (REQUESTS, BUDGET_DAY, BUDGET_MONTH, BUDGET_TOTAL):
            wait = min(exc.retry_after if exc.retry_after is not None else self.horizon, self.horizon)
            if len(self._until) >= self.max_keys:
                self._until.clear()
            self._until[key.id] = (time.monotonic() + wait, key.limits, exc)
        return exc

    def check(self, key: KeyRecord) -> None:
        """Raises a fresh copy of the key's recent refusal while it holds (and its limits stand)."""
        if not self._until:
            return
        hit = self._until.get(key.id)
        if hit is None:
            return
        until, limits, exc = hit
        left = until - time.monotonic()
        if left <= 0 or limits != key.limits:
            del self._until[key.id]
            return
        headers = {k: v for k, v in exc.headers.items() if k != "Retry-After"}
        retry = left if exc.retry_after is not None else None
        raise type(exc)(exc.message, retry_after=retry, headers=headers, code=exc.code)


class RateLimiter(Protocol):
    refusals: Refusals

    async def acquire(self, key: KeyRecord, reserve: int) -> Ticket:
        """Admits one request reserving ``reserve`` tokens, or raises the 429 (or 503)."""
        ...

    def settle(self, ticket: Ticket, used_tokens: int) -> None:
        """Ends an admitted request that used ``used_tokens`` tokens (prompt + completion)."""
        ...

    def describe(self) -> str: ...

    async def aclose(self) -> None: ...


async def count_request(limiter: RateLimiter, key: KeyRecord) -> dict[str, str]:
    """Counts one request that generates nothing (a stored response read or deleted) against the
    key's requests per minute alone; returns its rate headers, or raises the 429 of a refusal."""
    if key.limits.rpm is None:
        return {}
    ticket = await limiter.acquire(replace(key, limits=Limits(rpm=key.limits.rpm)), 0)
    limiter.settle(ticket, 0)
    return ticket.headers


def _unlimited(key: KeyRecord) -> Ticket:
    return Ticket(key.id, key.limits)


# ---------------------------------------------------------------------------------------------
# In-process


@dataclass(slots=True)
class _KeyState:
    tat: float = 0.0  # GCRA: theoretical arrival time of the next request
    tokens: float | None = None  # token bucket level (None: full)
    tokens_at: float = 0.0
    inflight: int = 0
    budget_reserved: int = 0  # tokens the requests in flight hold against the budgets
    seeded: bool = False
    day: int = 0
    day_used: int = 0
    month: int = 0
    month_used: int = 0
    total_used: int = 0


class MemoryLimiter:
    """Limits kept in this process's memory: exact for one process, multiplied by N processes."""

    def __init__(
        self,
        usage: UsageStore | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.usage = usage
        self.clock = clock
        self.wall = wall
        self._keys: dict[str, _KeyState] = {}
        self._periods = (0, 0, 0.0)  # day start, month start, and when they stop being current
        self.refusals = Refusals()

    def describe(self) -> str:
        return "memory"

    def _current_periods(self, wall: float) -> tuple[int, int]:
        day, month, until = self._periods
        if wall >= until or wall < day:
            day, month = period_starts(wall)
            self._periods = (day, month, day + 86400.0)
        return day, month

    async def acquire(self, key: KeyRecord, reserve: int) -> Ticket:
        limits = key.limits
        if not limits.any:
            return _unlimited(key)
        state = self._keys.get(key.id)
        if state is None:
            state = self._keys[key.id] = _KeyState()
        wall = self.wall()
        if not state.seeded:
            await self._seed(key.id, state, wall)
        self._roll_periods(state, wall)
        reserve = min(reserve, limits.tpm) if limits.tpm else reserve
        d = self._check(limits, state, reserve, self.clock())
        if not d.allowed:
            raise self.refusals.remember(key, refusal(limits, d, wall), d.reason)
        granted = d.granted if d.granted >= 0 else None
        return Ticket(key.id, limits, reserve, headers=rate_headers(limits, d), checked=True, granted=granted)

    @staticmethod
    def _budget_room(limits: Limits, st: _KeyState, reserve: int) -> tuple[int, int]:
        """(the refusing budget or 0, the tokens grantable under every budget: at most ``reserve``,
        after what was used and what requests in flight reserved; -1 when the key has none)."""
        room = -1
        for reason, budget, used in (
            (BUDGET_DAY, limits.budget_day, st.day_used),
            (BUDGET_MONTH, limits.budget_month, st.month_used),
            (BUDGET_TOTAL, limits.budget_total, st.total_used),
        ):
            if budget is not None:
                left = budget - used - st.budget_reserved
                if left <= 0:
                    return reason, 0
                room = min(left, reserve if room < 0 else room)
        return 0, room

    def _check(self, limits: Limits, st: _KeyState, reserve: int, now: float) -> Decision:
        refused, room = self._budget_room(limits, st, reserve)
        if refused:
            return Decision(False, refused)
        d = Decision(True, granted=room)
        new_tat = 0.0
        if limits.rpm:
            period = 60.0 / limits.rpm
            tat = max(st.tat, now)
            if tat - (60.0 - period) > now:
                return Decision(False, REQUESTS, tat - (60.0 - period) - now, 0, tat - now)
            new_tat = tat + period
            d.requests_remaining = math.floor((60.0 - (new_tat - now)) / period + 1e-9)
            d.requests_reset = new_tat - now
        level = 0.0
        if limits.tpm:
            rate = limits.tpm / 60.0
            level = st.tokens if st.tokens is not None else float(limits.tpm)
            level = min(float(limits.tpm), level + (now - st.tokens_at) * rate)
            if level < reserve:
                return Decision(
                    False, TOKENS, (reserve - level) / rate, d.requests_remaining, d.requests_reset
                )
            level -= reserve
            d.tokens_remaining = math.floor(level)
            d.tokens_reset = (limits.tpm - level) / rate
        if limits.concurrency and st.inflight >= limits.concurrency:
            return Decision(False, CONCURRENCY, 1.0)
        if limits.rpm:
            st.tat = new_tat
        if limits.tpm:
            st.tokens, st.tokens_at = level, now
        st.inflight += 1
        st.budget_reserved += max(room, 0)
        return d

    async def _seed(self, key_id: str, st: _KeyState, wall: float) -> None:
        """Reads the budget counters from the store, once: concurrent first requests all wait
        for a read, and only the first to return applies it (a later one would overwrite what
        requests admitted meanwhile have used)."""
        day, month = self._current_periods(wall)
        used = [0, 0, 0]
        if self.usage is not None:
            used = await self.usage.tokens_since(key_id, day, month, 0)
        if st.seeded:
            return
        st.day, st.month = day, month
        st.day_used, st.month_used, st.total_used = used
        st.seeded = True

    def _roll_periods(self, st: _KeyState, wall: float) -> None:
        day, month = self._current_periods(wall)
        if day != st.day:
            st.day, st.day_used = day, 0
        if month != st.month:
            st.month, st.month_used = month, 0

    def settle(self, ticket: Ticket, used_tokens: int) -> None:
        if not ticket.checked:
            return
        st = self._keys.get(ticket.key_id)
        if st is None:
            return
        st.inflight = max(0, st.inflight - 1)
        st.budget_reserved = max(0, st.budget_reserved - (ticket.granted or 0))
        if ticket.limits.tpm and st.tokens is not None:
            st.tokens = min(float(ticket.limits.tpm), st.tokens + ticket.reserved - used_tokens)
        st.day_used += used_tokens
        st.month_used += used_tokens
        st.total_used += used_tokens

    async def aclose(self) -> None:
        return None


def new_request_id() -> str:
    return secrets.token_hex(8)


def fail(mode: str, exc: BaseException, key: KeyRecord, on_open: Callable[[], None]) -> Ticket:
    """What a request gets when the shared limiter is unreachable: served, or a 503."""
    if mode == "closed":
        raise Unavailable(
            "The rate limiter is unavailable, and this gateway refuses requests until it is back.",
            code="limiter_unavailable",
        ) from exc
    on_open()
    return _unlimited(key)
