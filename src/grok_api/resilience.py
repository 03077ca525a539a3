"""Upstream resilience: timeouts, retries before the first byte, failover, circuit breakers.

:class:`FailoverUpstream` is itself an Upstream. It holds one or more *targets* (the same
upstream at several base URLs or with several credentials), each behind a :class:`Breaker`,
and for each request:

1. picks the first target, in the configured order, that this request has not tried yet, that
   is not cooling down after a 429, and whose breaker lets a request through (closed, or open
   long enough to be probed);
2. waits for the target's first batch of Events, at most ``first_byte`` seconds;
3. on a connection failure, a 5xx, a 429 or refused credentials *before that first batch*,
   waits (exponential backoff with full jitter, or the upstream's ``Retry-After`` when it is
   short enough) and tries again, moving to the next target; a timeout is not retried (it
   already cost the client its wait);
4. once the first batch has been received it never retries: a partly streamed answer is
   never replayed, and a failure after that is the client's to see.

Breakers measure a target's health, not a client's luck: a request counts at most one failure
per target however often it was retried; answers the client caused (400, 404, 413…) count as
the target working; a 429 is not ill health but a cool-down of that target for its
``Retry-After``. The breakers choose among targets; they never refuse service: when every
target's breaker is open, a request still goes to the one opened longest ago (*panic mode*,
as Envoy does), and its outcome closes or re-opens that breaker.

The stream as a whole is bounded by ``total`` seconds (checked as batches arrive; silence is
bounded by the transport's idle timeout).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
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

    def open_since(self) -> float | None:
        """When it opened, while it refuses requests; None while it lets them through."""
        if self.state == "closed" or (
            self.state == "open" and self.clock() - self.opened_at >= self.reset_after
        ):
            return None
        return self.opened_at

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
    cooldown_max: float = 60.0  # the longest a target rests after a 429 (0: never)

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
    # after an upstream 429, per upstream model (xAI limits each model): not asked before this
    cool_until: dict[str, float] = field(default_factory=dict)

    def cooling(self, model: str, now: float) -> float:
        """Seconds this target still rests for ``model`` (0: it may be asked)."""
        until = self.cool_until.get(model)
        return until - now if until is not None and until > now else 0.0

    def cool(self, model: str, seconds: float) -> None:
        now = time.monotonic()
        for name, until in list(self.cool_until.items()):
            if until <= now:
                del self.cool_until[name]
        self.cool_until[model] = max(self.cool_until.get(model, 0.0), now + seconds)


class _Attempts:
    """One request's way through the targets: which it tried, which it already counted as failing."""

    __slots__ = ("count", "failed", "tried")

    def __init__(self) -> None:
        self.count = 0
        self.tried: set[int] = set()
        self.failed: set[int] = set()


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

    def _pick(self, attempts: _Attempts, model: str) -> tuple[Target, float]:
        """The target for the next attempt, and how long to wait for its 429 cool-down first.

        The first target, in the configured order, that this request has not tried, is not
        cooling down and whose breaker lets it through; the first ones are preferred, so a
        recovered primary gets its traffic back. Then the same among those tried already; then
        the one whose cool-down ends first; and when every breaker is open, the one opened
        longest ago (panic mode: the breakers choose, they do not refuse)."""
        now = time.monotonic()
        for fresh in (True, False):
            for i, target in enumerate(self.targets):
                if (fresh and i in attempts.tried) or target.cooling(model, now):
                    continue
                if target.breaker.allow():
                    attempts.tried.add(i)
                    return target, 0.0
        cooling = [t for t in self.targets if t.cooling(model, now) and t.breaker.open_since() is None]
        if cooling:
            first = min(cooling, key=lambda t: t.cooling(model, now))
            return first, first.cooling(model, now)
        target = min(self.targets, key=lambda t: (t.breaker.open_since() or 0.0, t.cooling(model, now)))
        log.debug("%s: every target's circuit breaker is open; trying %s anyway", self.name, target.label)
        return target, target.cooling(model, now)

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
        attempts = _Attempts()
        while True:
            target, cooling = self._pick(attempts, request.upstream_model)
            if cooling > 0:
                if cooling > policy.backoff_max:
                    raise RateLimited(
                        f"{self.name} is rate limiting requests; retry later.", retry_after=cooling
                    )
                await asyncio.sleep(cooling)
            note_target(target.label)  # for the access log: which target served (no credential)
            try:
                first, events = await self._attempt(target, request, deadline)
            except GatewayError as exc:
                if not retryable(exc):
                    raise
                self._failed(target, exc, attempts, request.upstream_model)
                wait = policy.delay(attempts.count, exc) if attempts.count < policy.retries else None
                if wait is None:
                    raise
                log.info("retrying %s after %s (attempt %d)", self.name, exc.code, attempts.count + 2)
                attempts.count += 1
                await asyncio.sleep(wait)
                continue
            target.breaker.success()
            return first, events, deadline

    async def _attempt(
        self, target: Target, request: ChatRequest, deadline: float
    ) -> tuple[Sequence[Event], AsyncIterator[Sequence[Event]]]:
        """One try at one target, up to its first batch. A client-caused refusal counts as the
        target working (it answered); a timeout counts as a failure and is not retried."""
        policy = self.policy
        events = aiter(target.upstream.stream(request))
        limit = min(policy.first_byte, deadline - time.monotonic()) if deadline else policy.first_byte
        try:
            async with asyncio.timeout(max(limit, 0.0)):
                return await anext(events), events
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

    def _failed(self, target: Target, exc: GatewayError, attempts: _Attempts, model: str) -> None:
        """Counts a retryable failure: a 429 cools the target down (for that model, for its
        Retry-After up to ``cooldown_max``); anything else is one failure on its breaker per
        request, however many retries it took, except that a failed probe always reopens it (a
        breaker left half-open would refuse every request but panic mode's)."""
        if isinstance(exc, RateLimited):
            rest = min(exc.retry_after or 1.0, self.policy.cooldown_max)
            if rest > 0:
                target.cool(model, rest)
            target.breaker.abandon()  # a probe that met a 429 proved nothing either way
            return
        if id(target) not in attempts.failed or target.breaker.state == "half_open":
            attempts.failed.add(id(target))
            target.breaker.failure()

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
