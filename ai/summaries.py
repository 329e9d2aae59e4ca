"""The rolling summary of each room, cached in Redis as ``ai:summary:{room}``."""

from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .context import Summary

log = logging.getLogger(__name__)

SUMMARY_TTL_S = 30 * 86400  # rebuilt from the message source when it expires or Redis loses it


class SummaryStore:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "ai:summary:"

    async def get(self, room_id: int) -> Summary | None:
        try:
            raw = await self.redis.get(f"{self.prefix}{room_id}")
        except (RedisError, OSError) as exc:
            log.warning("summary cache unavailable: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        return Summary(str(data["text"]), int(data["upto_seq"]))

    async def put(self, room_id: int, summary: Summary) -> None:
        try:
            await self.redis.set(
                f"{self.prefix}{room_id}",
                json.dumps({"text": summary.text, "upto_seq": summary.upto_seq}),
                ex=SUMMARY_TTL_S,
            )
        except (RedisError, OSError) as exc:
            log.warning("summary cache unavailable: %s", type(exc).__name__)
