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
    assert got["body"] == "hello bob" and got["seq"] == 2  # after bob's "… joined" notice


async def test_send_paths_member_retry_and_non_member(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    mallory = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "ops", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await mallory.connect()
    first = await alice.send(room_id, "one", client_id="c-1")
    again = await alice.send(room_id, "one", client_id="c-1")
    assert again["id"] == first["id"] and again["seq"] == first["seq"] == 1
    ack = await mallory.emit("message:send", {"room_id": room_id, "body": "x", "client_id": "m-1"})
    assert ack == {"ok": False, "error": {"code": "forbidden", "message": "join the room first"}}
    ack = await mallory.emit("message:send", {"room_id": 999999, "body": "x", "client_id": "m-2"})
    assert ack["error"]["code"] == "not_found"
    second = await alice.send(room_id, "two")
    assert second["seq"] == 2
