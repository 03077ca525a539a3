"""The shared limiter: every instance asks Redis, one atomic Lua script per check.

The script reads Redis's own clock (``TIME``, also for the UTC day and month of the budgets),
so instances with skewed clocks agree. Each API key's state is one hash (plus a sorted set of
requests in flight), hash-tagged ``{gk:<key id>}``, so one script touches one Cluster slot. Settling (refund/charge of the token reservation, the in-flight slot, the
budget counters) is a second script, run after the answer is sent, off the request's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from .limits import Decision, Refusals, Ticket, fail, new_request_id, period_starts, rate_headers, refusal
from .store.keys import KeyRecord, Limits
from .store.usage import UsageStore

log = logging.getLogger(__name__)

# Every key's state is one hash, {gk:<id>}: tat (GCRA), level/at (token bucket), and the
# budget counters day/day_used, month/month_used, total_used. In-flight requests are a sorted
# set beside it (member: request id, score: when the hold lapses, should a process die).
_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local z = math.floor(tonumber(t[1]) / 86400)
local day = z
z = z + 719468
local era = math.floor(z / 146097)
local doe = z - era * 146097
local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
local mp = math.floor((5 * doy + 2) / 153)
local mon = (mp < 10) and (mp + 3) or (mp - 9)
local year = yoe + era * 400 + ((mon <= 2) and 1 or 0)
local month = year * 12 + mon - 1
"""

# KEYS: state hash, in-flight set, budget reservations (hash: request id -> tokens)
# ARGV: rpm, tpm, concurrency, budget_day, budget_month, budget_total, reserve, request id, in-flight ttl ms
# -> {allowed, reason, retry_ms, requests_remaining, requests_reset_ms, tokens_remaining, tokens_reset_ms,
#     tokens granted under the budgets (-1: no budget)}
# reason 9: the budget counters are missing (first use, or Redis lost them): seed them, ask again.
# In-flight requests (for concurrency and budget reservations) hold a lease in the set, renewed
# by their process while they run; the leases of a process that died lapse, with their reservations.
_ACQUIRE = (
    _CLOCK
    + """
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bd, bm, bt = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local reserve, rid, ttl = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local budgets = bd > 0 or bm > 0 or bt > 0
local s = redis.call('HMGET', KEYS[1], 'tat', 'level', 'at', 'day', 'day_used', 'month', 'month_used', 'total_used')
if budgets and not s[8] then return {0, 9, 0, -1, 0, -1, 0, -1} end
if conc > 0 or budgets then
  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
    redis.call('HDEL', KEYS[3], gone)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
end
local grant = -1
if budgets then
  local reserved = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do reserved = reserved + tonumber(v) end
  local left = reserve
  local function room(budget, used, reason)
    local r = budget - used - reserved
    if r <= 0 then return reason end
    if r < left then left = r end
    return 0
  end
  local refused = 0
  if bd > 0 then refused = room(bd, (tonumber(s[4]) == day) and tonumber(s[5]) or 0, 4) end
  if refused == 0 and bm > 0 then refused = room(bm, (tonumber(s[6]) == month) and tonumber(s[7]) or 0, 5) end
  if refused == 0 and bt > 0 then refused = room(bt, tonumber(s[8]), 6) end
  if refused > 0 then return {0, refused, 0, -1, 0, -1, 0, -1} end
  grant = left
end
local rq_left, rq_reset, new_tat = -1, 0, 0
if rpm > 0 then
  local period = 60000 / rpm
  local tat = math.max(tonumber(s[1]) or 0, now)
  if tat - (60000 - period) > now then
    return {0, 1, math.ceil(tat - (60000 - period) - now), 0, math.ceil(tat - now), -1, 0, -1}
  end
  new_tat = tat + period
  rq_left = math.floor((60000 - (new_tat - now)) / period + 1e-9)
  rq_reset = math.ceil(new_tat - now)
end
local level, tk_left, tk_reset = 0, -1, 0
if tpm > 0 then
  local rate = tpm / 60000
  level = math.min(tpm, (tonumber(s[2]) or tpm) + (now - (tonumber(s[3]) or now)) * rate)
  if level < reserve then
    return {0, 2, math.ceil((reserve - level) / rate), rq_left, rq_reset, math.floor(level), 0, -1}
  end
  level = level - reserve
  tk_left = math.floor(level)
  tk_reset = math.ceil((tpm - level) / rate)
end
if conc > 0 and redis.call('ZCARD', KEYS[2]) >= conc then
  return {0, 3, 1000, rq_left, rq_reset, tk_left, tk_reset, -1}
end
if conc > 0 or budgets then
  redis.call('ZADD', KEYS[2], now + ttl, rid)
  redis.call('PEXPIRE', KEYS[2], ttl + 1000)
end
if budgets then
  redis.call('HSET', KEYS[3], rid, grant)
  redis.call('PEXPIRE', KEYS[3], ttl + 1000)
end
if rpm > 0 and tpm > 0 then
  redis.call('HSET', KEYS[1], 'tat', tostring(new_tat), 'level', tostring(level), 'at', tostring(now))
elseif rpm > 0 then
  redis.call('HSET', KEYS[1], 'tat', tostring(new_tat))
elseif tpm > 0 then
  redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
end
redis.call('PEXPIRE', KEYS[1], 2764800000)
return {1, 0, 0, rq_left, rq_reset, tk_left, tk_reset, grant}
"""
)

