"""The cross-node bus (``server.realtime.bus.RedisBus``) on a real Redis: batched publishing in
order, a node skipping its own messages and rooms it has no sockets in, and a publisher that
never blocks an emitter while Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from server import jsonlib
from server.realtime.bus import RedisBus
from tests.services import RedisService


def _bus(url: str, channel: str) -> RedisBus:
    return RedisBus(url, channel=channel, json=jsonlib, redis_options={"socket_connect_timeout": 1})


async def _collect(listener: AsyncIterator[Any], out: list[Any]) -> None:
    async for raw in listener:
        out.append(jsonlib.loads(raw))


def _emit(room: str, i: int) -> dict[str, Any]:
    return {"method": "emit", "event": "message", "data": [{"i": i}], "namespace": "/", "room": room,
            "skip_sid": None, "callback": None}


async def test_other_nodes_get_every_event_in_order_and_the_sender_skips_its_own(
        redis_service: RedisService, redis_prefix: str) -> None:
    channel = redis_prefix + "bus"
    a, b = _bus(redis_service.url, channel), _bus(redis_service.url, channel)
    b.rooms = {"/": {"r:1": {}}}  # b has sockets in room r:1 only
    a.rooms = {"/": {"r:1": {}, "r:2": {}}}
    got_a: list[Any] = []
    got_b: list[Any] = []
    tasks = [asyncio.create_task(_collect(a._listen(), got_a)), asyncio.create_task(_collect(b._listen(), got_b))]
    try:
        await asyncio.sleep(0.3)  # both subscribed
        for i in range(1000):
            await a._publish({**_emit("r:1", i), "host_id": a.host_id})
            await a._publish({**_emit("r:2", i), "host_id": a.host_id})  # nobody on b is in r:2
        await a._publish({"method": "disconnect", "sid": "x", "namespace": "/", "host_id": a.host_id})
        await a.flush()
        for _ in range(100):
            if len(got_b) >= 1001:
                break
            await asyncio.sleep(0.05)
        assert [m["data"][0]["i"] for m in got_b if m["method"] == "emit"] == list(range(1000))
        assert all(m["room"] == "r:1" for m in got_b if m["method"] == "emit")
        assert [m["method"] for m in got_b[1000:]] == ["disconnect"]  # not an emit: always decoded
        assert got_a == []  # a delivered its own events locally when it emitted them
        assert a.published == 2001
    finally:
        for t in tasks:
            t.cancel()
        await a.close()
        await b.close()


async def test_publishing_never_blocks_the_emitter_while_redis_is_away(redis_prefix: str) -> None:
    bus = _bus("redis://127.0.0.1:1", redis_prefix + "bus")  # nothing listens there
    dropped: list[int] = []
    bus.on_dropped = dropped.append
    try:
        async with asyncio.timeout(1):
            for i in range(100):
                await bus._publish({**_emit("r:1", i), "host_id": bus.host_id})  # returns at once
        await bus.flush(timeout=5)
        assert sum(dropped) == 100 and bus.published == 0  # counted, not retried forever
    finally:
        await bus.close()


async def test_flush_waits_for_the_batch_in_flight(redis_service: RedisService, redis_prefix: str) -> None:
    """Shutdown flushes the bus: a batch already taken off the queue counts as not sent yet."""
    bus = _bus(redis_service.url, redis_prefix + "bus")
    try:
        await bus._publish({**_emit("r:1", 0), "host_id": bus.host_id})
        for _ in range(3):
            await asyncio.sleep(0)  # the publisher takes the batch and waits on Redis
        assert not bus._queue
        await bus.flush()
        assert bus.published == 1
    finally:
        await bus.close()
