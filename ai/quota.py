"""Quotas on what reaches the provider: reply requests per person and per WhatsApp contact,
summary refreshes per room, counted in Redis across all nodes.

A quota is a fixed window: ``ai:quota:{subject}`` is incremented by one script that sets its
expiry on the first count, so a window opens at the first request and closes ``WINDOW_S``
later. Requests past the limit are still counted, so exactly one of them (the first) is told
``notify``: the polite notice goes out once per window, not once per message.

Redis away: the script raises and the caller fails closed (no provider call). The assistant
cannot take a room lock or dedupe a trigger without Redis either, so failing open would buy no
answers, only an unmetered path to the paid provider; the person gets the usual short
"unavailable" notice instead of silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

WINDOW_S = 3600  # the limits are per hour

# a key left without an expiry (set by hand, or its EXPIRE lost) would close a subject forever:
# any count that finds no TTL sets one
_TAKE = """
local n = redis.call('incr', KEYS[1])
local ttl = redis.call('ttl', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('expire', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    notify: bool  # the first refusal of the window: tell the person, once
    retry_in_s: int  # until the window closes


class Quotas:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "ai:quota:"

    async def take(self, subject: str, limit: int | None) -> Verdict:
        """Count one unit against ``subject``; ``limit`` None means no quota (nothing counted).
        Raises ``RedisError``/``OSError`` when Redis is away: callers fail closed."""
        if limit is None:
            return Verdict(True, False, 0)
        n, ttl = await self.redis.eval(_TAKE, 1, self.prefix + subject, WINDOW_S)
        n, ttl = int(n), max(0, int(ttl))
        return Verdict(n <= limit, n == limit + 1, ttl)
