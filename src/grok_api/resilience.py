"""Upstream resilience: timeouts, retries before the first byte, failover, circuit breakers.

:class:`FailoverUpstream` is itself an Upstream. It holds one or more *targets* (the same
upstream at several base URLs or with several credentials), each behind a :class:`Breaker`,
and for each request:

1. picks the first target, in the configured order, that this request has not tried yet and
   whose breaker lets a request through (closed, or open long enough to be probed);
2. waits for the target's first batch of Events, at most ``first_byte`` seconds;
3. on a connection failure, a 5xx, a 429 or refused credentials *before that first batch*,
   counts a failure on the target's breaker, waits (exponential backoff with full jitter, or
   the upstream's ``Retry-After`` when it is short enough) and tries again, moving to the
   next target; a timeout is not retried (it already cost the client its wait);
4. once the first batch has been received it never retries: a partly streamed answer is
   never replayed, and a failure after that is the client's to see.

The stream as a whole is bounded by ``total`` seconds (checked as batches arrive; silence is
bounded by the transport's idle timeout).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import GatewayError, RateLimited, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .recent import note_target
from .upstreams.base import ChatRequest, Event, ModelInfo, Upstream

log = logging.getLogger(__name__)


class Breaker:
    """Opens after ``threshold`` consecutive failures; after ``reset_after`` s lets one probe through."""

    def __init__(
        self, threshold: int, reset_after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.opened_total = 0

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and self.clock() - self.opened_at >= self.reset_after:
            self.state = "half_open"  # one probe; its outcome closes or reopens the breaker
            return True
        return False

    def success(self) -> None:
        self.state, self.failures = "closed", 0

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            if self.state != "open":
                self.opened_total += 1
            self.state, self.opened_at = "open", self.clock()

    def abandon(self) -> None:
        """A probe ended without telling (its client left): let the next request probe again."""
        if self.state == "half_open":
            self.state, self.opened_at = "open", self.clock() - self.reset_after

    def describe(self) -> dict[str, Any]:
        return {"state": self.state, "consecutive_failures": self.failures, "times_opened": self.opened_total}


@dataclass(slots=True, frozen=True)
class Policy:
    retries: int = 2
    backoff_base: float = 0.25
    backoff_max: float = 5.0
    first_byte: float = 600.0
    total: float = 0.0  # 0: no limit
    breaker_threshold: int = 5
    breaker_reset: float = 30.0

    def delay(self, attempt: int, error: GatewayError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None when the error must be passed on."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.backoff_max else None
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


def retryable(error: GatewayError) -> bool:
    """Failures that happened before anything was produced and may go better elsewhere or later."""
    if isinstance(error, UpstreamTimeout):
        return False
    if isinstance(error, RateLimited | UpstreamUnavailable):
        return True
    return isinstance(error, UpstreamError) and error.code in ("upstream_error", "upstream_auth_failed")


@dataclass(slots=True)
class Target:
    label: str  # shown in /ready and logs: a base URL and which credential, never the credential
    upstream: Upstream
    breaker: Breaker


class FailoverUpstream:
    """An Upstream over several targets, with the policy above."""

    def __init__(self, name: str, targets: list[tuple[str, Upstream]], policy: Policy) -> None:
        self.name = name
        self.policy = policy
        self.targets = [
            Target(label, up, Breaker(policy.breaker_threshold, policy.breaker_reset))
            for label, up in targets
        ]

    def describe(self) -> list[dict[str, Any]]:
        return [{"target": t.label, **t.breaker.describe()} for t in self.targets]

    def _pick(self, tried: set[int]) -> Target | None:
        """The first target, in the configured order, that this request has not tried and whose
        breaker lets it through; the first ones are preferred, so a recovered primary gets its
        traffic back. When every one was tried, they may be tried again (after the backoff)."""
        for fresh in (True, False):
            for i, target in enumerate(self.targets):
                if (not fresh or i not in tried) and target.breaker.allow():
                    tried.add(i)
                    return target
        return None

    async def models(self) -> list[ModelInfo]:
        error: GatewayError = UpstreamUnavailable(f"{self.name}: every target is failing (circuit open)")
        for target in self.targets:
            try:
                return await target.upstream.models()
            except GatewayError as exc:
                error = exc
        raise error

    def stream(self, request: ChatRequest) -> AsyncIterator[Sequence[Event]]:
        return _Guarded(self, request)

    async def _start(
        self, request: ChatRequest
    ) -> tuple[Sequence[Event], AsyncIterator[Sequence[Event]], float]:
        policy = self.policy
        deadline = time.monotonic() + policy.total if policy.total else 0.0
        attempt = 0
        tried: set[int] = set()
        while True:
            target = self._pick(tried)
            if target is None:
                raise UpstreamUnavailable(f"{self.name} is failing: every target's circuit breaker is open")
            note_target(target.label)  # for the access log: which target served (no credential)
            events = aiter(target.upstream.stream(request))
            limit = min(policy.first_byte, deadline - time.monotonic()) if deadline else policy.first_byte
            try:
                async with asyncio.timeout(max(limit, 0.0)):
                    first = await anext(events)
            except TimeoutError:
                target.breaker.failure()
                raise UpstreamTimeout(f"{self.name} sent nothing within {limit:g}s") from None
            except StopAsyncIteration:
                raise UpstreamError(f"{self.name} ended the answer without sending anything") from None
            except asyncio.CancelledError:
                target.breaker.abandon()
                raise
            except GatewayError as exc:
                if not retryable(exc):
                    target.breaker.success()  # it answered: the request, not the target, was at fault
                    raise
                target.breaker.failure()
                wait = policy.delay(attempt, exc) if attempt < policy.retries else None
                if wait is None:
                    raise
                log.info("retrying %s after %s (attempt %d)", self.name, exc.code, attempt + 2)
                attempt += 1
                await asyncio.sleep(wait)
                continue
            target.breaker.success()
            return first, events, deadline

    async def aclose(self) -> None:
        for target in self.targets:
            await target.upstream.aclose()


class _Guarded:
    """The events of one request: the first batch through the policy, the rest as they come,
    within the total deadline. A plain iterator, not a generator: one layer less per batch."""

    __slots__ = ("_deadline", "_first", "_owner", "_request", "_rest")

    def __init__(self, owner: FailoverUpstream, request: ChatRequest) -> None:
        self._owner = owner
        self._request: ChatRequest | None = request
        self._rest: AsyncIterator[Sequence[Event]] | None = None
        self._deadline = 0.0

    def __aiter__(self) -> _Guarded:
        return self

    async def __anext__(self) -> Sequence[Event]:
        if self._rest is None:
            assert self._request is not None, "iterated after it was closed"
            first, self._rest, self._deadline = await self._owner._start(self._request)
            self._request = None
            return first
        batch = await self._rest.__anext__()
        if self._deadline and time.monotonic() > self._deadline:
            raise UpstreamTimeout(f"{self._owner.name} took longer than {self._owner.policy.total:g}s in all")
        return batch

    async def aclose(self) -> None:
        close = getattr(self._rest, "aclose", None)
        if close is not None:
            await close()
