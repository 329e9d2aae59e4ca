"""Per-caller limits on chat-archive's costly queries: text search and export.

Both read far more than they return (a search checks a ``$regex`` on every message of its room,
author or time range; an export reads a whole room), so a caller starting them back to back
could keep the store busy for everyone. Each (kind, user id) has a token bucket holding
``per_minute`` requests: a request takes one, the bucket refills at ``per_minute / 60`` a second,
so a caller may spend a minute's allowance at once and then goes at the steady rate. An empty
bucket answers ``RateLimited`` (429 ``rate_limited``) with the seconds until one request is
allowed again. The count is checked after the token's signature, before chat-server is asked
about access or the store is read, so a refused request costs neither.

Where the buckets live:

- With ``REDIS_URL`` set (the Redis chat-server uses), in Redis: one hash per (kind, user),
  refilled and taken from by one script (``_TAKE``) on Redis's own clock, so every chat-archive
  process behind a balancer counts against the same allowance and a restart forgets nothing.
  Each call is bounded (``REDIS_TIMEOUT_S``); when Redis does not answer in time the process
  counts in its own memory until it does (logged), so an outage neither refuses every search
  nor lifts the limit.
- Without it, in this process's memory: each process counts its own requests (behind several,
  a caller gets each one's allowance), and a restart forgets them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from chatcore.errors import RateLimited

log = logging.getLogger(__name__)

FULL_AFTER_S = 60.0  # an empty bucket is full again after a minute (the rate is per minute)
REDIS_TIMEOUT_S = 0.5

# KEYS[1]: the bucket; ARGV: capacity, refill per second. Returns {1} when a request was taken,
# else {0, seconds until one is allowed} (as a string: a Lua number would reach us truncated).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or capacity
local at = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
if taken == 1 then return {1} end
return {0, tostring((1 - tokens) / rate)}
"""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was counted (monotonic seconds)


class QueryLimiter:
    """``per_minute``: requests a minute for each kind (``search``, ``export``); 0 or absent:
    unlimited. ``redis``: a ``redis.asyncio.Redis`` holding the buckets of every process."""

    def __init__(self, per_minute: Mapping[str, int], clock: Callable[[], float] = time.monotonic,
                 redis: Any = None, prefix: str = "") -> None:
        self.per_minute = dict(per_minute)
        self._clock = clock
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._swept = clock()
        self._redis = redis
        self._prefix = prefix + "archive:rl:"
        self._take_script = redis.register_script(_TAKE) if redis is not None else None
        self._redis_down = False  # logged once per outage

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def take(self, kind: str, user_id: int) -> None:
        """Count one ``kind`` request of ``user_id``; raise ``RateLimited`` when none is left."""
        capacity = self.per_minute.get(kind, 0)
        if capacity <= 0:
            return
        if self._take_script is not None:
            try:
                async with asyncio.timeout(REDIS_TIMEOUT_S):
                    answer = await self._take_script(keys=[f"{self._prefix}{kind}:{user_id}"],
                                                     args=[capacity, capacity / FULL_AFTER_S])
            except (RedisError, OSError, TimeoutError) as exc:
                if not self._redis_down:
                    log.warning("archive rate limits: Redis unavailable (%s); counting in this process",
                                type(exc).__name__)
                    self._redis_down = True
            else:
                if self._redis_down:
                    log.info("archive rate limits: Redis is back; counting there again")
                    self._redis_down = False
                if int(answer[0]) != 1:
                    raise _refused(kind, capacity, float(answer[1]))
                return
        self._take_here(kind, capacity, user_id)

    def _take_here(self, kind: str, capacity: int, user_id: int) -> None:
        now = self._clock()
        self._sweep(now)
        refill_per_s = capacity / FULL_AFTER_S
        bucket = self._buckets.get((kind, user_id))
        if bucket is None:
            bucket = self._buckets[(kind, user_id)] = _Bucket(float(capacity), now)
        else:
            bucket.tokens = min(float(capacity), bucket.tokens + (now - bucket.at) * refill_per_s)
            bucket.at = now
        if bucket.tokens < 1.0:
            raise _refused(kind, capacity, (1.0 - bucket.tokens) / refill_per_s)
        bucket.tokens -= 1.0

    def _sweep(self, now: float) -> None:
        # a bucket untouched for a minute is full, as a missing one: dropping it changes no
        # answer and keeps memory to the callers of the last minute
        if now - self._swept < FULL_AFTER_S:
            return
        self._swept = now
        for key in [k for k, b in self._buckets.items() if now - b.at >= FULL_AFTER_S]:
            del self._buckets[key]


def _refused(kind: str, capacity: int, retry_after: float) -> RateLimited:
    return RateLimited(f"too many archive {kind} requests ({capacity} a minute)", retry_after=retry_after)
