"""Each limiter backend at each algorithm edge: burst, refill, reservation and refund,
concurrency, budgets (and their seeding from the store), clocks, and Redis being down."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from grok_api.config import Settings
from grok_api.errors import QuotaExceeded, RateLimited, Unavailable
from grok_api.limits import MemoryLimiter, RateLimiter, Ticket, count_request, period_starts, reset_text
from grok_api.limits_redis import RedisLimiter
from grok_api.store import Database, KeyRecord, Limits, UsageRow, UsageStore

Factory = Callable[[], RateLimiter]


def key(**limits: int) -> KeyRecord:
    return KeyRecord(
        id="key_" + secrets.token_hex(8),
        name="t",
        key_hash="h",
        key_prefix="gk-",
        created_at=0,
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


@pytest.fixture
async def usage(tmp_path: Path) -> AsyncIterator[UsageStore]:
    db = await Database.open(Settings(_env_file=None, data_dir=tmp_path).resolved_database_url())  # type: ignore[call-arg]
    yield UsageStore(db)
    await db.close()


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, usage: UsageStore) -> AsyncIterator[Factory]:
    """Builds limiters of one backend; Redis ones share one client to the machine's Redis."""
    if request.param == "memory":
        yield lambda: MemoryLimiter(usage)
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    limiters: list[RedisLimiter] = []

    def build() -> RateLimiter:
        limiters.append(RedisLimiter(client, usage))
        return limiters[-1]

    yield build
    for lim in limiters:
        await lim.aclose()
    await client.aclose()


async def test_burst_then_refusal_with_retry_after(make: Factory) -> None:
    lim, k = make(), key(rpm=5)
    remaining = [(await lim.acquire(k, 1)).headers["x-ratelimit-remaining-requests"] for _ in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 1)
    err = info.value
    assert err.code == "rate_limit_requests"
    assert "5 requests per minute" in err.message
    assert err.retry_after == pytest.approx(12.0, abs=0.5)  # one request every 60/5 s
    assert err.headers["Retry-After"] in ("12", "13")
    assert err.headers["x-ratelimit-limit-requests"] == "5"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"


async def test_refill_admits_again_after_one_period(make: Factory) -> None:
    lim, k = make(), key(rpm=120)  # one request every 0.5 s
    for _ in range(120):
        await lim.acquire(k, 1)
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)
    time.sleep(0.55)
    await lim.acquire(k, 1)
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)


async def test_token_reservation_and_refund(make: Factory) -> None:
    lim, k = make(), key(tpm=100)
    first = await lim.acquire(k, 80)
    assert first.headers["x-ratelimit-remaining-tokens"] == "20"
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 30)
    assert info.value.code == "rate_limit_tokens"
    assert info.value.retry_after == pytest.approx(10 / (100 / 60), abs=0.3)
    lim.settle(first, 20)  # reserved 80, used 20: 60 come back
    await lim.aclose()  # (the Redis backend settles in the background)
    second = await lim.acquire(k, 30)
    assert 49 <= int(second.headers["x-ratelimit-remaining-tokens"]) <= 51


async def test_underestimated_reservation_is_charged(make: Factory) -> None:
    lim, k = make(), key(tpm=100)
    t = await lim.acquire(k, 10)
    lim.settle(t, 90)  # it used 80 more than it reserved
    await lim.aclose()
    with pytest.raises(RateLimited):
        await lim.acquire(k, 20)


async def test_a_reservation_larger_than_the_bucket_is_capped(make: Factory) -> None:
    lim, k = make(), key(tpm=100)
    t = await lim.acquire(k, 5000)
    assert t.reserved == 100


async def test_concurrency(make: Factory) -> None:
    lim, k = make(), key(concurrency=2)
    a = await lim.acquire(k, 1)
    await lim.acquire(k, 1)
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 1)
    assert info.value.code == "rate_limit_concurrency"
    lim.settle(a, 0)
    await lim.aclose()
    await lim.acquire(k, 1)


@pytest.mark.parametrize("budget", ["budget_total", "budget_day", "budget_month"])
async def test_budget_stops_the_key(make: Factory, budget: str) -> None:
    lim, k = make(), key(**{budget: 100})
    t = await lim.acquire(k, 10)
    lim.settle(t, 60)
    await lim.aclose()
    t = await lim.acquire(k, 10)  # 60 < 100: still admitted
    lim.settle(t, 40)
    await lim.aclose()
    with pytest.raises(QuotaExceeded) as info:
        await lim.acquire(k, 10)
    err = info.value
    assert (err.status, err.code, err.type) == (429, "insufficient_quota", "insufficient_quota")
    assert "100 tokens" in err.message
    if budget != "budget_total":
        assert int(err.headers["Retry-After"]) > 0  # the next day or month


async def test_budgets_start_from_the_usage_already_stored(make: Factory, usage: UsageStore) -> None:
    k = key(budget_day=50, budget_total=1000)
    day, _ = period_starts(time.time())
    await usage.add([UsageRow(k.id, "grok-4.3", day, requests=3, prompt_tokens=30, completion_tokens=25)])
    with pytest.raises(QuotaExceeded):
        await make().acquire(k, 1)