# KEYS: in-flight set, budget reservations. ARGV: ttl ms, request ids held by this process
_RENEW = (
    _CLOCK
    + """
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + 1000)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]) + 1000) end
return 1
"""
)

# KEYS: as above. ARGV: tpm, reserved, used, request id
_SETTLE = (
    _CLOCK
    + """
local tpm, reserved, used = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'level', 'at', 'day', 'day_used', 'month', 'month_used', 'total_used')
if tpm > 0 then
  local rate = tpm / 60000
  local level = (tonumber(s[1]) or tpm) + (now - (tonumber(s[2]) or now)) * rate
  level = math.min(tpm, level + reserved - used)
  redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
end
if used > 0 and s[7] then
  local d = (tonumber(s[3]) == day) and tonumber(s[4]) or 0
  local m = (tonumber(s[5]) == month) and tonumber(s[6]) or 0
  redis.call('HSET', KEYS[1], 'day', day, 'day_used', d + used, 'month', month, 'month_used', m + used,
             'total_used', tonumber(s[7]) + used)
end
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[3], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], 2764800000)
return 1
"""
)

# KEYS: state hash. ARGV: day, day_used, month, month_used, total_used (from the store)
_SEED = """
if redis.call('HEXISTS', KEYS[1], 'total_used') == 0 then
  redis.call('HSET', KEYS[1], 'day', ARGV[1], 'day_used', ARGV[2], 'month', ARGV[3], 'month_used', ARGV[4],
             'total_used', ARGV[5])
end
return 1
"""

_NEEDS_SEED = 9


def _keys(key_id: str) -> list[str]:
    tag = f"grok-api:{{gk:{key_id}}}"
    return [tag, f"{tag}:inflight", f"{tag}:reserved"]


