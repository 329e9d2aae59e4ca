"""The order of a campaign's progress events across nodes (``ProgressClock``) on a real Redis:
a node whose snapshot is older than one already sent cannot take a count back, and one node's
lock holds through a slow emit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from server.actions.campaign_sender import COUNT_FIELDS, PROGRESS_S, ProgressClock
from tests.services import RedisService


@pytest.fixture
async def redis(redis_service: RedisService) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_service.url)
    yield r
    await r.aclose()


def _counts(**given: int) -> dict[str, int]:
    return {k: given.get(k, 0) for k in COUNT_FIELDS}


async def test_an_older_snapshot_stamped_after_a_newer_one_never_takes_a_count_back(
        redis: aioredis.Redis, redis_prefix: str) -> None:
    a, b = ProgressClock(redis, redis_prefix, "node-a:1"), ProgressClock(redis, redis_prefix, "node-b:1")
    # b read 4,949 sent from PostgreSQL, then stalled; a read 4,981 later and stamped first
    seq_a, sent_a = await a.stamp(1, _counts(total=10_000, queued=5_000, sending=19, sent=4_981, delivered=30))
    seq_b, sent_b = await b.stamp(1, _counts(total=10_000, queued=5_040, sending=11, sent=4_949, delivered=31))
    assert seq_b == seq_a + 1
    assert sent_a["sent"] == 4_981 and sent_b["sent"] == 4_981  # raised to what a already carried
    assert sent_b["delivered"] == 31  # a count that did grow is b's own
    assert (sent_b["queued"], sent_b["sending"]) == (5_040, 11)  # these two may go either way
    other_seq, other = await a.stamp(2, _counts(total=5, sent=1))  # per campaign
    assert other_seq == 1 and other["sent"] == 1


async def test_a_nodes_lock_holds_through_a_slow_emit_and_then_for_the_pace(
        redis: aioredis.Redis, redis_prefix: str) -> None:
    a, b = ProgressClock(redis, redis_prefix, "node-a:1"), ProgressClock(redis, redis_prefix, "node-b:1")
    assert await a.hold(7)
    assert not await b.hold(7)
    await asyncio.sleep(PROGRESS_S * 2)  # a's read and emit are slow: the lock is still a's
    assert not await b.hold(7)
    await b.release(7)  # not b's to release
    assert not await b.hold(7)
    lock = f"{redis_prefix}campaign:progress-lock:7"
    assert await redis.pttl(lock) > PROGRESS_S * 1000  # held long while a emits, not the pace
    await a.release(7)
    assert 0 < await redis.pttl(lock) <= PROGRESS_S * 1000  # then kept for the pace only
    assert not await b.hold(7)  # no next event straight after a's
    for _ in range(200):
        if await b.hold(7):
            break
        await asyncio.sleep(0.02)
    assert await redis.get(lock) == b"node-b:1"
    assert await redis.pttl(lock) > PROGRESS_S * 1000  # b's hold is long again, not the pace
