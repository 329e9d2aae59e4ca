"""Room management by its owners: rename, topic, archive, delete, remove members, roles; the
notices in the history; the directory of public rooms."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Client, ServerHarness, make_room


def record(client: Client, *names: str) -> None:
    """Record events the helper client does not record by default."""
    assert client.sio is not None
    for name in names:
        client.sio.on(name, client._recorder(name))


async def notices(client: Client, room_id: int) -> list[str]:
    _, page = await client.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    return [m["meta"]["notice"] for m in page["messages"] if m["author_kind"] == "system"]


async def test_an_owner_renames_and_sets_the_topic_members_see_it_live_and_in_history(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room = await make_room(alice, bob, name="plans")
    await bob.connect()
    record(bob, "room:updated")
    _, body = await alice.call("PATCH", f"/api/v1/rooms/{room}", {"name": "Plans 2025", "topic": "the roadmap"},
                               expect=200)
    assert body["room"]["name"] == "Plans 2025" and body["room"]["topic"] == "the roadmap"
    event = await bob.log.wait_for("room:updated")
    assert event["id"] == room and event["name"] == "Plans 2025" and event["topic"] == "the roadmap"
    await bob.log.wait_count("message", 2)
    assert await notices(bob, room) == ["renamed", "topic"]
    # the owner's own notices are read for them; bob has them unread
    _, listed = await alice.call("GET", "/api/v1/rooms", expect=200)
    mine = {r["id"]: r for r in listed["rooms"]}
    assert mine[room]["unread"] == 0


async def test_a_member_cannot_rename_archive_delete_or_remove(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room = await make_room(alice, bob, carol, name="team")
    for method, path, body in (("PATCH", f"/api/v1/rooms/{room}", {"name": "mine now"}),
                               ("PATCH", f"/api/v1/rooms/{room}", {"archived": True}),
                               ("DELETE", f"/api/v1/rooms/{room}", None),
                               ("DELETE", f"/api/v1/rooms/{room}/members/{carol.id}", None),
                               ("PUT", f"/api/v1/rooms/{room}/members/{bob.id}/role", {"role": "owner"})):
        status, err = await bob.call(method, path, body)
        assert status == 403 and err["error"]["code"] == "forbidden", (method, path, err)
    _, got = await bob.call("GET", f"/api/v1/rooms/{room}", expect=200)
    assert got["room"]["name"] == "team"
    # a promoted member manages; a server admin manages any room
    await alice.call("PUT", f"/api/v1/rooms/{room}/members/{bob.id}/role", {"role": "owner"}, expect=204)
    await bob.call("PATCH", f"/api/v1/rooms/{room}", {"topic": "bob's now too"}, expect=200)
    admin = await harness.user(node, role="admin")
    await admin.call("PATCH", f"/api/v1/rooms/{room}", {"name": "by the admin"}, expect=200)
    # direct rooms are not managed here
    _, dm = await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)
    status, _ = await alice.call("PATCH", f"/api/v1/rooms/{dm['room']['id']}", {"name": "x"})
    assert status == 403


async def test_an_archived_room_refuses_sends_with_archived_and_keeps_its_history(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room = await make_room(alice, bob, name="old")
    await bob.connect()
    first = await bob.send(room, "before the archive")
    _, body = await alice.call("PATCH", f"/api/v1/rooms/{room}", {"archived": True}, expect=200)
    assert body["room"]["archived_at"] is not None
    ack = await bob.emit("message:send", {"room_id": room, "body": "after", "client_id": uuid.uuid4().hex})
    assert ack["ok"] is False and ack["error"]["code"] == "archived", ack
    status, err = await alice.call("PATCH", f"/api/v1/rooms/{room}", {"name": "renamed"})
    assert status == 403 and err["error"]["code"] == "archived"
    history = await bob.emit("history", {"room_id": room})
    assert history["messages"][0]["body"] == first["body"]
    assert await notices(bob, room) == ["archived"]
    # unarchived, it takes messages again
    await alice.call("PATCH", f"/api/v1/rooms/{room}", {"archived": False}, expect=200)
    await bob.send(room, "back again")


async def test_a_removed_member_stops_receiving_the_rooms_events_on_both_nodes(harness: ServerHarness) -> None:
    one, two = await harness.start_node(), await harness.start_node()
    alice, bob = await harness.user(one), await harness.user(one)
    room = await make_room(alice, bob, name="club")
    other = await make_room(alice, bob, name="still shared")
    await alice.connect(one.base_url)
    bob_one = bob
    bob_two = Client(two.base_url, harness.http, bob.user, bob.tokens)
    harness.clients.append(bob_two)
    await bob_one.connect(one.base_url)
    await bob_two.connect(two.base_url)
    for c in (bob_one, bob_two):
        record(c, "member:removed")
    await alice.send(room, "still here?")
    for c in (bob_one, bob_two):
        await c.log.wait_for("message", lambda m: m["body"] == "still here?")

    await alice.call("DELETE", f"/api/v1/rooms/{room}/members/{bob.id}", expect=204)
    for c in (bob_one, bob_two):
        assert (await c.log.wait_for("member:removed")) == {"room_id": room, "user_id": bob.id}
    await alice.log.wait_for("member:left", lambda e: e["user"]["id"] == bob.id)
    await alice.send(room, "after the removal")
    # fan-out keeps the order of emits from one node: once the marker sent after it reaches
    # bob on both nodes, the room's message would have reached him before it
    await alice.send(other, "marker")
    for c in (bob_one, bob_two):
        await c.log.wait_for("message", lambda m: m["body"] == "marker")
    for c in (bob_one, bob_two):
        assert all(m["body"] != "after the removal" for m in c.log.all("message"))
    assert "removed" in await notices(alice, room)
    _, room_view = await alice.call("GET", f"/api/v1/rooms/{room}", expect=200)
    assert bob.id not in [m["id"] for m in room_view["room"]["members"]]
    # an owner is removed by an admin only, and nobody removes themselves here
    status, _ = await alice.call("DELETE", f"/api/v1/rooms/{room}/members/{alice.id}")
    assert status == 403


async def test_a_deleted_room_is_gone_for_everyone_and_members_are_told(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room = await make_room(alice, bob, name="temp", kind="private")
    await bob.connect()
    record(bob, "room:deleted")
    await bob.send(room, "soon gone")
    await alice.call("DELETE", f"/api/v1/rooms/{room}", expect=204)
    assert (await bob.log.wait_for("room:deleted")) == {"room_id": room}
    status, _ = await bob.call("GET", f"/api/v1/rooms/{room}")
    assert status == 404
    ack = await bob.emit("message:send", {"room_id": room, "body": "hello?", "client_id": uuid.uuid4().hex})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"


async def test_joining_and_leaving_leave_notices_in_the_history(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room = await make_room(alice, name="lobby")
    await bob.connect()
    assert (await bob.emit("room:join", {"room_id": room}))["ok"]
    assert (await bob.emit("room:leave", {"room_id": room}))["ok"]
    _, page = await alice.call("GET", f"/api/v1/rooms/{room}/messages", expect=200)
    texts = [(m["author_kind"], m["author_id"], m["body"]) for m in page["messages"]]
    name = bob.user["display_name"]
    assert texts == [("system", None, f"{name} joined"), ("system", None, f"{name} left")]


async def _directory(client: Client, **query: Any) -> dict[str, Any]:
    _, body = await client.call("GET", "/api/v1/rooms/directory", params={k: str(v) for k, v in query.items()},
                                expect=200)
    return body  # type: ignore[no-any-return]


async def test_the_directory_lists_public_rooms_with_search_member_counts_and_pages(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    tag = uuid.uuid4().hex[:8]
    ids = [await make_room(alice, bob, name=f"{tag} garden {i}") for i in range(5)]
    hidden = await make_room(alice, name=f"{tag} garden secret", kind="private")
    archived = await make_room(alice, name=f"{tag} garden old")
    await alice.call("PATCH", f"/api/v1/rooms/{archived}", {"archived": True}, expect=200)
    await make_room(alice, name=f"{tag} kitchen")

    seen: list[int] = []
    page = await _directory(bob, q=f"{tag} GARDEN", limit=2)
    while True:
        assert all(r["members_count"] == 2 for r in page["rooms"])
        seen += [r["id"] for r in page["rooms"]]
        if page["next_cursor"] is None:
            break
        page = await _directory(bob, q=f"{tag} garden", limit=2, cursor=page["next_cursor"])
    assert seen == sorted(ids, reverse=True)
    assert hidden not in seen and archived not in seen
    by_topic = await _directory(bob, q=tag)
    assert len(by_topic["rooms"]) == 6 and by_topic["next_cursor"] is None
    # a % in the search is a character, not a wildcard
    assert (await _directory(bob, q=f"{tag}%kitchen"))["rooms"] == []