def _day_month(wall: float) -> tuple[int, int]:
    """The day and month numbers the scripts use: days since the epoch, year * 12 + month - 1."""
    t = time.gmtime(wall)
    return int(wall // 86400), t.tm_year * 12 + t.tm_mon - 1


_Call = tuple[str, list[str], list[int | str], "asyncio.Future[Any] | None"]


class RedisLimiter:
    """Limits shared by every instance through Redis.

    Calls are *batched*: the checks and settlements queued during one turn of the event loop
    go to Redis in one pipelined write (each still its own atomic script, each request still
    one round trip), which is what keeps Redis from halving a busy gateway's throughput.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        usage: UsageStore | None,
        *,
        fail_mode: str = "open",
        inflight_ttl: float = 90.0,
        on_fail_open: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.usage = usage
        self.fail_mode = fail_mode
        self.inflight_ttl_ms = int(inflight_ttl * 1000)
        self.on_fail_open = on_fail_open
        self._scripts = {"acquire": _ACQUIRE, "settle": _SETTLE, "seed": _SEED, "renew": _RENEW}
        self._sha = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in self._scripts.items()}  # noqa: S324 - Redis names scripts by SHA-1
        self._calls: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None
        self._last_warning = 0.0
        self.refusals = Refusals()
        self._held: dict[str, str] = {}  # request id -> key id: leases this process renews
        self._renewer: asyncio.Task[None] | None = None

    def describe(self) -> str:
        return "redis"

    async def acquire(self, key: KeyRecord, reserve: int) -> Ticket:
        limits = key.limits
        if not limits.any:
            return Ticket(key.id, limits)
        wall = time.time()
        keys = _keys(key.id)
        reserve = min(reserve, limits.tpm) if limits.tpm else reserve
        rid = new_request_id()
        args: list[int | str] = [*_limit_args(limits), reserve, rid, self.inflight_ttl_ms]
        try:
            raw = await self._call("acquire", keys, args)
            if raw[1] == _NEEDS_SEED:
                await self._seed(key.id, keys, wall)
                raw = await self._call("acquire", keys, args)
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return fail(self.fail_mode, exc, key, self.on_fail_open)
        d = Decision(
            bool(raw[0]), int(raw[1]), raw[2] / 1000, int(raw[3]), raw[4] / 1000, int(raw[5]), raw[6] / 1000
        )
        if not d.allowed:
            raise self.refusals.remember(key, refusal(limits, d, wall), d.reason)
        granted = int(raw[7]) if len(raw) > 7 and int(raw[7]) >= 0 else None
        leased = bool(limits.concurrency) or granted is not None
        if leased:
            self._hold(rid, key.id)
        return Ticket(
            key.id, limits, reserve, rid if leased else "", rate_headers(limits, d), True, granted=granted
        )

    def _hold(self, rid: str, key_id: str) -> None:
        self._held[rid] = key_id
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_leases())

    async def _renew_leases(self) -> None:
        """While this process holds requests in flight, renews their leases every third of their
        lifetime, so that a stream of any length keeps its slot (and a dead process's lapse)."""
        interval = self.inflight_ttl_ms / 3000
        while self._held:
            await asyncio.sleep(interval)
            by_key: dict[str, list[str]] = {}
            for rid, key_id in list(self._held.items()):
                by_key.setdefault(key_id, []).append(rid)
            for key_id, rids in by_key.items():
                self._enqueue(("renew", _keys(key_id)[1:], [self.inflight_ttl_ms, *rids], None))

    async def _seed(self, key_id: str, keys: list[str], wall: float) -> None:
        """Budget counters Redis lacks are read from the store (a racing seed is kept)."""
        day_start, month_start = period_starts(wall)
        used = await self.usage.tokens_since(key_id, day_start, month_start, 0) if self.usage else [0, 0, 0]
        day, month = _day_month(wall)
        await self._call("seed", keys[:1], [day, used[0], month, used[1], used[2]])

    def settle(self, ticket: Ticket, used_tokens: int) -> None:
        """Queues the settlement: it goes with the next batch, after the answer was sent."""
        if not ticket.checked:
            return
        args: list[int | str] = [ticket.limits.tpm or 0, ticket.reserved, used_tokens, ticket.request_id]
        self._held.pop(ticket.request_id, None)
        self._enqueue(("settle", _keys(ticket.key_id), args, None))

    def _call(self, script: str, keys: list[str], args: list[int | str]) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue((script, keys, args, fut))
        return fut

    def _enqueue(self, call: _Call) -> None:
        self._calls.append(call)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the calls of this turn of the loop join the batch
        while self._calls:
            batch, self._calls = self._calls, []
            try:
                results = await self._run(batch)
            except (RedisError, OSError) as exc:
                self._warn(exc)
                results = [exc] * len(batch)
            for (_, _, _, fut), result in zip(batch, results, strict=True):
                if fut is None or fut.done():
                    continue
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)

    async def _run(self, batch: list[_Call]) -> list[Any]:
        for attempt in (1, 2):
            async with self.client.pipeline(transaction=False) as pipe:
                for script, keys, args, _ in batch:
                    pipe.evalsha(self._sha[script], len(keys), *keys, *args)
                results: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                for body in self._scripts.values():  # Redis restarted or was flushed: load them again
                    await self.client.script_load(body)
                continue
            return results
        raise AssertionError("unreachable")

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning(
                "rate limiter (Redis) unavailable: %s; failing %s", type(exc).__name__, self.fail_mode
            )

    async def aclose(self) -> None:
        """Waits for the queued settlements (so nothing is lost at shutdown)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        while self._flusher is not None and not self._flusher.done():
            await self._flusher
        if self._calls:
            await self._flush()


def _limit_args(limits: Limits) -> list[int]:
    return [
        limits.rpm or 0,
        limits.tpm or 0,
        limits.concurrency or 0,
        limits.budget_day or 0,
        limits.budget_month or 0,
        limits.budget_total or 0,
    ]
