"""limits.py's in-process backend directly, on a fake clock (exact, not approximate): GCRA's
remaining counts and resets, the token bucket's reservation and refund, concurrency, budgets
seeded from the store and rolled at UTC midnight and month ends, refusals and their headers.
Both backends' shared behaviour over real time is in test_limits.py."""

from __future__ import annotations

import calendar
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from grok_api import limits as limits_module
from grok_api.config import Settings
from grok_api.errors import QuotaExceeded, RateLimited, Unavailable
from grok_api.limits import (
    BUDGET_DAY,
    BUDGET_MONTH,
    BUDGET_TOTAL,
    CONCURRENCY,
    REQUESTS,
    TOKENS,
    MemoryLimiter,
    Refusals,
    Ticket,
    fail,
    new_request_id,
    period_starts,
    rate_headers,
    refusal,
    reset_text,
)
from grok_api.limits import Decision as D
from grok_api.store import Database, KeyRecord, Limits, UsageRow, UsageStore

T0 = calendar.timegm((2026, 11, 30, 23, 59, 0))  # a minute before a month ends (and a day)


class Clocks:
    def __init__(self) -> None:
        self.mono, self.wall = 500.0, float(T0)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def key(key_id: str = "k", **limits: int) -> KeyRecord:
    return KeyRecord(
        id=key_id, name="t", key_hash="h", key_prefix="gk-", created_at=0, limits=Limits(**limits)
    )


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[UsageStore]:
    db = await Database.open(Settings(_env_file=None, data_dir=tmp_path).resolved_database_url())  # type: ignore[call-arg]
    yield UsageStore(db)
    await db.close()


def limiter(clocks: Clocks, store: UsageStore | None = None) -> MemoryLimiter:
    return MemoryLimiter(store, clock=lambda: clocks.mono, wall=lambda: clocks.wall)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-1, "0ms"),
        (0, "0ms"),
        (0.0004, "0ms"),
        (0.25, "250ms"),
        (0.9994, "999ms"),
        (0.9996, "1s"),
        (1, "1s"),
        (6, "6s"),
        (2.5, "2.5s"),
        (2.25, "2.25s"),
        (59.999, "59.999s"),
        (60, "1m0s"),
        (90, "1m30s"),
        (61.5, "1m1.5s"),
        (3600, "60m0s"),
    ],
)
def test_reset_text(seconds: float, text: str) -> None:
    assert reset_text(seconds) == text


def test_period_starts() -> None:
    assert period_starts(T0) == (
        calendar.timegm((2026, 11, 30, 0, 0, 0)),
        calendar.timegm((2026, 11, 1, 0, 0, 0)),
    )
    assert period_starts(T0 + 60) == (calendar.timegm((2026, 12, 1, 0, 0, 0)),) * 2


def test_rate_headers_only_for_the_limits_a_key_has() -> None:
    d = D(True, requests_remaining=-3, requests_reset=1.5, tokens_remaining=7, tokens_reset=0.25)
    assert rate_headers(Limits(), d) == {}
    assert rate_headers(Limits(rpm=5, tpm=9, concurrency=1), d) == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1.5s",
        "x-ratelimit-limit-tokens": "9",
        "x-ratelimit-remaining-tokens": "7",
        "x-ratelimit-reset-tokens": "250ms",
    }


@pytest.mark.parametrize(
    ("decision", "limits", "error", "code", "message", "retry"),
    [
        (
            D(False, 1, 12.0),
            Limits(rpm=5),
            RateLimited,
            "rate_limit_requests",
            "Rate limit reached for requests: this key allows 5 requests per minute. Retry after 12s.",
            "12",
        ),
        (
            D(False, 2, 0.0),
            Limits(tpm=100),
            RateLimited,
            "rate_limit_tokens",
            "Rate limit reached for tokens: this key allows 100 tokens per minute. Retry after 1ms.",
            "1",
        ),
        (
            D(False, 3, 1.0),
            Limits(concurrency=2),
            RateLimited,
            "rate_limit_concurrency",
            "Rate limit reached for concurrency: this key allows 2 requests at once. Retry after 1s.",
            "1",
        ),
        (
            D(False, 4),
            Limits(budget_day=10),
            QuotaExceeded,
            "insufficient_quota",
            "This key's daily token budget of 10 tokens is used up.",
            "60",
        ),
        (
            D(False, 5),
            Limits(budget_month=20),
            QuotaExceeded,
            "insufficient_quota",
            "This key's monthly token budget of 20 tokens is used up.",
            "60",
        ),
        (
            D(False, 6),
            Limits(budget_total=30),
            QuotaExceeded,
            "insufficient_quota",
            "This key's total token budget of 30 tokens is used up.",
            None,
        ),
    ],
)
def test_refusals(
    decision: D, limits: Limits, error: type[RateLimited], code: str, message: str, retry: str | None
) -> None:
    err = refusal(limits, decision, T0)  # a minute before the day and the month end
    assert type(err) is error and (err.code, err.message, err.status) == (code, message, 429)
    assert err.headers.get("Retry-After") == retry


