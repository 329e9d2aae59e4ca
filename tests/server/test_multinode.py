"""Two chat-server processes on the same PostgreSQL and Redis: chat, typing and presence
across nodes both ways, and a killed node's users going offline by themselves."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import PRESENCE_TTL_S, Client, ServerHarness

pytestmark = pytest.mark.heavy

# A dead node's users are offline within PRESENCE_TTL_S (its heartbeat key expires) + one sweep
# interval (PRESENCE_TTL_S / 3, when a live node looks) + 2 s to record last_seen and deliver the
# event (docs/RELIABILITY.md, R8).
OFFLINE_BOUND_S = PRESENCE_TTL_S + PRESENCE_TTL_S / 3 + 2.0


def _is(user: Client, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["user_id"] == user.id and e["status"] == status


def _statuses(observer: Client, user: Client) -> list[str]:
    return [e["status"] for e in observer.log.all("presence") if e["user_id"] == user.id]


async def test_users_on_two_nodes_chat_type_and_see_presence(harness: ServerHarness) -> None:
    a = harness.spawn_node()
    b = harness.spawn_node()
    alice = await harness.user(a)
    bob = await harness.user(b)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "x", "kind": "public", "members": [bob.id]}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await bob.connect()
    # presence both ways: alice sees bob arrive; bob, joining later, is told alice is online
    await alice.log.wait_for("presence", _is(bob, "online"), timeout=10)
    joined = await bob.emit("room:join", {"room_id": room_id})
    assert joined["presence"] == {str(alice.id): "online", str(bob.id): "online"}
    # messages both ways, each exactly as acked
    m1 = await alice.send(room_id, "from node a")
    assert await bob.log.wait_for("message", lambda m: m["id"] == m1["id"], timeout=10) == m1
    m2 = await bob.send(room_id, "from node b")
    assert await alice.log.wait_for("message", lambda m: m["id"] == m2["id"], timeout=10) == m2
    assert (m1["seq"], m2["seq"]) == (1, 2)
    # typing both ways
    await bob.emit("typing", {"room_id": room_id, "typing": True})
    await alice.log.wait_for("typing", lambda e: e["user"]["id"] == bob.id and e["typing"], timeout=10)
    await alice.emit("typing", {"room_id": room_id, "typing": True})
    await bob.log.wait_for("typing", lambda e: e["user"]["id"] == alice.id and e["typing"], timeout=10)
    await alice.emit("typing", {"room_id": room_id, "typing": False})
    await bob.log.wait_for("typing", lambda e: e["user"]["id"] == alice.id and not e["typing"], timeout=10)
    # a clean disconnect on node a reaches bob on node b
    await alice.disconnect()
    off = await bob.log.wait_for("presence", _is(alice, "offline"), timeout=10)
    assert off["last_seen"]


async def test_a_killed_node_takes_its_users_offline(harness: ServerHarness) -> None:
    a = harness.spawn_node()
    b = harness.spawn_node()
    alice = await harness.user(a)
    bob = await harness.user(b)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "y", "kind": "public", "members": [bob.id]}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await bob.connect()
    await alice.log.wait_for("presence", _is(bob, "online"), timeout=10)
    assert b.process is not None
    killed_at = asyncio.get_running_loop().time()
    b.process.send_signal(signal.SIGKILL)  # no shutdown hook runs: only the heartbeat TTL can tell
    b.process.wait(10)
    bob.sio = None
    left = OFFLINE_BOUND_S - (asyncio.get_running_loop().time() - killed_at)
    off = await alice.log.wait_for("presence", _is(bob, "offline"), timeout=left)
    assert off["last_seen"]
    joined = await alice.emit("room:join", {"room_id": room_id})
    assert joined["presence"][str(bob.id)] == "offline"
    _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    assert [m["last_seen"] for m in room["room"]["members"] if m["id"] == bob.id] == [off["last_seen"]]
    # bob comes back through the surviving node and is online again for alice
    await bob.connect(base_url=a.base_url)
    await alice.log.wait_for("presence", lambda _: _statuses(alice, bob) == ["online", "offline", "online"], timeout=10)


async def test_a_node_restarted_under_the_same_id_clears_what_its_crash_left(harness: ServerHarness) -> None:
    # a long TTL: node a never sweeps b here; only the restarted b can clear its old sockets
    a = harness.spawn_node(PRESENCE_TTL_S="60")
    b = harness.spawn_node(PRESENCE_TTL_S="60", CHAT_NODE_ID="node-b")
    alice = await harness.user(a)
    bob = await harness.user(b)
    await alice.call("POST", "/api/v1/rooms", {"name": "z", "kind": "public", "members": [bob.id]}, expect=201)
    await alice.connect()
    await bob.connect()
    await alice.log.wait_for("presence", _is(bob, "online"), timeout=10)
    assert b.process is not None
    b.process.send_signal(signal.SIGKILL)
    b.process.wait(10)
    bob.sio = None
    harness.spawn_node(PRESENCE_TTL_S="60", CHAT_NODE_ID="node-b")  # e.g. restarted by compose
    # the new process removes the sockets its previous incarnation registered: bob is offline
    off = await alice.log.wait_for("presence", _is(bob, "offline"), timeout=20)
    assert off["last_seen"]
