"""Rooms: public and private visibility, invites, direct messages, join/leave events, unread."""

from __future__ import annotations

from tests.support import ServerHarness


async def test_private_rooms_are_invisible_to_non_members_until_invited(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "secret plans", "kind": "private"}, expect=201)
    room_id = body["room"]["id"]
    status, err = await bob.call("GET", f"/api/v1/rooms/{room_id}")
    assert status == 404 and err["error"]["code"] == "not_found"
    _, listed = await bob.call("GET", "/api/v1/rooms", expect=200)
    assert room_id not in [r["id"] for r in listed["rooms"]]
    await bob.connect()
    await alice.call("POST", f"/api/v1/rooms/{room_id}/members", {"user_id": bob.id}, expect=204)
    added = await bob.log.wait_for("room:added", lambda r: r["id"] == room_id)
    assert added["kind"] == "private"
    _, room = await bob.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    assert {m["id"] for m in room["room"]["members"]} == {alice.id, bob.id}
    # the invited member's open socket was subscribed: he receives messages at once
    await alice.connect()
    sent = await alice.send(room_id, "welcome bob")
    await bob.log.wait_for("message", lambda m: m["id"] == sent["id"])


async def test_direct_room_is_created_once_and_found_again(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    status, first = await alice.call("POST", "/api/v1/dms", {"user_id": bob.id})
    assert status == 201 and first["room"]["kind"] == "direct"
    status, again = await bob.call("POST", "/api/v1/dms", {"user_id": alice.id})
    assert status == 200 and again["room"]["id"] == first["room"]["id"]
    status, err = await alice.call("POST", "/api/v1/dms", {"user_id": alice.id})
    assert status == 400 and err["error"]["code"] == "invalid"
    status, err = await alice.call("POST", "/api/v1/dms", {"user_id": 987654})
    assert status == 404


async def test_join_and_leave_emit_member_events(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "lobby", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await bob.connect()
    ack = await bob.emit("room:join", {"room_id": room_id})
    assert ack["ok"] and ack["room"]["id"] == room_id and {m["id"] for m in ack["members"]} == {alice.id, bob.id}
    assert ack["presence"][str(alice.id)] == "online"
    joined = await alice.log.wait_for("member:joined", lambda e: e["user"]["id"] == bob.id)
    assert joined["room_id"] == room_id
    assert (await bob.emit("room:leave", {"room_id": room_id}))["ok"]
    await alice.log.wait_for("member:left", lambda e: e["user"]["id"] == bob.id)
    sent = await alice.send(room_id, "after bob left")
    ack = await bob.emit("message:send", {"room_id": room_id, "body": "hi", "client_id": "x1"})
    assert ack["error"]["code"] == "forbidden"
    assert all(m["id"] != sent["id"] for m in bob.log.all("message"))


async def test_rooms_list_unread_counts_and_read_cursor(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "news", "kind": "public", "members": [bob.id]}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    for i in range(3):
        await alice.send(room_id, f"news {i}")
    _, listed = await bob.call("GET", "/api/v1/rooms", expect=200)
    [room] = [r for r in listed["rooms"] if r["id"] == room_id]
    assert room["unread"] == 3 and room["joined"] is True
    await bob.connect()
    ack = await bob.emit("read", {"room_id": room_id, "seq": 2})
    assert ack == {"ok": True, "last_read_seq": 2}
    ack = await bob.emit("read", {"room_id": room_id, "seq": 1})  # never moves back
    assert ack["last_read_seq"] == 2
    _, listed = await bob.call("GET", "/api/v1/rooms", expect=200)
    assert [r["unread"] for r in listed["rooms"] if r["id"] == room_id] == [1]


async def test_room_name_and_kind_are_validated(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    for payload in ({"name": "", "kind": "public"}, {"name": "x" * 81, "kind": "public"},
                    {"name": "ok", "kind": "direct"}, {"name": "ok", "kind": "public", "members": "all"}, {}):
        status, body = await alice.call("POST", "/api/v1/rooms", payload)
        assert status == 400 and body["error"]["code"] == "invalid", payload
