"""Two chat-server processes on the same PostgreSQL and Redis: chat, typing and presence
across nodes, and a killed node's users going offline by themselves."""

from __future__ import annotations

import signal

from tests.support import ServerHarness


async def test_users_on_two_nodes_chat_type_and_see_presence(harness: ServerHarness) -> None:
    a = harness.spawn_node()
    b = harness.spawn_node()
    alice = await harness.user(a)
    bob = await harness.user(b)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "x", "kind": "public", "members": [bob.id]}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await bob.connect()
    await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "online", timeout=10)
    m1 = await alice.send(room_id, "from node a")
    await bob.log.wait_for("message", lambda m: m["id"] == m1["id"], timeout=10)
    m2 = await bob.send(room_id, "from node b")
    await alice.log.wait_for("message", lambda m: m["id"] == m2["id"], timeout=10)
    await bob.emit("typing", {"room_id": room_id, "typing": True})
    await alice.log.wait_for("typing", lambda e: e["user"]["id"] == bob.id, timeout=10)


async def test_a_killed_node_takes_its_users_offline(harness: ServerHarness) -> None:
    a = harness.spawn_node()
    b = harness.spawn_node()
    alice = await harness.user(a)
    bob = await harness.user(b)
    await alice.call("POST", "/api/v1/rooms", {"name": "y", "kind": "public", "members": [bob.id]}, expect=201)
    await alice.connect()
    await bob.connect()
    await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "online", timeout=10)
    assert b.process is not None
    b.process.send_signal(signal.SIGKILL)
    b.process.wait(10)
    # PRESENCE_TTL_S=2 in tests: the sweeper on node a notices within a few seconds
    off = await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "offline", timeout=20)
    assert off["last_seen"]
    bob.sio = None
