"""resilience.py directly: the breaker's states, the retry policy, and FailoverUpstream over
scripted in-memory upstreams (each answers a request from a script: batches, or an error before
or after the first batch). The HTTP-level behaviour is in test_resilience.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from grok_api import resilience
from grok_api.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from grok_api.recent import CURRENT, RequestRecord
from grok_api.resilience import Breaker, FailoverUpstream, Policy, retryable
from grok_api.upstreams.base import ChatRequest, Event, Finish, ModelInfo, TextDelta

REQUEST = ChatRequest("m", "m", [{"role": "user", "content": "x"}], True, {})
HANG = "hang"


class Scripted:
    """An upstream answering each request with the next step of its script: a list of batches
    (a string item raises after the batches before it), an error, or HANG."""

    def __init__(self, name: str, *script: Any, models: list[ModelInfo] | GatewayError | None = None) -> None:
        self.name, self.script, self.calls, self.closed = name, list(script), 0, 0
        self.requests: list[ChatRequest] = []
        self._models = models if models is not None else [ModelInfo(name, name)]

    async def stream(self, request: ChatRequest) -> AsyncIterator[Sequence[Event]]:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        self.requests.append(request)
        if isinstance(step, GatewayError):
            raise step
        if step == HANG:
            await asyncio.sleep(3600)
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = OK
        for batch in step:
            if isinstance(batch, GatewayError):
                raise batch
            yield batch

    async def models(self) -> list[ModelInfo]:
        if isinstance(self._models, GatewayError):
            raise self._models
        return self._models

    async def aclose(self) -> None:
        self.closed += 1


OK = [[TextDelta("a")], [TextDelta("b"), Finish("stop")]]
FAST = Policy(retries=2, backoff_base=0.0, backoff_max=5.0, breaker_threshold=2, breaker_reset=30.0)


def failover(*ups: Scripted, policy: Policy = FAST) -> FailoverUpstream:
    return FailoverUpstream("up", [(u.name, u) for u in ups], policy)


async def collect(f: FailoverUpstream) -> list[Event]:
    return [e async for batch in f.stream(REQUEST) for e in batch]


def test_breaker_opens_probes_once_and_closes() -> None:
    now = [100.0]
    b = Breaker(threshold=2, reset_after=10, clock=lambda: now[0])
    assert b.allow() and b.describe() == {"state": "closed", "consecutive_failures": 0, "times_opened": 0}
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert (b.state, b.opened_at, b.opened_total) == ("open", 100.0, 1)
    b.failure()  # failing while open does not count another opening
    assert b.opened_total == 1 and b.failures == 3
    now[0] = 109.999
    assert not b.allow()
    now[0] = 110.0
    assert b.allow() and b.state == "half_open"
    assert not b.allow()  # one probe at a time
    b.failure()  # the probe failed: open again, from now
    assert (b.state, b.opened_at, b.opened_total) == ("open", 110.0, 2)
    now[0] = 120.0
    assert b.allow()
    b.success()
    assert b.describe() == {"state": "closed", "consecutive_failures": 0, "times_opened": 2}


def test_an_abandoned_probe_lets_the_next_request_probe() -> None:
    now = [0.0]
    b = Breaker(threshold=1, reset_after=10, clock=lambda: now[0])
    b.abandon()
    assert b.state == "closed"  # nothing to abandon
    b.failure()
    now[0] = 15.0
    assert b.allow()
    b.abandon()
    assert (b.state, b.opened_at) == ("open", 5.0)
    assert b.allow() and b.state == "half_open"


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (UpstreamError("x"), True),
        (UpstreamError("x", code="upstream_auth_failed"), True),
        (UpstreamError("x", code="web_session_refused"), False),
        (UpstreamUnavailable("x"), True),
        (RateLimited("x"), True),
        (UpstreamTimeout("x"), False),
        (InvalidRequest("x"), False),
        (ModelNotFound("x"), False),
        (GatewayError("x"), False),
    ],
)
def test_what_is_retried(error: GatewayError, retry: bool) -> None:
    assert retryable(error) is retry


def test_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resilience, "random", SimpleNamespace(uniform=lambda a, b: (a, b)))
    p = Policy(backoff_base=0.25, backoff_max=1.5)
    assert [p.delay(n, UpstreamError("x")) for n in range(4)] == [(0, 0.25), (0, 0.5), (0, 1.0), (0, 1.5)]
    assert p.delay(0, RateLimited("x", retry_after=1.5)) == 1.5  # the upstream's wait, when short
    assert p.delay(0, RateLimited("x", retry_after=1.6)) is None  # too long: passed on to the client
    assert p.delay(1, RateLimited("x")) == (0, 0.5)


async def test_a_failure_before_the_first_batch_moves_to_the_next_target() -> None:
    a, b = Scripted("a", UpstreamUnavailable("down")), Scripted("b", OK)
    f = failover(a, b)
    assert await collect(f) == [TextDelta("a"), TextDelta("b"), Finish("stop")]
    assert (a.calls, b.calls) == (1, 1)
    assert f.describe() == [
        {"target": "a", "state": "closed", "consecutive_failures": 1, "times_opened": 0},
        {"target": "b", "state": "closed", "consecutive_failures": 0, "times_opened": 0},
    ]


async def test_retries_stop_after_the_policy_and_pass_the_last_error_on() -> None:
    a = Scripted("a", UpstreamError("boom"))
    with pytest.raises(UpstreamError, match="boom"):
        await collect(failover(a, policy=Policy(retries=2, backoff_base=0.0, breaker_threshold=100)))
    assert a.calls == 3  # one try and two retries, on the only target
    none = Scripted("n", UpstreamError("boom"))
    with pytest.raises(UpstreamError):
        await collect(failover(none, policy=Policy(retries=0, breaker_threshold=100)))
    assert none.calls == 1


async def test_the_first_target_is_preferred_again_once_it_recovers() -> None:
    a, b = Scripted("a", UpstreamError("x"), OK), Scripted("b", OK)
    f = failover(a, b)
    await collect(f)
    await collect(f)
    assert (a.calls, b.calls) == (2, 1)


async def test_an_error_the_request_caused_is_not_retried_and_clears_the_breaker() -> None:
    a, b = Scripted("a", UpstreamError("x"), InvalidRequest("bad")), Scripted("b", OK)
    f = failover(a, b, policy=Policy(retries=0, breaker_threshold=5))
    with pytest.raises(UpstreamError):
        await collect(f)
    assert f.targets[0].breaker.failures == 1
    with pytest.raises(InvalidRequest, match="bad"):
        await collect(f)
    assert f.targets[0].breaker.failures == 0 and b.calls == 0


async def test_a_long_retry_after_is_passed_on_at_once() -> None:
    a, b = Scripted("a", RateLimited("slow", retry_after=60)), Scripted("b", OK)
    with pytest.raises(RateLimited, match="slow"):
        await collect(failover(a, b))
    assert b.calls == 0


async def test_open_breakers_everywhere_still_ask_the_one_opened_longest_ago() -> None:
    a = Scripted("a", UpstreamError("x"), OK)
    f = failover(a, policy=Policy(retries=0, breaker_threshold=1, breaker_reset=3600))
    with pytest.raises(UpstreamError):
        await collect(f)
    assert f.targets[0].breaker.state == "open"
    assert await collect(f) == [TextDelta("a"), TextDelta("b"), Finish("stop")]  # panic mode
    assert a.calls == 2 and f.targets[0].breaker.state == "closed"


async def test_nothing_at_all_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="ended the answer without sending anything") as info:
        await collect(failover(Scripted("a", [])))
    assert type(info.value) is UpstreamError


async def test_silence_before_the_first_batch_is_a_timeout_and_not_retried() -> None:
    a, b = Scripted("a", HANG), Scripted("b", OK)
    f = failover(a, b, policy=Policy(retries=2, first_byte=0.05, breaker_threshold=1))
    with pytest.raises(UpstreamTimeout, match=r"up sent nothing within 0\.05s"):
        await collect(f)
    assert b.calls == 0 and f.targets[0].breaker.state == "open"


async def test_an_error_after_the_first_batch_is_never_retried() -> None:
    a, b = Scripted("a", [[TextDelta("a")], UpstreamError("cut")]), Scripted("b", OK)
    f = failover(a, b)
    got: list[Event] = []
    with pytest.raises(UpstreamError, match="cut"):
        async for batch in f.stream(REQUEST):
            got += batch
    assert got == [TextDelta("a")] and b.calls == 0
    assert f.targets[0].breaker.failures == 0  # the target answered


async def test_a_client_leaving_during_the_first_wait_abandons_the_probe() -> None:
    a = Scripted("a", UpstreamError("x"), HANG)
    f = failover(a, policy=Policy(retries=0, breaker_threshold=1, breaker_reset=0.0))
    with pytest.raises(UpstreamError):
        await collect(f)
    task = asyncio.ensure_future(collect(f))
    while a.calls < 2:
        await asyncio.sleep(0.01)
    assert f.targets[0].breaker.state == "half_open"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f.targets[0].breaker.state == "open"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_the_total_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(resilience, "time", clock)
    f = failover(Scripted("a", OK), policy=Policy(total=10.0))
    stream = f.stream(REQUEST)
    assert await anext(stream) == [TextDelta("a")]
    clock.now += 10.0  # exactly at the deadline: still in time
    assert await anext(stream) == [TextDelta("b"), Finish("stop")]
    g = failover(Scripted("a", OK), policy=Policy(total=10.0)).stream(REQUEST)
    await anext(g)
    clock.now += 10.5
    with pytest.raises(UpstreamTimeout, match="up took longer than 10s in all"):
        await anext(g)
    unbounded = failover(Scripted("a", OK), policy=Policy(total=0.0)).stream(REQUEST)
    await anext(unbounded)
    clock.now += 1e9
    assert await anext(unbounded) == [TextDelta("b"), Finish("stop")]


async def test_a_spent_deadline_leaves_no_wait_for_the_first_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(resilience, "time", clock)
    a = Scripted("a", UpstreamError("x"), HANG)

    class Slow(Policy):
        def delay(self, attempt: int, error: GatewayError) -> float | None:
            clock.now += 20.0  # the backoff used up the whole budget
            return 0.0

    f = failover(a, policy=Slow(total=10.0, first_byte=600.0, breaker_threshold=100))
    with pytest.raises(UpstreamTimeout, match="nothing within -10s"):
        await collect(f)


async def test_models_from_the_first_target_that_answers() -> None:
    a = Scripted("a", OK, models=UpstreamUnavailable("a down"))
    b = Scripted("b", OK, models=[ModelInfo("grok-4", "b")])
    assert await failover(a, b).models() == [ModelInfo("grok-4", "b")]
    c = Scripted("c", OK, models=UpstreamError("c down"))
    with pytest.raises(UpstreamError, match="c down"):
        await failover(a, c).models()
    with pytest.raises(UpstreamUnavailable, match="every target is failing"):
        await FailoverUpstream("none", [], FAST).models()


async def test_close_closes_every_target_and_a_stream_closes_its_upstream() -> None:
    a, b = Scripted("a", OK), Scripted("b", OK)
    f = failover(a, b)
    stream = f.stream(REQUEST)
    await stream.aclose()  # nothing started yet: nothing to close
    stream = f.stream(REQUEST)
    await anext(stream)
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    await f.aclose()
    assert (a.closed, b.closed) == (1, 1)


async def test_each_try_sends_the_request_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    a, b = Scripted("a", UpstreamUnavailable("down")), Scripted("b", OK)
    with caplog.at_level("INFO", logger="grok_api.resilience"):
        await collect(failover(a, b))
    assert a.requests == [REQUEST] and b.requests == [REQUEST]
    assert [r.getMessage() for r in caplog.records] == ["retrying up after upstream_unavailable (attempt 2)"]


async def test_a_first_batch_later_than_the_first_byte_limit_times_out() -> None:
    # the first batch takes 0.5 s against a limit of 0.05 s: however slow the machine, too late
    with pytest.raises(UpstreamTimeout):
        await collect(failover(Scripted("a", 0.5), policy=Policy(first_byte=0.05)))


# --- 429 cool-downs, panic mode, Breaker.open_since (the hardening's own code) ---


def test_open_since_says_when_a_breaker_refuses() -> None:
    now = [100.0]
    b = Breaker(threshold=1, reset_after=10, clock=lambda: now[0])
    assert b.open_since() is None  # closed: it lets requests through
    b.failure()
    now[0] = 109.5
    assert b.open_since() == 100.0
    now[0] = 110.0
    assert b.open_since() is None  # open long enough to be probed
    assert b.allow() and b.state == "half_open"
    assert b.open_since() == 100.0  # its one probe is out: the next request is refused


def test_a_target_cools_down_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(resilience, "time", clock)
    t = resilience.Target("a", Scripted("a", OK), Breaker(1, 1.0))
    assert t.cooling("m", clock.now) == 0.0  # never cooled
    t.cool("m", 5.0)
    assert t.cool_until == {"m": 1005.0}
    assert t.cooling("m", 1001.0) == 4.0
    assert t.cooling("other", 1001.0) == 0.0  # another model is not limited
    assert t.cooling("m", 1005.0) == 0.0  # over at its end
    t.cool("m", 2.0)  # a shorter cool-down does not cut a longer one short
    assert t.cool_until == {"m": 1005.0}
    t.cool("m", 8.0)
    assert t.cool_until == {"m": 1008.0}
    clock.now = 1008.0
    t.cool("n", 1.0)  # the ended cool-down is forgotten (ending now counts as ended)
    assert t.cool_until == {"n": 1009.0}
    clock.now = 1008.5
    t.cool("m", 1.0)  # a live one is kept
    assert t.cool_until == {"n": 1009.0, "m": 1009.5}


class Sleeps:
    """resilience's asyncio with a recorded sleep that does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.timeout, self.CancelledError = asyncio.timeout, asyncio.CancelledError

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize(
    ("retry_after", "cooldown_max", "cooled"),
    [(None, 60.0, 1.0), (2.0, 60.0, 2.0), (0.0, 60.0, 1.0), (3.0, 2.5, 2.5), (3.0, 0.0, None)],
)
async def test_a_429_rests_that_target_for_its_retry_after(
    monkeypatch: pytest.MonkeyPatch, retry_after: float | None, cooldown_max: float, cooled: float | None
) -> None:
    clock = Clock()
    monkeypatch.setattr(resilience, "time", clock)
    monkeypatch.setattr(resilience, "asyncio", Sleeps())
    a, b = Scripted("a", RateLimited("busy", retry_after=retry_after), OK), Scripted("b", OK)
    f = failover(a, b, policy=Policy(retries=1, backoff_base=0.0, cooldown_max=cooldown_max))
    assert await collect(f) == [TextDelta("a"), TextDelta("b"), Finish("stop")]
    assert (a.calls, b.calls) == (1, 1)
    target = f.targets[0]
    assert target.cool_until == ({} if cooled is None else {"m": 1000.0 + cooled})
    assert target.breaker.failures == 0  # a 429 is not ill health
    await collect(f)  # the next request: a still rests (unless it never cools), b answers
    assert (a.calls, b.calls) == ((2, 1) if cooled is None else (1, 2))


