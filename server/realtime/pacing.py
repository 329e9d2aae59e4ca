"""Campaign pacing shared by every node: one Lua script in Redis per send.

Two limits per business number (``phone_number_id``), both on Redis's clock so nodes need not
agree on theirs:

- throughput: sends at least ``interval`` apart. ``{p}pace:{number}`` holds the next free slot
  (microseconds); a caller reserves the slot and sleeps until it, so concurrent senders on all
  nodes queue up one interval apart, never closer, and a reservation never lies more than
  ``max_wait_s`` ahead (the caller then asks again later instead of holding a far slot);
- the messaging tier: at most ``tier_limit`` sends in any 24 hours. ``{p}tier:{number}`` is a
  sorted set of the slots granted in the last 24 hours; when full, the answer says when its
  oldest leaves the window.

A slot reserved and then not used (nothing left to send) is given back to the tier with
``release``; the throughput slot is simply left as a gap. A sender that wakes up late for its
slot (a busy event loop, a slow claim) must not send at once: slots of several late senders
would then go out together, faster than the interval. It reserves a fresh slot instead
(``acquire(..., tier=False)``) and sends on time for that one.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

DAY_US = 86_400 * 1_000_000

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[4])
local count_tier = ARGV[5] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 86400000000)
if count_tier and redis.call('ZCARD', KEYS[2]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {-1, tonumber(oldest[2]) + 86400000000 - now}
end
local slot = now
if interval > 0 then
  local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
  if nxt > slot then slot = nxt end
  if slot - now > max_wait then return {-2, slot - now} end
  redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', math.ceil(interval / 1000) + 60000)
end
if count_tier then
  redis.call('ZADD', KEYS[2], slot, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], 86460000)
end
return {1, slot - now}
"""


@dataclass(frozen=True, slots=True)
class Grant:
    ok: bool
    wait_s: float  # ok: sleep this long, then send; not ok: ask again after this long
    tier_full: bool = False


class Pacer:
    def __init__(self, redis: aioredis.Redis, prefix: str, interval_s: float, tier_limit: int,
                 max_wait_s: float = 2.0) -> None:
        self.redis = redis
        self.p = prefix
        self.interval_us = int(interval_s * 1_000_000)
        self.tier_limit = tier_limit
        self.max_wait_us = int(max_wait_s * 1_000_000)
        self._script = redis.register_script(_ACQUIRE)

    def _keys(self, number: str) -> list[str]:
        return [f"{self.p}pace:{number}", f"{self.p}tier:{number}"]

    async def acquire(self, number: str, member: str, *, tier: bool = True) -> Grant:
        """Reserve one send of ``number``; ``member`` names it in the tier window (unique).
        ``tier=False`` reserves a throughput slot only, for a send already counted."""
        code, wait_us = await self._script(keys=self._keys(number),
                                           args=[self.interval_us, self.tier_limit, member, self.max_wait_us,
                                                 "1" if tier else "0"])
        wait_s = max(0, int(wait_us)) / 1_000_000
        return Grant(int(code) == 1, wait_s, tier_full=int(code) == -1)

    async def release(self, number: str, member: str) -> None:
        await self.redis.zrem(self._keys(number)[1], member)
