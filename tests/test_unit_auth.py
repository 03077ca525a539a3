"""auth.py directly, on a real SQLite key store: header parsing, the cache (TTL, size, one query
for concurrent misses, invalidation), the failure throttle, last-used batching."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from grok_api import auth
from grok_api.auth import Authenticator, FailureThrottle, key_from_headers
from grok_api.config import Settings
from grok_api.errors import AuthenticationFailed, PermissionDenied, RateLimited
from grok_api.store import Database, KeyRecord, KeyStore


class CountingStore(KeyStore):
    """The real store, counting its lookups; ``fail_touch`` makes the next touch fail."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.lookups = 0
        self.fail_touch = False
        self.gate: asyncio.Event | None = None

    async def by_hash(self, digest: str) -> KeyRecord | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().by_hash(digest)

    async def touch(self, last_used: dict[str, int]) -> None:
        if self.fail_touch:
            self.fail_touch = False
            raise OSError("store away")
        await super().touch(last_used)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    db = await Database.open(Settings(_env_file=None, data_dir=tmp_path).resolved_database_url())  # type: ignore[call-arg]
    yield CountingStore(db)
    await db.close()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"authorization": "Bearer gk-abc"}, "gk-abc"),
        ({"authorization": "  bearer   gk-abc  "}, "gk-abc"),
        ({"authorization": "BEARER gk-abc"}, "gk-abc"),
        ({"authorization": "Basic gk-abc"}, None),
        ({"authorization": "Bearer "}, None),
        ({"authorization": "Bearer"}, None),
        ({"authorization": "gk-abc"}, None),
        ({"authorization": "Bearer gk-abc", "x-api-key": "gk-other"}, "gk-abc"),
        ({"authorization": "Basic x", "x-api-key": "gk-other"}, None),  # a wrong scheme is not skipped
        ({"authorization": "", "x-api-key": " gk-other "}, "gk-other"),
        ({"x-api-key": "gk-other"}, "gk-other"),
        ({"x-api-key": "   "}, None),
        ({"x-api-key": ""}, None),
        ({}, None),
    ],
)
def test_key_from_headers(headers: dict[str, str], key: str | None) -> None:
    assert key_from_headers(headers) == key


async def test_a_good_key_is_read_once_then_served_from_the_cache(store: CountingStore) -> None:
    record, key = await store.create("a")
    a = Authenticator(store, ttl=60)
    assert await a.authenticate(bearer(key), "1.2.3.4") == record
    assert await a.authenticate({"x-api-key": key}) == record
    assert store.lookups == 1


async def test_unknown_keys_are_cached_too_and_counted_as_failures(store: CountingStore) -> None:
    a = Authenticator(store, ttl=60, failures_per_minute=100)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed, match=r"^Incorrect API key provided\.$") as info:
            await a.authenticate(bearer("gk-nope"), "c")
    assert info.value.code == "invalid_api_key" and info.value.status == 401
    assert store.lookups == 1 and len(a.throttle._failures["c"]) == 3


async def test_a_missing_key_says_how_to_send_one(store: CountingStore) -> None:
    a = Authenticator(store, ttl=60)
    with pytest.raises(AuthenticationFailed, match="Authorization: Bearer <key>"):
        await a.authenticate({}, "c")
    assert store.lookups == 0 and "c" not in a.throttle._failures  # not a guess


@pytest.mark.parametrize(
    ("revoke", "expires_in", "status"), [(True, None, "revoked"), (False, -1, "expired")]
)
async def test_revoked_and_expired_keys(
    store: CountingStore, revoke: bool, expires_in: float | None, status: str
) -> None:
    record, key = await store.create("a", expires_in=expires_in)
    if revoke:
        await store.revoke(record.id)
    a = Authenticator(store, ttl=60)
    with pytest.raises(AuthenticationFailed) as info:
        await a.authenticate(bearer(key), "c")
    assert (info.value.message, info.value.code) == (f"This API key has been {status}.", f"key_{status}")
    assert len(a.throttle._failures["c"]) == 1 and a._last_used == {}


