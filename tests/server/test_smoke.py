from __future__ import annotations

from tests.support import ServerHarness


async def test_two_users_exchange_a_message(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    bob = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "general", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await bob.connect()
    assert (await alice.emit("room:join", {"room_id": room_id}))["ok"]
    assert (await bob.emit("room:join", {"room_id": room_id}))["ok"]
    sent = await alice.send(room_id, "hello bob")
    got = await bob.log.wait_for("message", lambda m: m["id"] == sent["id"])
    assert got["body"] == "hello bob" and got["seq"] == 1
