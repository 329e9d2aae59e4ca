"""Fixed-window rate limits in Redis (``rl:*``), shared by all nodes.

Fails open: when Redis is unreachable a request is allowed and the failure logged, because
refusing every message during a Redis blip would lose more than a flood costs.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..errors import RateLimited

log = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "rl:"

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        """Count one hit; raise ``RateLimited`` when more than ``limit`` fell in the window."""
        now = time.time()
        window = int(now // window_s)
        rkey = f"{self.prefix}{scope}:{key}:{window}"
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(rkey)
            pipe.expire(rkey, window_s + 1)
            count, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("rate limiter unavailable (%s); allowing %s", type(exc).__name__, scope)
            return
        if int(count) > limit:
            raise RateLimited(f"too many {scope} requests", retry_after=(window + 1) * window_s - now)