def test_a_monthly_budget_waits_for_the_next_month() -> None:
    mid = calendar.timegm((2026, 12, 15, 12, 0, 0))
    assert (
        refusal(Limits(budget_month=1), D(False, 5), mid).retry_after
        == calendar.timegm((2027, 1, 1, 0, 0, 0)) - mid
    )
    assert refusal(Limits(budget_day=1), D(False, 4), mid).retry_after == 12 * 3600


async def test_gcra_burst_then_one_every_period(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(rpm=4)  # one every 15 s, a burst of 4
    tickets = [await lim.acquire(k, 1) for _ in range(4)]
    assert [t.headers["x-ratelimit-remaining-requests"] for t in tickets] == ["3", "2", "1", "0"]
    assert [t.headers["x-ratelimit-reset-requests"] for t in tickets] == ["15s", "30s", "45s", "1m0s"]
    assert all(t.checked and t.reserved == 1 and t.key_id == "k" for t in tickets)
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 1)
    assert info.value.retry_after == 15.0 and info.value.headers["x-ratelimit-reset-requests"] == "1m0s"
    clocks.advance(14.999)
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)
    clocks.advance(0.001)
    assert (await lim.acquire(k, 1)).headers["x-ratelimit-remaining-requests"] == "0"
    clocks.advance(60)  # a whole minute of quiet refills the burst
    assert (await lim.acquire(k, 1)).headers["x-ratelimit-remaining-requests"] == "3"


async def test_token_bucket_reserve_refund_and_refill(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(tpm=120)  # refills 2 tokens a second
    t = await lim.acquire(k, 100)
    assert (t.reserved, t.headers["x-ratelimit-remaining-tokens"], t.headers["x-ratelimit-reset-tokens"]) == (
        100,
        "20",
        "50s",
    )
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 30)
    assert info.value.retry_after == 5.0 and info.value.code == "rate_limit_tokens"
    lim.settle(t, 40)  # used 40 of the 100 reserved: 60 come back
    t2 = await lim.acquire(k, 30)
    assert t2.headers["x-ratelimit-remaining-tokens"] == "50"
    lim.settle(t2, 130)  # used 100 more than reserved: charged
    clocks.advance(10)  # +20
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)
    clocks.advance(1000)
    assert (await lim.acquire(k, 500)).reserved == 120  # capped at the bucket; the bucket never overfills
    lim.settle(Ticket("k", k.limits, 120, checked=True), 0)
    assert (await lim.acquire(k, 1)).headers["x-ratelimit-remaining-tokens"] == "119"


async def test_a_refused_check_takes_nothing(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(rpm=60, tpm=10, concurrency=1)
    t = await lim.acquire(k, 10)
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 1)  # tokens refused: no request slot taken either
    assert info.value.code == "rate_limit_tokens"
    lim.settle(t, 0)
    second = await lim.acquire(k, 1)
    assert second.headers["x-ratelimit-remaining-requests"] == "58"


