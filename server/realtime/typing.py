"""Typing indicators: throttled per user and room; clients expire them after ``ttl_s``."""

from __future__ import annotations

import redis.asyncio as aioredis

TYPING_THROTTLE_MS = 2000  # at most one "typing: true" broadcast per user and room per 2 s


class TypingThrottle:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.p = prefix + "typing:"

    async def should_broadcast(self, room_id: int, user_id: int, typing: bool) -> bool:
        key = f"{self.p}{room_id}:{user_id}"
        if typing:
            return bool(await self.redis.set(key, "1", nx=True, px=TYPING_THROTTLE_MS))
        # "stopped typing" always goes out, and re-arms the throttle
        await self.redis.delete(key)
        return True
