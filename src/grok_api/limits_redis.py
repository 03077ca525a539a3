"""The shared limiter: every instance asks Redis, one atomic Lua script per check.

The script reads Redis's own clock (``TIME``), so instances with skewed clocks agree. Each
API key's state lives under keys hash-tagged ``{gk:<key id>}``, so one script only touches
one Cluster slot. Settling (refund/charge of the token reservation, the in-flight slot, the
budget counters) is a second script, run after the answer is sent, off the request's path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .limits import Decision, Ticket, fail, new_request_id, period_starts, rate_headers, refusal
from .store.keys import KeyRecord, Limits
from .store.usage import UsageStore

log = logging.getLogger(__name__)

# KEYS: rpm, tpm, inflight, used:day, used:month, used:total
# ARGV: rpm, tpm, concurrency, budget_day, budget_month, budget_total, reserve, request id, in-flight ttl ms
# -> {allowed, reason, retry_ms, requests_remaining, requests_reset_ms, tokens_remaining, tokens_reset_ms}
# reason 9: a budget counter is missing (first use, or Redis lost it): seed it from the store, ask again.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local budgets = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])}
local reserve, rid, ttl = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
for i = 1, 3 do
  if budgets[i] > 0 then
    local used = redis.call('GET', KEYS[3 + i])
    if not used then return {0, 9, 0, -1, 0, -1, 0} end
    if tonumber(used) >= budgets[i] then return {0, 3 + i, 0, -1, 0, -1, 0} end
  end
end
local rq_left, rq_reset, new_tat = -1, 0, 0
if rpm > 0 then
  local period = 60000 / rpm
  local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
  if tat - (60000 - period) > now then
    return {0, 1, math.ceil(tat - (60000 - period) - now), 0, math.ceil(tat - now), -1, 0}
  end
  new_tat = tat + period
  rq_left = math.floor((60000 - (new_tat - now)) / period + 1e-9)
  rq_reset = math.ceil(new_tat - now)
end
local level, tk_left, tk_reset = 0, -1, 0
if tpm > 0 then
  local rate = tpm / 60000
  local b = redis.call('HMGET', KEYS[2], 'level', 'at')
  level = math.min(tpm, (tonumber(b[1]) or tpm) + (now - (tonumber(b[2]) or now)) * rate)
  if level < reserve then
    return {0, 2, math.ceil((reserve - level) / rate), rq_left, rq_reset, math.floor(level), 0}
  end
  level = level - reserve
  tk_left = math.floor(level)
  tk_reset = math.ceil((tpm - level) / rate)
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc then
    return {0, 3, 1000, rq_left, rq_reset, tk_left, tk_reset}
  end
end
if rpm > 0 then redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000) end
if tpm > 0 then
  redis.call('HSET', KEYS[2], 'level', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[2], 120000)
end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + ttl, rid)
  redis.call('PEXPIRE', KEYS[3], ttl + 1000)
end
return {1, 0, 0, rq_left, rq_reset, tk_left, tk_reset}
"""

# KEYS: as above. ARGV: tpm, reserved, used, request id, day ttl s, month ttl s, total ttl s
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tpm, reserved, used = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm > 0 then
  local rate = tpm / 60000
  local b = redis.call('HMGET', KEYS[2], 'level', 'at')
  local level = (tonumber(b[1]) or tpm) + (now - (tonumber(b[2]) or now)) * rate
  level = math.min(tpm, level + reserved - used)
  redis.call('HSET', KEYS[2], 'level', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[2], 120000)
end
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[3], ARGV[4]) end
if used > 0 then
  for i = 4, 6 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('INCRBY', KEYS[i], used)
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1 + i]))
    end
  end
end
return 1
"""

_NEEDS_SEED = 9
_DAY_TTL = 2 * 86400
_MONTH_TTL = 32 * 86400
_TOTAL_TTL = 7 * 86400  # re-read from the store after a week without use


def _keys(key_id: str, now: float) -> list[str]:
    day, month = period_starts(now)
    tag = f"grok-api:{{gk:{key_id}}}"
    return [
        f"{tag}:rpm",
        f"{tag}:tpm",
        f"{tag}:inflight",
        f"{tag}:used:d{day}",
        f"{tag}:used:m{month}",
        f"{tag}:used:all",
    ]


class RedisLimiter:
    """Limits shared by every instance through Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        usage: UsageStore | None,
        *,
        fail_mode: str = "open",
        inflight_ttl: float = 900.0,
        on_fail_open: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.usage = usage
        self.fail_mode = fail_mode
        self.inflight_ttl_ms = int(inflight_ttl * 1000)
        self.on_fail_open = on_fail_open
        self._acquire = client.register_script(_ACQUIRE)
        self._settle = client.register_script(_SETTLE)
        self._pending: set[asyncio.Task[None]] = set()
        self._last_warning = 0.0

    def describe(self) -> str:
        return "redis"

    async def acquire(self, key: KeyRecord, reserve: int) -> Ticket:
        limits = key.limits
        if not limits.any:
            return Ticket(key.id, limits)
        wall = time.time()
        keys = _keys(key.id, wall)
        reserve = min(reserve, limits.tpm) if limits.tpm else reserve
        rid = new_request_id()
        args: list[int | str] = [*_limit_args(limits), reserve, rid, self.inflight_ttl_ms]
        try:
            raw = await self._acquire(keys=keys, args=args)
            if raw[1] == _NEEDS_SEED:
                await self._seed(key.id, keys, wall)
                raw = await self._acquire(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return fail(self.fail_mode, exc, key, self.on_fail_open)
        d = Decision(
            bool(raw[0]), int(raw[1]), raw[2] / 1000, int(raw[3]), raw[4] / 1000, int(raw[5]), raw[6] / 1000
        )
        if not d.allowed:
            raise refusal(limits, d, wall)
        return Ticket(
            key.id, limits, reserve, rid if limits.concurrency else "", rate_headers(limits, d), True
        )

    async def _seed(self, key_id: str, keys: list[str], wall: float) -> None:
        """Budget counters Redis lacks are read from the store (``SET NX``: a racing seed is kept)."""
        day_start, month_start = period_starts(wall)
        used = await self.usage.tokens_since(key_id, day_start, month_start, 0) if self.usage else [0, 0, 0]
        async with self.client.pipeline(transaction=False) as pipe:
            for name, value, ttl in zip(keys[3:], used, (_DAY_TTL, _MONTH_TTL, _TOTAL_TTL), strict=True):
                pipe.set(name, value, nx=True, ex=ttl)
            await pipe.execute()

    def settle(self, ticket: Ticket, used_tokens: int) -> None:
        if not ticket.checked:
            return
        task = asyncio.create_task(self._do_settle(ticket, used_tokens))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _do_settle(self, ticket: Ticket, used: int) -> None:
        args: list[int | str] = [
            ticket.limits.tpm or 0,
            ticket.reserved,
            used,
            ticket.request_id,
            _DAY_TTL,
            _MONTH_TTL,
            _TOTAL_TTL,
        ]
        try:
            await self._settle(keys=_keys(ticket.key_id, time.time()), args=args)
        except (RedisError, OSError) as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning(
                "rate limiter (Redis) unavailable: %s; failing %s", type(exc).__name__, self.fail_mode
            )

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _limit_args(limits: Limits) -> list[int]:
    return [
        limits.rpm or 0,
        limits.tpm or 0,
        limits.concurrency or 0,
        limits.budget_day or 0,
        limits.budget_month or 0,
        limits.budget_total or 0,
    ]