async def test_a_probe_that_met_a_429_lets_the_next_request_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    a = Scripted("a", UpstreamError("x"), RateLimited("busy", retry_after=0.0), OK)
    f = failover(a, policy=Policy(retries=0, breaker_threshold=1, breaker_reset=0.0, cooldown_max=0.0))
    with pytest.raises(UpstreamError):
        await collect(f)
    with pytest.raises(RateLimited):
        await collect(f)  # the probe met a 429: proved nothing
    assert f.targets[0].breaker.state == "open" and f.targets[0].breaker.failures == 1
    assert await collect(f) == [TextDelta("a"), TextDelta("b"), Finish("stop")]
    assert f.targets[0].breaker.state == "closed"


async def test_every_target_cooling_waits_for_the_one_ending_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock, sleeps = Clock(), Sleeps()
    monkeypatch.setattr(resilience, "time", clock)
    monkeypatch.setattr(resilience, "asyncio", sleeps)
    a, b, c = Scripted("a", OK), Scripted("b", OK), Scripted("c", OK)
    f = failover(a, b, c, policy=Policy(backoff_max=5.0))
    f.targets[0].cool_until["m"] = 1003.0
    f.targets[1].cool_until["m"] = 1001.5
    f.targets[2].cool_until["m"] = 1002.0
    with caplog.at_level("DEBUG", logger="grok_api.resilience"):
        assert await collect(f) == [TextDelta("a"), TextDelta("b"), Finish("stop")]
    assert (a.calls, b.calls, c.calls) == (0, 1, 0) and sleeps.waits == [1.5]
    assert caplog.records == []  # waiting for a cool-down is not panic mode
    f.targets[1].cool_until["m"] = 1005.0  # now c ends first; b's breaker is open, which rules it out
    f.targets[1].breaker.clock = clock.monotonic
    f.targets[1].breaker.failure()
    f.targets[1].breaker.failure()
    await collect(f)
    assert (a.calls, b.calls, c.calls) == (0, 1, 1) and sleeps.waits == [1.5, 2.0]