async def test_concurrency_counts_requests_in_flight(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(concurrency=2)
    a, _ = await lim.acquire(k, 1), await lim.acquire(k, 1)
    assert a.headers == {}
    with pytest.raises(RateLimited) as info:
        await lim.acquire(k, 1)
    assert (info.value.code, info.value.retry_after) == ("rate_limit_concurrency", 1.0)
    lim.settle(a, 0)
    await lim.acquire(k, 1)
    other = key("other", concurrency=1)
    await lim.acquire(other, 1)  # per key


async def test_keys_without_limits_are_not_tracked(clocks: Clocks) -> None:
    lim = limiter(clocks)
    t = await lim.acquire(key(), 10**9)
    assert (t.checked, t.reserved, t.headers) == (False, 0, {})
    lim.settle(t, 5)
    lim.settle(Ticket("never-seen", Limits(rpm=1), checked=True), 5)
    assert lim._keys == {} and lim.describe() == "memory"


def row(key_id: str, hour: int, tokens: int) -> UsageRow:
    return UsageRow(key_id, "m", hour, requests=1, prompt_tokens=tokens)


@pytest.mark.parametrize(
    ("limit", "stored", "used_after"),
    [  # what the store holds for the key (hour, tokens) and whether the budget is used up
        ("budget_total", [(0, 60), (T0 // 3600 * 3600, 40)], True),
        (
            "budget_month",
            [(calendar.timegm((2026, 10, 31, 23, 0, 0)), 60), (calendar.timegm((2026, 11, 1, 0, 0, 0)), 99)],
            False,
        ),
        (
            "budget_day",
            [(calendar.timegm((2026, 11, 29, 23, 0, 0)), 60), (calendar.timegm((2026, 11, 30, 0, 0, 0)), 99)],
            False,
        ),
        ("budget_day", [(calendar.timegm((2026, 11, 30, 0, 0, 0)), 100)], True),
    ],
)
async def test_budgets_are_seeded_from_the_store(
    clocks: Clocks, store: UsageStore, limit: str, stored: list[tuple[int, int]], used_after: bool
) -> None:
    await store.add([row("k", hour, tokens) for hour, tokens in stored] + [row("other", 0, 1000)])
    lim, k = limiter(clocks, store), key(**{limit: 100})
    if used_after:
        with pytest.raises(QuotaExceeded):
            await lim.acquire(k, 1)
    else:
        lim.settle(await lim.acquire(k, 1), 1)
        with pytest.raises(QuotaExceeded):
            await lim.acquire(k, 1)


async def test_budgets_roll_over_at_midnight_and_month_end(clocks: Clocks) -> None:
    lim = limiter(clocks)
    day, month, total = key("d", budget_day=10), key("m", budget_month=10), key("t", budget_total=10)
    for k in (day, month, total):
        lim.settle(await lim.acquire(k, 1), 10)
        with pytest.raises(QuotaExceeded):
            await lim.acquire(k, 1)
    clocks.advance(59.0)  # 23:59:59 on the month's last day: nothing rolls yet
    for k in (day, month, total):
        with pytest.raises(QuotaExceeded):
            await lim.acquire(k, 1)
    clocks.advance(1.0)  # midnight, 1 December
    await lim.acquire(day, 1)
    await lim.acquire(month, 1)
    with pytest.raises(QuotaExceeded):
        await lim.acquire(total, 1)
    lim.settle(await lim.acquire(key("d2", budget_day=10), 1), 10)
    clocks.advance(86400.0)  # the next day: the day rolls, the month does not
    await lim.acquire(key("d2", budget_day=10), 1)
    lim.settle(Ticket("m", month.limits, checked=True), 10)
    with pytest.raises(QuotaExceeded):
        await lim.acquire(month, 1)


async def test_a_wall_clock_stepping_back_recomputes_the_periods(clocks: Clocks) -> None:
    lim = limiter(clocks)
    k = key(budget_day=10)
    await lim.acquire(k, 1)
    clocks.wall -= 2 * 86400  # the clock was corrected backwards two days
    lim.settle(await lim.acquire(k, 1), 10)
    assert lim._periods[0] == period_starts(clocks.wall)[0]


def test_fail_open_or_closed() -> None:
    opened: list[Any] = []
    t = fail("open", OSError("down"), key(rpm=1), lambda: opened.append(1))
    assert (t.checked, opened) == (False, [1])
    with pytest.raises(Unavailable) as info:
        fail("closed", OSError("down"), key(rpm=1), lambda: opened.append(1))
    assert (info.value.status, info.value.code, opened) == (503, "limiter_unavailable", [1])
    assert isinstance(info.value.__cause__, OSError)


def test_request_ids() -> None:
    ids = {new_request_id() for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 16 for i in ids)


async def test_exact_refill_and_headers_at_zero(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(tpm=120)  # 2 tokens a second
    t = await lim.acquire(k, 120)
    assert t.headers["x-ratelimit-remaining-tokens"] == "0"
    clocks.advance(5)  # exactly 10 tokens back
    await lim.acquire(k, 10)
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)


async def test_refusals_carry_the_state_of_every_limit(clocks: Clocks) -> None:
    lim = limiter(clocks)
    k = key(rpm=60, tpm=10)
    await lim.acquire(k, 10)
    with pytest.raises(RateLimited) as tokens:
        await lim.acquire(k, 1)
    # the requests limit is reported too (as this request would have left it)
    assert int(tokens.value.headers["x-ratelimit-remaining-requests"]) in (58, 59)
    assert tokens.value.headers["x-ratelimit-reset-requests"] == "2s"
    one = key("one", rpm=1)
    await lim.acquire(one, 1)
    with pytest.raises(RateLimited) as requests:
        await lim.acquire(one, 1)
    assert requests.value.headers["x-ratelimit-remaining-requests"] == "0"
    budget = key("b", rpm=5, budget_total=1)
    lim.settle(await lim.acquire(budget, 1), 1)
    with pytest.raises(QuotaExceeded) as quota:
        await lim.acquire(budget, 1)
    assert quota.value.headers["x-ratelimit-limit-requests"] == "5"


async def test_unlimited_tickets_name_their_key(clocks: Clocks) -> None:
    k = key("free")
    t = await limiter(clocks).acquire(k, 1)
    assert (t.key_id, t.limits) == ("free", k.limits)
    opened = fail("open", OSError(), k, lambda: None)
    assert (opened.key_id, opened.limits, opened.checked) == ("free", k.limits, False)


async def test_a_rolled_day_starts_from_zero(clocks: Clocks) -> None:
    lim = limiter(clocks)
    day, month = key("d", budget_day=10), key("m", budget_month=10)
    for k in (day, month):
        lim.settle(await lim.acquire(k, 1), 10)
    clocks.advance(60.0)  # midnight, 1 December: both roll
    for k in (day, month):
        lim.settle(await lim.acquire(k, 1), 9)  # 9 of 10: still admitted
        lim.settle(await lim.acquire(k, 1), 1)
        with pytest.raises(QuotaExceeded):
            await lim.acquire(k, 1)


async def test_settling_frees_exactly_one_slot_and_adds_up_the_total(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(concurrency=2)
    a = await lim.acquire(k, 1)
    await lim.acquire(k, 1)
    lim.settle(a, 0)
    await lim.acquire(k, 1)
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)
    total = key("t", budget_total=10)
    lim.settle(await lim.acquire(total, 1), 6)
    lim.settle(await lim.acquire(total, 1), 6)
    with pytest.raises(QuotaExceeded):
        await lim.acquire(total, 1)


async def test_a_key_whose_token_limit_was_removed_settles(clocks: Clocks) -> None:
    lim = limiter(clocks)
    await lim.acquire(key("k", tpm=100), 10)
    updated = key("k", rpm=100)  # the operator removed the token limit meanwhile
    lim.settle(await lim.acquire(updated, 10), 5)


def test_the_fail_closed_message() -> None:
    with pytest.raises(Unavailable) as info:
        fail("closed", OSError(), key(rpm=1), lambda: None)
    assert (
        info.value.message
        == "The rate limiter is unavailable, and this gateway refuses requests until it is back."
    )


class Mono:
    """limits' ``time`` with a monotonic clock the test sets (``gmtime`` is the real one)."""

    gmtime = staticmethod(time.gmtime)

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def mono(monkeypatch: pytest.MonkeyPatch) -> Mono:
    m = Mono()
    monkeypatch.setattr(limits_module, "time", m)
    return m


def test_a_refusal_is_remembered_for_the_wait_it_named(mono: Mono) -> None:
    r, k = Refusals(horizon=5.0), key(rpm=1)
    r.check(k)  # nothing remembered
    exc = RateLimited("slow down", retry_after=2.0, headers={"x-ratelimit-limit-requests": "1"}, code="c")
    assert r.remember(k, exc, REQUESTS) is exc
    mono.now = 101.5
    with pytest.raises(RateLimited) as info:
        r.check(k)
    got = info.value
    assert got is not exc and type(got) is RateLimited
    assert (got.message, got.code, got.retry_after) == ("slow down", "c", 0.5)
    assert got.headers == {"x-ratelimit-limit-requests": "1", "Retry-After": "1"}  # its own Retry-After
    r.check(key("other", rpm=1))  # another key is not refused
    mono.now = 102.0  # the wait is over
    r.check(k)
    mono.now = 101.0
    r.check(k)  # and forgotten


@pytest.mark.parametrize("reason", [REQUESTS, BUDGET_DAY, BUDGET_MONTH, BUDGET_TOTAL])
def test_refusals_that_are_remembered_up_to_the_horizon(mono: Mono, reason: int) -> None:
    r, k = Refusals(horizon=5.0), key(rpm=1)
    r.remember(k, QuotaExceeded("budget", retry_after=3600.0), reason)
    mono.now = 104.9
    with pytest.raises(QuotaExceeded) as info:
        r.check(k)
    assert info.value.retry_after == pytest.approx(0.1)
    mono.now = 105.0  # at most the horizon, however long the refusal's own wait
    r.check(k)


@pytest.mark.parametrize("reason", [TOKENS, CONCURRENCY])
def test_refusals_that_depend_on_the_request_are_not_remembered(mono: Mono, reason: int) -> None:
    r, k = Refusals(), key(rpm=1)
    r.remember(k, RateLimited("x", retry_after=3.0), reason)
    r.check(k)


def test_a_refusal_without_a_wait_holds_for_the_horizon_and_names_none(mono: Mono) -> None:
    r, k = Refusals(horizon=2.0), key(rpm=1)
    r.remember(k, RateLimited("x"), REQUESTS)
    mono.now = 101.9
    with pytest.raises(RateLimited) as info:
        r.check(k)
    assert info.value.retry_after is None and "Retry-After" not in info.value.headers
    mono.now = 102.0
    r.check(k)


def test_a_key_whose_limits_changed_is_checked_anew(mono: Mono) -> None:
    r = Refusals()
    r.remember(key(rpm=1), RateLimited("x", retry_after=3.0), REQUESTS)
    r.check(key(rpm=2))  # raised meanwhile
    r.check(key(rpm=1))  # and the old refusal is forgotten


def test_refusals_remember_at_most_max_keys(mono: Mono) -> None:
    r = Refusals(max_keys=2)
    for name in ("a", "b"):
        r.remember(key(name), RateLimited("x", retry_after=3.0), REQUESTS)
    with pytest.raises(RateLimited):
        r.check(key("a"))
    r.remember(key("c"), RateLimited("x", retry_after=3.0), REQUESTS)  # full: start over
    r.check(key("a"))
    r.check(key("b"))
    with pytest.raises(RateLimited):
        r.check(key("c"))


async def test_requests_in_flight_reserve_their_share_of_a_budget(clocks: Clocks) -> None:
    lim, k = limiter(clocks), key(budget_day=100)
    t1 = await lim.acquire(k, 60)
    assert t1.granted == 60
    t0 = await lim.acquire(k, 0)  # reserves nothing
    assert t0.granted == 0
    lim.settle(t0, 0)  # and gives nothing back
    t2 = await lim.acquire(k, 60)
    assert t2.granted == 40  # what the first left of the day's budget
    with pytest.raises(RateLimited):
        await lim.acquire(k, 1)  # all of it is reserved
    lim.settle(t1, 10)  # used 10 of its 60: the other 50 are free again
    assert (await lim.acquire(k, 60)).granted == 50


async def test_the_smallest_budget_bounds_the_grant(clocks: Clocks) -> None:
    lim = limiter(clocks)
    assert (await lim.acquire(key("a", budget_day=40, budget_total=1000), 60)).granted == 40
    assert (await lim.acquire(key("b", budget_month=100), 100)).granted == 100  # nothing used yet
    assert (await lim.acquire(key("c", budget_day=100), 100)).granted == 100
    assert (await lim.acquire(key("d", rpm=10), 60)).granted is None  # no budget: nothing to reserve


async def test_a_budget_refusal_is_remembered_for_the_horizon(clocks: Clocks, mono: Mono) -> None:
    lim, k = limiter(clocks), key(budget_day=10)
    lim.settle(await lim.acquire(k, 1), 10)
    with pytest.raises(RateLimited) as refused:
        await lim.acquire(k, 1)
    mono.now = 104.9  # the day ends in a minute; remembered for 5 s at most
    with pytest.raises(RateLimited) as again:
        lim.refusals.check(k)
    assert type(again.value) is type(refused.value) and again.value.code == refused.value.code
    mono.now = 105.0
    lim.refusals.check(k)
