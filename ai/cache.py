"""Cached answers, ``ai:answer:{key}``: reused only for an exactly identical context."""

from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class AnswerCache:
    def __init__(self, redis: aioredis.Redis, prefix: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix + "ai:answer:"
        self.ttl_s = ttl_s

    async def get(self, key: str) -> tuple[str, bool] | None:
        try:
            raw = await self.redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            log.warning("answer cache unavailable: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        return str(data["text"]), bool(data["handoff"])

    async def put(self, key: str, text: str, handoff: bool) -> None:
        try:
            await self.redis.set(self.prefix + key, json.dumps({"text": text, "handoff": handoff}), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("answer cache unavailable: %s", type(exc).__name__)
