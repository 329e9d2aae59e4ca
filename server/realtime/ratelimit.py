"""Fixed-window rate limits in Redis (``rl:*``), shared by all nodes.

``hit`` counts in Redis on every call: exact across nodes, for the limits that guard accounts
(login, registration, WhatsApp codes). When Redis is unreachable it counts in this node's memory
instead (as ``hit_batched`` does), so a Redis outage neither refuses everyone nor lets password
guessing run unlimited.

``hit_batched`` is for the per-message flood limit, on the hot path: hits are counted in memory
at once and checked against the window's total as last read from Redis plus this node's hits
since; a sync task adds the local counts to Redis and reads the totals back, every
``SYNC_INTERVAL_S``, in one command for all keys (``_SYNC_SCRIPT``: ``INCRBY`` and ``EXPIRE`` per
key inside Redis, so the node packs one command and parses one reply per sync, not two per
key). A single node enforces the limit exactly, also while Redis is away; across nodes a user
can exceed it by what the other nodes counted in the last interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatcore.errors import RateLimited

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 0.05
SYNC_TIMEOUT_S = 2.0

# KEYS: the window keys; ARGV: for each key its pending count then its TTL (s). Returns the totals.
_SYNC_SCRIPT = """
local totals = {}
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, ARGV[2 * i - 1])
  redis.call('EXPIRE', key, ARGV[2 * i])
end
return totals
"""


@dataclass(slots=True)
class _Window:
    ends: float  # the window's end (epoch seconds)
    window_s: int
    known: int = 0  # the total in Redis when last synced (every node's hits, ours included)
    pending: int = 0  # hits counted here and not yet added to Redis


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "rl:"
        self._windows: dict[str, _Window] = {}
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_script = redis.register_script(_SYNC_SCRIPT)  # EVALSHA, loaded on first use

    def _window(self, scope: str, key: str, window_s: int) -> tuple[float, int, str]:
        """Now, the fixed window it falls in, and that window's Redis key."""
        now = time.time()
        window = int(now // window_s)
        return now, window, f"{self.prefix}{scope}:{key}:{window}"

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        """Count one hit; raise ``RateLimited`` when more than ``limit`` fell in the window."""
        now, window, rkey = self._window(scope, key, window_s)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(rkey)
            pipe.expire(rkey, window_s + 1)
            count, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("rate limiter unavailable (%s); counting %s on this node", type(exc).__name__, scope)
            self.hit_batched(scope, key, limit, window_s)
            return
        if int(count) > limit:
            raise RateLimited(f"too many {scope} requests", retry_after=(window + 1) * window_s - now)

    def hit_batched(self, scope: str, key: str, limit: int, window_s: int) -> None:
        """Count one hit without a Redis round trip; raise ``RateLimited`` over the limit."""
        now, window, rkey = self._window(scope, key, window_s)
        w = self._windows.get(rkey)
        if w is None:
            w = self._windows[rkey] = _Window(ends=(window + 1) * window_s, window_s=window_s)
        if w.known + w.pending >= limit:
            raise RateLimited(f"too many {scope} requests", retry_after=w.ends - now)
        w.pending += 1
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._sync_soon(), name="ratelimit-sync")

    async def _sync_soon(self) -> None:
        await asyncio.sleep(SYNC_INTERVAL_S)
        await self.sync()

    async def sync(self) -> None:
        """Add the pending counts to Redis and read the totals back; forget ended windows."""
        todo = [(k, w, w.pending) for k, w in self._windows.items() if w.pending]
        if todo:
            try:
                args: list[int] = []
                for _rkey, w, n in todo:
                    args += (n, w.window_s + 1)
                async with asyncio.timeout(SYNC_TIMEOUT_S):
                    totals = await self._sync_script(keys=[rkey for rkey, _w, _n in todo], args=args)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("rate limiter sync failed (%s); counting locally", type(exc).__name__)
            else:
                for i, (_rkey, w, n) in enumerate(todo):
                    w.pending -= n
                    w.known = int(totals[i])
        now = time.time()
        for rkey in [k for k, w in self._windows.items() if w.ends < now and not w.pending]:
            del self._windows[rkey]