async def test_the_cache_expires_after_its_ttl(store: CountingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    _, key = await store.create("a")
    a = Authenticator(store, ttl=5)
    await a.authenticate(bearer(key))
    now[0] = 104.999
    await a.authenticate(bearer(key))
    assert store.lookups == 1
    now[0] = 105.0
    await a.authenticate(bearer(key))
    assert store.lookups == 2


async def test_the_cache_keeps_the_most_recent_entries(store: CountingStore) -> None:
    keys = [(await store.create(str(i)))[1] for i in range(3)]
    a = Authenticator(store, ttl=60, max_entries=2)
    for k in keys:
        await a.authenticate(bearer(k))
    assert store.lookups == 3
    await a.authenticate(bearer(keys[2]))
    await a.authenticate(bearer(keys[1]))
    assert store.lookups == 3
    await a.authenticate(bearer(keys[0]))  # the oldest was dropped
    assert store.lookups == 4 and len(a._cache) == 2


async def test_concurrent_misses_share_one_query(store: CountingStore) -> None:
    record, key = await store.create("a")
    a = Authenticator(store, ttl=60)
    store.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(a.authenticate(bearer(key))) for _ in range(5)]
    await asyncio.sleep(0.05)
    store.gate.set()
    assert await asyncio.gather(*tasks) == [record] * 5
    assert store.lookups == 1 and a._pending == {}


async def test_a_failing_lookup_fails_every_waiter_and_is_not_cached(store: CountingStore) -> None:
    _, key = await store.create("a")
    a = Authenticator(store, ttl=60)
    store.gate = asyncio.Event()
    original = store.by_hash

    async def broken(digest: str) -> KeyRecord | None:
        await original(digest)
        raise OSError("db gone")

    store.by_hash = broken  # type: ignore[method-assign]
    tasks = [asyncio.ensure_future(a.authenticate(bearer(key))) for _ in range(3)]
    await asyncio.sleep(0.05)
    store.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results) and a._pending == {} and a._cache == {}
    store.by_hash = original  # type: ignore[method-assign]
    store.gate = None
    assert (await a.authenticate(bearer(key))).name == "a"


async def test_invalidate_one_key_or_all(store: CountingStore) -> None:
    (r1, k1), (_, k2) = await store.create("1"), await store.create("2")
    a = Authenticator(store, ttl=60)
    for k in (k1, k2):
        await a.authenticate(bearer(k))
    with pytest.raises(AuthenticationFailed):
        await a.authenticate(bearer("gk-unknown"))
    a.invalidate(r1.id)
    assert len(a._cache) == 2  # the other key and the unknown one stay
    await a.authenticate(bearer(k1))
    assert store.lookups == 4
    for everything in (None, "*"):
        a.invalidate(everything)
        assert len(a._cache) == 0
        await a.authenticate(bearer(k1))


def test_check_model(store: CountingStore) -> None:
    rec = KeyRecord(
        id="k", name="n", key_hash="h", key_prefix="gk-", created_at=0, models=frozenset({"grok-4"})
    )
    Authenticator.check_model(rec, "grok-4")
    with pytest.raises(PermissionDenied) as info:
        Authenticator.check_model(rec, "grok-3")
    assert info.value.param == "model" and "'grok-3'" in info.value.message


async def test_last_used_is_batched_and_kept_when_the_store_is_away(store: CountingStore) -> None:
    record, key = await store.create("a")
    a = Authenticator(store, ttl=60)
    await a.authenticate(bearer(key))
    stamped = a._last_used[record.id]
    assert abs(stamped - time.time()) < 5
    store.fail_touch = True
    await a.flush_last_used()
    assert a._last_used == {record.id: stamped}  # kept for the next flush
    a._last_used[record.id] = stamped + 1  # a newer use meanwhile wins
    store.fail_touch = True
    await a.flush_last_used()
    assert a._last_used == {record.id: stamped + 1}
    await a.flush_last_used()
    assert a._last_used == {} and (await store.get(record.id)).last_used_at == stamped + 1  # type: ignore[union-attr]


async def test_the_flusher_flushes_every_interval(store: CountingStore) -> None:
    record, key = await store.create("a")
    a = Authenticator(store, ttl=60)
    await a.authenticate(bearer(key))
    task = asyncio.ensure_future(a.run_flusher(0.01))
    for _ in range(500):
        if not a._last_used:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # stopped before the store closes
    assert a._last_used == {} and (await store.get(record.id)).last_used_at is not None  # type: ignore[union-attr]


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_the_throttle_counts_a_sliding_minute_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Monotonic()
    monkeypatch.setattr(auth, "time", clock)
    t = FailureThrottle(3)
    assert t.over("a") is None  # never failed
    for _ in range(3):  # at 1000, 1010, 1020
        t.failed("a")
        clock.now += 10
    assert t.over("a") == 30.0 and t.over("b") is None
    denied = AuthenticationFailed("no")
    refused = t.refuse("a", denied)
    assert isinstance(refused, RateLimited) and refused.code == "too_many_auth_failures"
    assert refused.message == "Too many failed authentications from this address; wait before trying again."
    assert refused.headers["Retry-After"] == "30"
    assert t.refuse("b", denied) is denied  # under the limit: the 401 itself
    assert len(t._failures["a"]) == 3  # never more kept than the limit
    clock.now = 1070.5  # 1000 and 1010 are over a minute old
    assert t.over("a") is None


