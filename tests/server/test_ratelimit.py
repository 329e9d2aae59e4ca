"""The per-message flood limit counted locally and synced to Redis (``hit_batched``), and the
exact per-hit limit (``hit``), on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chatcore.errors import RateLimited
from server.realtime.ratelimit import RateLimiter
from tests.services import RedisService


async def test_batched_hits_are_exact_on_one_node_and_reach_redis(redis_service: RedisService, redis_prefix: str) -> None:
    r = aioredis.Redis.from_url(redis_service.url)
    limiter = RateLimiter(r, redis_prefix)
    try:
        for _ in range(20):
            limiter.hit_batched("send", "7", 20, 10)
        with pytest.raises(RateLimited) as err:
            limiter.hit_batched("send", "7", 20, 10)
        assert 0 < err.value.details["retry_after"] <= 10
        limiter.hit_batched("send", "8", 20, 10)  # per key
        await limiter.sync()
        keys = [k.decode() async for k in r.scan_iter(f"{redis_prefix}rl:send:7:*")]
        assert len(keys) == 1 and int(await r.get(keys[0])) == 20
        assert 0 < await r.ttl(keys[0]) <= 11
    finally:
        await r.aclose()


async def test_batched_hits_are_shared_between_nodes_after_a_sync(redis_service: RedisService, redis_prefix: str) -> None:
    r = aioredis.Redis.from_url(redis_service.url)
    a, b = RateLimiter(r, redis_prefix), RateLimiter(r, redis_prefix)
    try:
        for _ in range(15):
            a.hit_batched("send", "9", 20, 10)
        await a.sync()
        b.hit_batched("send", "9", 20, 10)
        await b.sync()  # b learns the total: 16
        for _ in range(4):
            b.hit_batched("send", "9", 20, 10)
        with pytest.raises(RateLimited):
            b.hit_batched("send", "9", 20, 10)
    finally:
        await r.aclose()


async def test_one_sync_adds_each_keys_own_count_and_window_to_redis(redis_service: RedisService, redis_prefix: str) -> None:
    """The sync sends every key in one call: each key gets its own count, its own TTL, and the
    total read back is its own (a node that synced learns the others' hits per key)."""
    r = aioredis.Redis.from_url(redis_service.url)
    a, b = RateLimiter(r, redis_prefix), RateLimiter(r, redis_prefix)
    try:
        for key, n, window in (("11", 3, 10), ("12", 7, 60), ("13", 1, 10)):
            for _ in range(n):
                a.hit_batched("send", key, 100, window)
        await a.sync()
        for key, n, window in (("11", 3, 10), ("12", 7, 60), ("13", 1, 10)):
            keys = [k.decode() async for k in r.scan_iter(f"{redis_prefix}rl:send:{key}:*")]
            assert len(keys) == 1 and int(await r.get(keys[0])) == n
            assert window - 2 < await r.ttl(keys[0]) <= window + 1
        for _ in range(2):
            b.hit_batched("send", "12", 10, 60)
        b.hit_batched("send", "13", 10, 10)
        await b.sync()  # b learns 9 for key 12 and 2 for key 13
        b.hit_batched("send", "12", 10, 60)
        with pytest.raises(RateLimited):
            b.hit_batched("send", "12", 10, 60)
        for _ in range(8):
            b.hit_batched("send", "13", 10, 10)
    finally:
        await r.aclose()


@pytest.fixture
async def limiter_without_redis(redis_prefix: str) -> AsyncIterator[RateLimiter]:
    r = aioredis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)  # nothing listens
    yield RateLimiter(r, redis_prefix)
    await r.aclose()


async def test_batched_hits_keep_counting_while_redis_is_away(limiter_without_redis: RateLimiter) -> None:
    limiter = limiter_without_redis
    for _ in range(5):
        limiter.hit_batched("send", "1", 5, 10)
    await limiter.sync()  # fails, logged; the local count stays
    with pytest.raises(RateLimited):
        limiter.hit_batched("send", "1", 5, 10)


async def test_account_limits_count_on_the_node_while_redis_is_away(limiter_without_redis: RateLimiter) -> None:
    """Login guessing is not unlimited during a Redis outage, and nobody is refused below the limit."""
    limiter = limiter_without_redis
    for _ in range(3):
        await limiter.hit("login-ip", "198.51.100.7", 3, 60)
    with pytest.raises(RateLimited):
        await limiter.hit("login-ip", "198.51.100.7", 3, 60)
    await limiter.hit("login-ip", "198.51.100.8", 3, 60)  # another address has its own count
