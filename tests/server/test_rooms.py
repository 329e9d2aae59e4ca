"""Rooms: public and private visibility, invites, direct messages, join/leave events, unread."""

from __future__ import annotations

import asyncio

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
    assert joined["room_id"] == room_id and joined["presence"] == "online"  # alice need not guess
    # an invitee with no open socket joins as offline
    carol = await harness.user(node)
    await alice.call("POST", f"/api/v1/rooms/{room_id}/members", {"user_id": carol.id}, expect=204)
    invited = await alice.log.wait_for("member:joined", lambda e: e["user"]["id"] == carol.id)
    assert invited["presence"] == "offline"
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
    _, listed = await alice.call("GET", "/api/v1/rooms", expect=200)
    assert [r["unread"] for r in listed["rooms"] if r["id"] == room_id] == [0]  # her own messages
    await bob.connect()
    ack = await bob.emit("read", {"room_id": room_id, "seq": 2})
    assert ack == {"ok": True, "last_read_seq": 2, "mentions": 0}
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


async def test_public_rooms_are_listed_and_readable_for_everyone_writable_for_members(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    status, created = await alice.call("POST", "/api/v1/rooms", {"name": "Town Square", "kind": "public", "topic": "all"})
    assert status == 201 and created["room"]["kind"] == "public" and created["room"]["joined"] is True
    room_id = created["room"]["id"]
    _, listed = await bob.call("GET", "/api/v1/rooms", expect=200)
    [room] = [r for r in listed["rooms"] if r["id"] == room_id]
    assert room["joined"] is False and room["unread"] == 0 and room["name"] == "Town Square"
    _, seen = await bob.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    assert [m["id"] for m in seen["room"]["members"]] == [alice.id]
    await alice.connect()
    await alice.send(room_id, "open to all")
    _, page = await bob.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert [m["body"] for m in page["messages"]] == ["open to all"]
    await bob.connect()
    ack = await bob.emit("message:send", {"room_id": room_id, "body": "may I?", "client_id": "b1"})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert (await bob.emit("room:join", {"room_id": room_id}))["ok"]
    await bob.send(room_id, "now I may")


async def test_private_rooms_refuse_non_members_everywhere_with_not_found(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, mallory = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "vault", "kind": "private"}, expect=201)
    room_id = body["room"]["id"]
    await mallory.connect()
    for event, payload in (("room:join", {"room_id": room_id}), ("room:leave", {"room_id": room_id}),
                           ("message:send", {"room_id": room_id, "body": "x", "client_id": "m1"}),
                           ("history", {"room_id": room_id}), ("typing", {"room_id": room_id, "typing": True}),
                           ("read", {"room_id": room_id, "seq": 0})):
        ack = await mallory.emit(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", event
    status, err = await mallory.call("GET", f"/api/v1/rooms/{room_id}/messages")
    assert status == 404 and err["error"]["code"] == "not_found"
    status, err = await mallory.call("POST", f"/api/v1/rooms/{room_id}/members", {"user_id": mallory.id})
    assert status == 404 and err["error"]["code"] == "not_found"
    # unknown ids answer exactly the same way: nothing tells the two apart
    status, err = await mallory.call("GET", "/api/v1/rooms/99999999")
    assert status == 404 and err["error"]["code"] == "not_found"


async def test_invites_are_validated(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "club", "kind": "private"}, expect=201)
    room_id = body["room"]["id"]
    for payload in ({}, {"user_id": "2"}, {"user_id": 0}, {"user_id": True}, {"user_id": 1.5}):
        status, err = await alice.call("POST", f"/api/v1/rooms/{room_id}/members", payload)
        assert status == 400 and err["error"]["code"] == "invalid", payload
    status, err = await alice.call("POST", f"/api/v1/rooms/{room_id}/members", {"user_id": 987654})
    assert status == 404 and err["error"]["code"] == "not_found"
    for members in ([True], [bob.id, "x"], [0]):
        status, err = await alice.call("POST", "/api/v1/rooms", {"name": "c2", "kind": "private", "members": members})
        assert status == 400 and err["error"]["code"] == "invalid", members
    await alice.call("POST", f"/api/v1/rooms/{room_id}/members", {"user_id": bob.id}, expect=204)
    await alice.call("POST", f"/api/v1/rooms/{room_id}/members", {"user_id": bob.id}, expect=204)  # idempotent
    _, room = await bob.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    assert sorted(m["id"] for m in room["room"]["members"]) == sorted([alice.id, bob.id])


async def test_a_direct_room_opened_by_both_at_once_is_one_room(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    await bob.connect()
    (s1, r1), (s2, r2) = await asyncio.gather(alice.call("POST", "/api/v1/dms", {"user_id": bob.id}),
                                              bob.call("POST", "/api/v1/dms", {"user_id": alice.id}))
    assert sorted([s1, s2])[0] in (200, 201) and r1["room"]["id"] == r2["room"]["id"]
    room_id = r1["room"]["id"]
    _, listed = await alice.call("GET", "/api/v1/rooms", expect=200)
    assert [r["id"] for r in listed["rooms"] if r["kind"] == "direct"] == [room_id]
    await alice.connect()
    sent = await alice.send(room_id, "just us")
    await bob.log.wait_for("message", lambda m: m["id"] == sent["id"])
    ack = await bob.emit("room:leave", {"room_id": room_id})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
