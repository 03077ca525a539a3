"""Client authentication: ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` → KeyRecord.

Verified from a short-TTL in-process cache keyed by the key's hash: a warm key costs one
SHA-256 and a dict lookup, no database round trip. Concurrent misses for one key share one
query. ``last_used_at`` is collected in memory and written in one batch every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping

from .errors import AuthenticationFailed, InvalidRequest, PermissionDenied, RateLimited
from .store.keys import KeyRecord, KeyStore, hash_key

log = logging.getLogger(__name__)

_MISSING = (
    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
    "(or 'x-api-key: <key>'); the operator issues keys with 'grok-api keys create'."
)


_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def duplicate_credentials(raw: list[tuple[bytes, bytes]]) -> str | None:
    """The name of a credential header sent more than once (which one counts would be a guess)."""
    seen: set[bytes] = set()
    for name, _ in raw:
        if name in _CREDENTIAL_HEADERS:
            if name in seen:
                return name.decode()
            seen.add(name)
    return None


def duplicated(name: str) -> InvalidRequest:
    return InvalidRequest(f"The '{name}' header was sent more than once; send it once.", param=name)


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class FailureThrottle:
    """Counts failed authentications per client address; past the limit, that address is refused.

    A sliding minute per address (kept for at most ``max_clients`` addresses, least recent
    dropped). Guessing a 256-bit key is hopeless anyway; this turns a guesser's 401s into 429s
    and keeps their guesses out of the key cache. A key that verifies is never refused by it, so
    guessers behind the same address (a NAT, a reverse proxy) cannot lock out valid keys.
    """

    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def over(self, client: str) -> float | None:
        """Seconds until ``client`` may fail again, if it is past the limit; else None."""
        times = self._failures.get(client)
        if not times:
            return None
        now = time.monotonic()
        while times and times[0] <= now - 60:
            times.pop(0)
        return times[0] + 60 - now if len(times) >= self.per_minute else None

    def refuse(self, client: str, error: AuthenticationFailed) -> AuthenticationFailed | RateLimited:
        """Counts one failure of ``client``: the error to answer, a 429 once it is past the limit."""
        wait = self.over(client)
        self.failed(client)
        if wait is None:
            return error
        return RateLimited(
            "Too many failed authentications from this address; wait before trying again.",
            retry_after=wait,
            code="too_many_auth_failures",
        )

    def failed(self, client: str) -> None:
        times = self._failures.setdefault(client, [])
        self._failures.move_to_end(client)
        times.append(time.monotonic())
        if len(times) > self.per_minute:
            del times[0]
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


class Authenticator:
    def __init__(
        self, store: KeyStore, *, ttl: float, max_entries: int = 50_000, failures_per_minute: int = 30
    ) -> None:
        self.throttle = FailureThrottle(failures_per_minute)
        self.admin_throttle = FailureThrottle(failures_per_minute)  # the admin key's own
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._last_used: dict[str, int] = {}

    async def authenticate(self, headers: Mapping[str, str], client: str = "") -> KeyRecord:
        """The key's record; 401 for a missing or bad key, 429 for an address that keeps failing.

        A key that verifies is served whatever its address did before."""
        key = key_from_headers(headers)
        if key is None:
            raise AuthenticationFailed(_MISSING)
        record = await self._lookup(hash_key(key), remember_misses=self.throttle.over(client) is None)
        if record is None:
            raise self.throttle.refuse(client, AuthenticationFailed("Incorrect API key provided."))
        status = record.status()
        if status != "active":
            error = AuthenticationFailed(f"This API key has been {status}.", code=f"key_{status}")
            raise self.throttle.refuse(client, error)
        self._last_used[record.id] = int(time.time())
        return record

    @staticmethod
    def check_model(record: KeyRecord, model: str) -> None:
        if not record.allows(model):
            raise PermissionDenied(f"This API key is not allowed to use the model '{model}'.", param="model")

    async def _lookup(self, digest: str, *, remember_misses: bool = True) -> KeyRecord | None:
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._pending.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._pending[digest] = fut
        try:
            record = await self.store.by_hash(digest)
            fut.set_result(record)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: the waiters (if any) re-raise it
            raise
        finally:
            del self._pending[digest]
        if record is not None or remember_misses:  # a throttled guesser does not fill the cache
            self._remember(digest, record, now)
        return record

    def _remember(self, digest: str, record: KeyRecord | None, now: float) -> None:
        self._cache[digest] = (now + self.ttl, record)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def invalidate(self, key_id: str | None = None) -> None:
        """Forgets cached records (of one key, or all: ``None``/``"*"``) so the next request reads the store."""
        if key_id is None or key_id == "*":
            self._cache.clear()
            return
        for digest, (_, rec) in list(self._cache.items()):
            if rec is not None and rec.id == key_id:
                del self._cache[digest]

    async def flush_last_used(self) -> None:
        batch, self._last_used = self._last_used, {}
        try:
            await self.store.touch(batch)
        except Exception:  # the store being briefly away must not lose the batch
            log.warning("could not record last-used times; will retry", exc_info=True)
            for k, ts in batch.items():
                self._last_used.setdefault(k, ts)

    async def run_flusher(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush_last_used()