def test_the_throttle_forgets_the_least_recent_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "time", Monotonic())
    t = FailureThrottle(1, max_clients=2)
    for client in ("a", "b", "a", "c"):
        t.failed(client)
    assert list(t._failures) == ["a", "c"]
    assert t.over("a") is not None and t.over("b") is None


def test_defaults() -> None:
    a = Authenticator(KeyStore.__new__(KeyStore), ttl=1)
    assert (a.max_entries, a.throttle.per_minute, a.throttle.max_clients) == (50_000, 30, 100_000)


async def test_authenticate_throttles_guesses_but_never_a_valid_key(store: CountingStore) -> None:
    _, key = await store.create("a")
    a = Authenticator(store, ttl=60, failures_per_minute=2)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await a.authenticate(bearer("gk-guess"), "guesser")
    with pytest.raises(RateLimited):
        await a.authenticate(bearer("gk-guess"), "guesser")
    assert (await a.authenticate(bearer(key), "guesser")).name == "a"  # a key that verifies is served
    with pytest.raises(AuthenticationFailed):
        await a.authenticate(bearer("gk-guess"), "someone else")


def test_the_throttle_keeps_the_latest_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Monotonic()
    monkeypatch.setattr(auth, "time", clock)
    t = FailureThrottle(3)
    for _ in range(5):  # at 1000, 1010, ... 1040: the last three are kept
        t.failed("a")
        clock.now += 10
    clock.now = 1070.5  # 1000 and 1010 would have expired; 1020 has not
    assert t.over("a") is not None


async def test_a_failed_last_used_write_is_logged(
    store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = await store.create("a")
    a = Authenticator(store, ttl=60)
    await a.authenticate(bearer(key))
    store.fail_touch = True
    with caplog.at_level("WARNING", logger="grok_api.auth"):
        await a.flush_last_used()
    (record,) = caplog.records
    assert record.getMessage() == "could not record last-used times; will retry"
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)


@pytest.mark.parametrize(
    ("raw", "twice"),
    [
        ([], None),
        ([(b"authorization", b"Bearer a"), (b"x-api-key", b"b")], None),  # one each: the first wins
        (
            [(b"authorization", b"Bearer a"), (b"accept", b"x"), (b"authorization", b"Bearer b")],
            "authorization",
        ),
        ([(b"x-api-key", b"a"), (b"authorization", b"Bearer a"), (b"x-api-key", b"a")], "x-api-key"),
        ([(b"accept", b"a"), (b"accept", b"b"), (b"cookie", b"c"), (b"cookie", b"d")], None),
    ],
)
def test_a_credential_header_sent_twice(raw: list[tuple[bytes, bytes]], twice: str | None) -> None:
    assert auth.duplicate_credentials(raw) == twice


def test_the_duplicated_header_error_names_it() -> None:
    err = auth.duplicated("x-api-key")
    assert (err.status, err.param, err.message) == (
        400,
        "x-api-key",
        "The 'x-api-key' header was sent more than once; send it once.",
    )


def test_a_failure_exactly_a_minute_old_no_longer_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Monotonic()
    monkeypatch.setattr(auth, "time", clock)
    t = FailureThrottle(1)
    t.failed("a")
    clock.now += 59.5
    assert t.over("a") == 0.5
    clock.now += 0.5
    assert t.over("a") is None


async def test_a_throttled_address_does_not_fill_the_cache_with_misses(store: CountingStore) -> None:
    record, key = await store.create("a")
    a = Authenticator(store, ttl=60, failures_per_minute=2)
    for guess in ("gk-1", "gk-2"):
        with pytest.raises(AuthenticationFailed):
            await a.authenticate(bearer(guess), "guesser")
    assert store.lookups == 2
    for _ in range(2):
        with pytest.raises(RateLimited):
            await a.authenticate(bearer("gk-3"), "guesser")
    assert store.lookups == 4  # each throttled guess is read, not remembered
    for _ in range(2):  # a key that verifies is served, and cached, whatever its address did
        assert await a.authenticate(bearer(key), "guesser") == record
    assert store.lookups == 5
    for _ in range(2):  # another address's miss is remembered
        with pytest.raises(AuthenticationFailed):
            await a.authenticate(bearer("gk-3"), "other")
    assert store.lookups == 6


def test_the_admin_key_has_its_own_throttle(store: CountingStore) -> None:
    a = Authenticator(store, ttl=60, failures_per_minute=1)
    denied = AuthenticationFailed("no")
    assert a.admin_throttle.refuse("c", denied) is denied
    assert isinstance(a.admin_throttle.refuse("c", denied), RateLimited)
    assert a.throttle.refuse("c", denied) is denied  # the keys' throttle counted nothing
