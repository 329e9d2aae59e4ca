"""Typing indicators (throttled, not echoed, stop goes out) and presence across tabs
(online with the first socket, offline with the last, last seen recorded, only to room mates)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from server.app import make_redis
from tests.support import Client, ServerHarness, make_room


async def _wait_open_sockets(harness: ServerHarness, user_id: int, count: int) -> None:
    """Wait until the server's presence registry holds ``count`` sockets of the user: the
    point after which the server has decided whether a disconnect took the user offline."""
    r = aioredis.from_url(harness.env["REDIS_URL"], socket_timeout=2)
    try:
        key = f"{harness.env['REDIS_PREFIX']}presence:sockets:{user_id}"
        async with asyncio.timeout(10):
            while await r.hlen(key) != count:
                await asyncio.sleep(0.02)
    finally:
        await r.aclose()


async def test_typing_reaches_others_not_the_sender_and_is_throttled(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob, carol)
    for c in (alice, bob, carol):
        await c.connect()
    assert await alice.emit("typing", {"room_id": room_id, "typing": True}) == {"ok": True}
    assert await alice.emit("typing", {"room_id": room_id, "typing": True}) == {"ok": True}  # within the throttle
    for c in (bob, carol):
        ev = await c.log.wait_for("typing", lambda e: e["typing"])
        assert ev == {"room_id": room_id, "user": {"id": alice.id, "display_name": alice.user["display_name"]},
                      "typing": True, "ttl_ms": ev["ttl_ms"]} and ev["ttl_ms"] > 0
    assert await alice.emit("typing", {"room_id": room_id, "typing": False}) == {"ok": True}
    await bob.log.wait_for("typing", lambda e: not e["typing"])
    # the stop re-arms the throttle: typing again is shown at once
    await alice.emit("typing", {"room_id": room_id, "typing": True})
    await bob.log.wait_for("typing", lambda e: e["typing"] and len([x for x in bob.log.all("typing") if x["typing"]]) == 2)
    # a marker message proves everything alice caused has reached bob: nothing else arrived
    marker = await alice.send(room_id, "done typing")
    await bob.log.wait_for("message", lambda m: m["id"] == marker["id"])
    assert [e["typing"] for e in bob.log.all("typing")] == [True, False, True]
    await alice.log.wait_for("message", lambda m: m["id"] == marker["id"])
    assert alice.log.all("typing") == []


async def test_typing_needs_membership_and_a_boolean(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice)
    await bob.connect()
    ack = await bob.emit("typing", {"room_id": room_id, "typing": True})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    for value in ("yes", 1, None):
        ack = await bob.emit("typing", {"room_id": room_id, "typing": value})
        assert ack["error"]["code"] == "invalid", value


async def test_presence_online_with_the_first_tab_offline_with_the_last(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, stranger = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    lobby = await make_room(alice, stranger)
    await alice.connect()
    await stranger.connect()
    await bob.connect()
    online = await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "online")
    assert set(online) == {"user_id", "status", "last_seen"}
    second_tab = Client(bob.base_url, bob.http, bob.user, bob.tokens)
    await second_tab.connect()
    await _wait_open_sockets(harness, bob.id, 2)
    await bob.disconnect()
    await _wait_open_sockets(harness, bob.id, 1)  # the server handled the first tab's disconnect
    for _ in range(3):  # round trips through the database and Redis: an offline would be out by now
        joined = await alice.emit("room:join", {"room_id": room_id})
        assert joined["presence"][str(bob.id)] == "online"
    assert [e["status"] for e in alice.log.all("presence") if e["user_id"] == bob.id] == ["online"]
    await second_tab.disconnect()
    off = await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "offline")
    assert off["last_seen"]
    # one online (first tab) and one offline (last tab), nothing for the tab in between
    assert [e["status"] for e in alice.log.all("presence") if e["user_id"] == bob.id] == ["online", "offline"]
    joined = await alice.emit("room:join", {"room_id": room_id})
    assert joined["presence"][str(bob.id)] == "offline"
    _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    [member] = [m for m in room["room"]["members"] if m["id"] == bob.id]
    assert member["last_seen"] == off["last_seen"]
    # presence goes to people who share a room with bob, nobody else: a message sent after the
    # offline event reaches the stranger's socket after anything emitted to it before
    marker = await alice.send(lobby, "marker")
    await stranger.log.wait_for("message", lambda m: m["id"] == marker["id"])
    assert [e for e in stranger.log.all("presence") if e["user_id"] == bob.id] == []


async def test_a_burst_of_redis_calls_waits_for_the_pool_instead_of_failing(harness: ServerHarness) -> None:
    """Thousands of sockets closing at once each update presence: more concurrent Redis calls
    than the pool holds must queue for a connection (the default pool raised MaxConnectionsError
    past 100, and those users stayed online)."""
    # the wait for a free connection is bounded by the Redis timeout: 10 s here, so a worker
    # starved of CPU by the rest of the suite still tells queueing from failing
    redis = make_redis(harness.config(redis_timeout_s=10.0))
    try:
        key = harness.config().redis_prefix + "burst"
        await asyncio.gather(*(redis.sadd(key, str(i)) for i in range(600)))
        assert await redis.scard(key) == 600
    finally:
        await redis.aclose()
