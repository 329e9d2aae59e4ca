"""The cross-node bus (``server.realtime.bus.RedisBus``) on a real Redis: batched publishing in
order (the events of one round in one Redis message, or a few bounded ones), a batch resent whole
after a cut connection, a node skipping its own messages and rooms it has no sockets in, and a publisher that
never blocks an emitter while Redis is away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from server import jsonlib
from server.realtime.bus import PUBLISH_BYTES, RedisBus
from tests.services import RedisService
from tests.support import ServerHarness


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


async def _raw_messages(url: str, channel: str, out: list[bytes]) -> None:
    """Every Redis message on ``channel``, as a plain subscriber sees them."""
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            out.append(message["data"])
    finally:
        await pubsub.aclose()
        await client.aclose()


async def _wait_for(got: list[Any], n: int) -> None:
    for _ in range(200):
        if len(got) >= n:
            return
        await asyncio.sleep(0.05)


async def test_the_events_queued_in_one_tick_go_out_as_one_publish_and_arrive_in_room_order(
        redis_service: RedisService, redis_prefix: str) -> None:
    channel = redis_prefix + "bus"
    a, b = _bus(redis_service.url, channel), _bus(redis_service.url, channel)
    b.rooms = {"/": {"r:1": {}, "r:3": {}}}
    got_b: list[Any] = []
    raw: list[bytes] = []
    tasks = [asyncio.create_task(_collect(b._listen(), got_b)),
             asyncio.create_task(_raw_messages(redis_service.url, channel, raw))]
    try:
        await asyncio.sleep(0.3)  # both subscribed
        for i in range(300):  # no await yields here: all 300 are queued before the publisher runs
            await a._publish({**_emit(f"r:{i % 3 + 1}", i), "host_id": a.host_id})
        await a.flush()
        await _wait_for(got_b, 200)
        await asyncio.sleep(0.2)
        assert len(raw) == 1  # one Redis message for the 300 events: one parse on every node
        assert [m["data"][0]["i"] for m in got_b if m["room"] == "r:1"] == list(range(0, 300, 3))
        assert [m["data"][0]["i"] for m in got_b if m["room"] == "r:3"] == list(range(2, 300, 3))
        assert len(got_b) == 200  # r:2's events were skipped unread: b has no socket there
        assert a.published == 300
    finally:
        for t in tasks:
            t.cancel()
        await a.close()
        await b.close()


async def test_a_large_batch_is_split_into_bounded_publishes_in_order(
        redis_service: RedisService, redis_prefix: str) -> None:
    channel = redis_prefix + "bus"
    a, b = _bus(redis_service.url, channel), _bus(redis_service.url, channel)
    b.rooms = {"/": {"r:1": {}}}
    got_b: list[Any] = []
    raw: list[bytes] = []
    tasks = [asyncio.create_task(_collect(b._listen(), got_b)),
             asyncio.create_task(_raw_messages(redis_service.url, channel, raw))]
    big = "x" * (PUBLISH_BYTES // 4)
    try:
        await asyncio.sleep(0.3)
        for i in range(10):
            await a._publish({**_emit("r:1", i), "data": [{"i": i, "body": big}], "host_id": a.host_id})
        await a.flush()
        await _wait_for(got_b, 10)
        assert [m["data"][0]["i"] for m in got_b] == list(range(10))
        assert all(m["data"][0]["body"] == big for m in got_b)
        assert 3 <= len(raw) <= 4 and all(len(m) <= PUBLISH_BYTES + len(big) + 200 for m in raw)
    finally:
        for t in tasks:
            t.cancel()
        await a.close()
        await b.close()


async def test_a_batch_whose_connection_is_cut_is_sent_again_whole_and_in_order(
        redis_service: RedisService, redis_prefix: str) -> None:
    channel = redis_prefix + "bus"
    name = (redis_prefix + "publisher").replace(":", "-")
    a = RedisBus(redis_service.url, channel=channel, json=jsonlib,
                 redis_options={"socket_connect_timeout": 1, "client_name": name})
    b = _bus(redis_service.url, channel)
    b.rooms = {"/": {"r:1": {}, "r:2": {}}}
    got_b: list[Any] = []
    admin = aioredis.Redis.from_url(redis_service.url)
    tasks = [asyncio.create_task(_collect(b._listen(), got_b))]
    try:
        await asyncio.sleep(0.3)
        await a._publish({**_emit("r:1", -1), "host_id": a.host_id})
        await a.flush()  # a's publishing connection is open now
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == name]
        assert ids
        for i in range(200):
            await a._publish({**_emit(f"r:{i % 2 + 1}", i), "host_id": a.host_id})
        for client_id in ids:  # cut while the batch is queued: the first write of it fails
            await admin.client_kill_filter(_id=client_id)
        await a.flush(timeout=5)
        await _wait_for(got_b, 201)
        assert [m["data"][0]["i"] for m in got_b if m["room"] == "r:1"] == [-1, *range(0, 200, 2)]
        assert [m["data"][0]["i"] for m in got_b if m["room"] == "r:2"] == list(range(1, 200, 2))
        assert a.published == 201
    finally:
        for t in tasks:
            t.cancel()
        await admin.aclose()
        await a.close()
        await b.close()


async def test_the_bus_takes_pushed_messages_as_received_without_building_a_log_line_of_each(
        redis_service: RedisService, redis_prefix: str, caplog: Any) -> None:
    # redis-py's default handler of RESP3 pushes builds "Push response: " + str(message) for
    # every pub/sub message (the repr of a whole batch of events, on every node, whatever the log
    # level) and logs it at debug level on its "push_response" logger: with that logger at
    # debug, message text would reach the log. The bus's handler does neither.
    channel = redis_prefix + "bus"
    a, b = _bus(redis_service.url, channel), _bus(redis_service.url, channel)
    b.rooms = {"/": {"r:1": {}}}
    got_b: list[Any] = []
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="push_response")
    task = asyncio.create_task(_collect(b._listen(), got_b))
    try:
        await asyncio.sleep(0.3)  # subscribed
        await a._publish({**_emit("r:1", 0), "data": [{"body": "a secret in a message"}], "host_id": a.host_id})
        await a.flush()
        await _wait_for(got_b, 1)
        assert got_b[0]["data"] == [{"body": "a secret in a message"}]
        leaked = [r.getMessage() for r in caplog.records if "a secret in a message" in r.getMessage()]
        assert leaked == []
    finally:
        task.cancel()
        await a.close()
        await b.close()


async def test_a_stopped_node_leaves_no_subscription_behind(harness: ServerHarness, redis_service: RedisService) -> None:
    """A node stopped in a process that lives on unsubscribes: python-socketio never stops the
    listener it starts, which then took every later node's events, in every later test."""
    channel = harness.config().redis_prefix + "socketio"
    r = aioredis.Redis.from_url(redis_service.url)
    try:
        node = await harness.start_node()
        await (await harness.user(node)).connect()  # python-socketio starts its listener on the first connection
        for _ in range(100):  # it subscribes in the background
            if dict(await r.pubsub_numsub(channel)).get(channel.encode()) == 1:
                break
            await asyncio.sleep(0.05)
        assert dict(await r.pubsub_numsub(channel)).get(channel.encode()) == 1
        await harness.stop_node(node)
        for _ in range(40):
            if not dict(await r.pubsub_numsub(channel)).get(channel.encode()):
                break
            await asyncio.sleep(0.05)
        assert dict(await r.pubsub_numsub(channel)).get(channel.encode()) == 0
    finally:
        await r.aclose()
