"""Typing indicators and presence across tabs."""

from __future__ import annotations

import asyncio

from tests.support import Client, ServerHarness


async def test_typing_reaches_others_not_the_sender_and_is_throttled(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "t", "kind": "public", "members": [bob.id]}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await bob.connect()
    assert (await alice.emit("typing", {"room_id": room_id, "typing": True}))["ok"]
    assert (await alice.emit("typing", {"room_id": room_id, "typing": True}))["ok"]  # within the throttle
    ev = await bob.log.wait_for("typing", lambda e: e["typing"])
    assert ev["user"]["id"] == alice.id and ev["room_id"] == room_id and ev["ttl_ms"] > 0
    await alice.emit("typing", {"room_id": room_id, "typing": False})
    await bob.log.wait_for("typing", lambda e: not e["typing"])
    assert len([e for e in bob.log.all("typing") if e["typing"]]) == 1
    assert alice.log.all("typing") == []
    ack = await bob.emit("typing", {"room_id": room_id, "typing": "yes"})
    assert ack["error"]["code"] == "invalid"


async def test_presence_online_with_the_first_tab_offline_with_the_last(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    await alice.call("POST", "/api/v1/rooms", {"name": "p", "kind": "public", "members": [bob.id]}, expect=201)
    await alice.connect()
    await bob.connect()
    await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "online")
    second_tab = Client(bob.base_url, bob.http, bob.user, bob.tokens)
    await second_tab.connect()
    await bob.disconnect()
    await asyncio.sleep(0.3)
    assert not [e for e in alice.log.all("presence") if e["user_id"] == bob.id and e["status"] == "offline"]
    await second_tab.disconnect()
    off = await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "offline")
    assert off["last_seen"]
    _, room = await alice.call("GET", "/api/v1/rooms", expect=200)
    assert room["rooms"]