async def test_a_request_that_generates_nothing_counts_against_the_rpm_alone(make: Factory) -> None:
    lim, k = make(), key(rpm=2, tpm=10, concurrency=1)
    held = await lim.acquire(k, 10)  # a POST in flight: its concurrency slot and every token
    headers = await count_request(lim, k)  # a read: neither is needed
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert not any("tokens" in name for name in headers)
    with pytest.raises(RateLimited) as info:
        await count_request(lim, k)
    assert info.value.code == "rate_limit_requests" and int(info.value.headers["Retry-After"]) >= 1
    lim.settle(held, 10)
    await lim.aclose()
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 1)  # the read counted for the POSTs too
    assert info.value.code == "rate_limit_requests"
    assert await count_request(lim, key(tpm=10)) == {}  # no rpm: not counted


async def test_keys_without_limits_are_not_checked(make: Factory) -> None:
    t = await make().acquire(key(), 10**9)
    assert not t.checked
    assert t.headers == {}


async def test_wall_clock_jumps_do_not_refill(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    lim, k = make(), key(rpm=2)
    await lim.acquire(k, 1)
    await lim.acquire(k, 1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # this host's clock jumps an hour
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)


async def test_redis_limiter_uses_the_server_clock(
    redis_url: str, usage: UsageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    a = RedisLimiter(client, usage)
    k = key(rpm=2)
    await a.acquire(k, 1)
    await a.acquire(k, 1)
    real_mono = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real_mono() + 3600)
    b = RedisLimiter(client, usage)  # another instance, with a skewed clock
    with pytest.raises(RateLimited):
        await b.acquire(k, 1)
    await client.aclose()


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_down(usage: UsageStore, mode: str) -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    opened: list[int] = []
    lim = RedisLimiter(client, usage, fail_mode=mode, on_fail_open=lambda: opened.append(1))
    k = key(rpm=1)
    if mode == "open":
        for _ in range(3):  # served, unchecked, and counted
            t = await lim.acquire(k, 1)
            assert not t.checked
        assert len(opened) == 3
    else:
        with pytest.raises(Unavailable) as info:
            await lim.acquire(k, 1)
        assert info.value.status == 503
        assert info.value.code == "limiter_unavailable"
        assert opened == []
    await client.aclose()


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (6, "6s"), (2.5, "2.5s"), (90, "1m30s"), (360, "6m0s")]
)
def test_reset_text_is_openais_format(seconds: float, text: str) -> None:
    assert reset_text(seconds) == text


async def test_scripts_are_loaded_again_after_redis_forgets_them(redis_url: str, usage: UsageStore) -> None:
    client = aioredis.Redis.from_url(redis_url)
    lim, k = RedisLimiter(client, usage), key(rpm=3)
    await lim.acquire(k, 1)
    await client.script_flush()  # as after a Redis restart
    await lim.acquire(k, 1)
    await lim.acquire(k, 1)
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)
    await client.aclose()


async def test_concurrent_checks_are_batched_and_exact(redis_url: str, usage: UsageStore) -> None:
    import asyncio

    client = aioredis.Redis.from_url(redis_url)
    lim, k = RedisLimiter(client, usage), key(rpm=25)
    results = await asyncio.gather(*(lim.acquire(k, 1) for _ in range(60)), return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 25
    assert all(isinstance(r, RateLimited) for r in results if isinstance(r, BaseException))
    await client.aclose()


async def test_concurrent_requests_cannot_overshoot_a_budget(make: Factory) -> None:
    lim, k = make(), key(budget_total=100)
    outcomes = await asyncio.gather(*(lim.acquire(k, 30) for _ in range(20)), return_exceptions=True)
    tickets = [t for t in outcomes if isinstance(t, Ticket)]
    assert sum(t.granted or 0 for t in tickets) == 100  # 30 + 30 + 30 + 10: reserved, not overshot
    assert all(isinstance(e, QuotaExceeded) for e in outcomes if not isinstance(e, Ticket))
    assert len(tickets) == 4
    for t in tickets:
        lim.settle(t, 5)  # each used less than it held: the rest is free again
    await lim.aclose()
    again = await lim.acquire(k, 1000)
    assert again.granted == 80


async def test_a_stream_keeps_its_concurrency_slot(redis_url: str, usage: UsageStore) -> None:
    client = aioredis.Redis.from_url(redis_url)
    a = RedisLimiter(client, usage, inflight_ttl=1.2)
    k = key(concurrency=1)
    try:
        held = await a.acquire(k, 1)
        await asyncio.sleep(3.0)  # longer than the lease: renewed while the request runs
        with pytest.raises(RateLimited):
            await a.acquire(k, 1)
        a.settle(held, 0)
        await a.aclose()
        second = await a.acquire(k, 1)
        # a process that dies stops renewing: its lease lapses and the slot is free again
        assert a._renewer is not None
        a._renewer.cancel()
        a._held.clear()
        b = RedisLimiter(client, usage, inflight_ttl=1.2)
        await asyncio.sleep(2.0)
        b.settle(await b.acquire(k, 1), 0)
        await b.aclose()
        assert second.request_id
    finally:
        await a.aclose()
        await client.aclose()