async def test_a_cool_down_longer_than_the_backoff_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, sleeps = Clock(), Sleeps()
    monkeypatch.setattr(resilience, "time", clock)
    monkeypatch.setattr(resilience, "asyncio", sleeps)
    a = Scripted("a", OK)
    f = failover(a, policy=Policy(backoff_max=5.0))
    f.targets[0].cool_until["m"] = 1005.0  # exactly the longest wait: waited for
    await collect(f)
    assert sleeps.waits == [5.0] and a.calls == 1
    f.targets[0].cool_until["m"] = clock.now + 5.5
    with pytest.raises(RateLimited, match=r"up is rate limiting requests; retry later\.") as info:
        await collect(f)
    assert info.value.retry_after == 5.5 and a.calls == 1 and sleeps.waits == [5.0]


async def test_panic_mode_asks_the_target_opened_longest_ago(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock, sleeps = Clock(), Sleeps()
    monkeypatch.setattr(resilience, "time", clock)
    monkeypatch.setattr(resilience, "asyncio", sleeps)
    a, b, c = Scripted("a", OK), Scripted("b", OK), Scripted("c", OK)
    f = failover(a, b, c, policy=Policy(retries=0, breaker_threshold=1, breaker_reset=3600))
    for t, opened in zip(f.targets, (300.0, 100.0, 200.0), strict=True):
        t.breaker.clock = lambda opened=opened: opened
        t.breaker.failure()
        t.breaker.clock = clock.monotonic
    f.targets[1].cool_until["m"] = 1000.0 + 2.0  # b cools down too: it is waited for
    with caplog.at_level("DEBUG", logger="grok_api.resilience"):
        await collect(f)
    records = caplog.records
    assert (a.calls, b.calls, c.calls) == (0, 1, 0) and sleeps.waits == [2.0]
    assert [r.getMessage() for r in records] == [
        "up: every target's circuit breaker is open; trying b anyway"
    ]
    assert f.targets[1].breaker.state == "closed"


async def test_a_cooling_target_whose_breaker_is_open_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, sleeps = Clock(), Sleeps()
    monkeypatch.setattr(resilience, "time", clock)
    monkeypatch.setattr(resilience, "asyncio", sleeps)
    a, b = Scripted("a", OK), Scripted("b", OK)
    f = failover(a, b, policy=Policy(breaker_threshold=1, breaker_reset=3600))
    for t, opened in zip(f.targets, (200.0, 100.0), strict=True):
        t.breaker.clock = lambda opened=opened: opened
        t.breaker.failure()
        t.breaker.clock = clock.monotonic
    f.targets[0].cool_until["m"] = 1001.0  # a cools down, but its breaker is open as well
    await collect(f)
    assert (a.calls, b.calls) == (0, 1) and sleeps.waits == []


async def test_panic_mode_breaks_a_tie_by_the_shorter_cool_down(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, sleeps = Clock(), Sleeps()
    monkeypatch.setattr(resilience, "time", clock)
    monkeypatch.setattr(resilience, "asyncio", sleeps)
    a, b = Scripted("a", OK), Scripted("b", OK)
    f = failover(a, b, policy=Policy(breaker_threshold=1, breaker_reset=3600))
    for t in f.targets:
        t.breaker.clock = lambda: 100.0
        t.breaker.failure()
        t.breaker.clock = clock.monotonic
    f.targets[0].cool_until["m"] = 1003.0
    f.targets[1].cool_until["m"] = 1001.0
    await collect(f)
    assert (a.calls, b.calls) == (0, 1) and sleeps.waits == [1.0]


async def test_a_request_counts_one_failure_per_target_and_notes_the_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = Scripted("a", UpstreamError("x")), Scripted("b", UpstreamError("y"))
    f = failover(a, b, policy=Policy(retries=3, backoff_base=0.0, breaker_threshold=100))
    record = RequestRecord(id="r", method="POST", path="/", surface="chat", started=0.0, t0=0.0)
    token = CURRENT.set(record)
    try:
        with caplog.at_level("DEBUG", logger="grok_api.resilience"), pytest.raises(UpstreamError, match="x"):
            await collect(f)
    finally:
        CURRENT.reset(token)
    assert (a.calls, b.calls) == (3, 1)  # a, b, then the first again among those tried
    assert [t.breaker.failures for t in f.targets] == [1, 1]
    assert record.target == "a"
    assert not [r for r in caplog.records if "circuit breaker is open" in r.getMessage()]  # not panic mode


async def test_a_probe_failing_again_in_the_same_request_reopens_its_breaker() -> None:
    # a fails (its breaker opens), b fails, then a is probed again within the same request and
    # fails: the probe's outcome must reopen a's breaker, or it stays half-open, out of rotation
    a, b = Scripted("a", UpstreamError("x"), UpstreamError("x"), OK), Scripted("b", UpstreamError("y"), OK)
    f = failover(a, b, policy=Policy(retries=2, backoff_base=0.0, breaker_threshold=1, breaker_reset=0.0))
    with pytest.raises(UpstreamError, match="x"):
        await collect(f)
    assert [t.breaker.state for t in f.targets] == ["open", "open"]
    assert await collect(f) == [TextDelta("a"), TextDelta("b"), Finish("stop")]
    assert (a.calls, b.calls) == (3, 1)  # the first target is probed again, and recovers
