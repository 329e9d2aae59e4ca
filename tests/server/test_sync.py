"""Resume after a disconnect: ``sync`` replays exactly what a client missed, per room, and
``read`` moves the cursor that unread counts are computed from."""

from __future__ import annotations

import asyncio

from tests.support import Client, ServerHarness, make_room, two_in_a_room


async def _unread(client: Client, room_id: int) -> int:
    _, listed = await client.call("GET", "/api/v1/rooms", expect=200)
    [room] = [r for r in listed["rooms"] if r["id"] == room_id]
    return int(room["unread"])


async def test_resume_after_disconnect_replays_exactly_what_was_missed(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    first = await alice.send(room_id, "before")
    await bob.log.wait_for("message", lambda m: m["id"] == first["id"])
    last_seq = max(m["seq"] for m in bob.log.all("message"))
    await bob.disconnect()
    missed = [await alice.send(room_id, f"while away {i}") for i in range(7)]
    await bob.connect()
    ack = await bob.emit("sync", {"cursors": {str(room_id): last_seq}})
    got = ack["rooms"][str(room_id)]
    assert got["resync"] is False and got["last_seq"] == missed[-1]["seq"]
    assert [m["id"] for m in got["messages"]] == [m["id"] for m in missed]
    assert [m["seq"] for m in got["messages"]] == list(range(last_seq + 1, last_seq + 8))
    # live messages keep flowing after the sync, each once, and none of the replayed ones again
    after = await alice.send(room_id, "after")
    await bob.log.wait_for("message", lambda m: m["id"] == after["id"])
    ids = [m["id"] for m in bob.log.all("message")] + [m["id"] for m in got["messages"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {first["id"], after["id"], *(m["id"] for m in missed)}


async def test_sync_covers_several_rooms_and_senders_and_reconnects_to_another_node(harness: ServerHarness) -> None:
    a = await harness.start_node()
    b = await harness.start_node()
    alice, bob, carol = await harness.user(a), await harness.user(a), await harness.user(a)
    busy = await make_room(alice, bob, carol, name="busy")
    quiet = await make_room(alice, bob, name="quiet")
    for c in (alice, bob, carol):
        await c.connect()
    seen = await alice.send(busy, "seen by bob")
    await bob.log.wait_for("message", lambda m: m["id"] == seen["id"])
    await bob.disconnect()
    missed = await asyncio.gather(*(c.send(busy, f"{c.id} says {i}") for c in (alice, carol) for i in range(5)))
    # bob comes back through another node of the same cluster (e.g. after a failover)
    await bob.connect(base_url=b.base_url)
    ack = await bob.emit("sync", {"cursors": {str(busy): seen["seq"], str(quiet): 0}})
    replay = ack["rooms"][str(busy)]["messages"]
    assert [m["seq"] for m in replay] == sorted(m["seq"] for m in missed)
    assert {m["id"] for m in replay} == {m["id"] for m in missed}
    assert ack["rooms"][str(quiet)] == {"messages": [], "resync": False, "last_seq": 0}
    # the reconnected socket is back in its rooms on the new node
    live = await alice.send(quiet, "are you back?")
    await bob.log.wait_for("message", lambda m: m["id"] == live["id"])


async def test_read_moves_the_cursor_forward_only_and_drives_unread(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    for i in range(5):
        await alice.send(room_id, f"m{i}")
    assert await _unread(bob, room_id) == 5
    assert await bob.emit("read", {"room_id": room_id, "seq": 3}) == {"ok": True, "last_read_seq": 3, "mentions": 0}
    assert await _unread(bob, room_id) == 2
    assert (await bob.emit("read", {"room_id": room_id, "seq": 1}))["last_read_seq"] == 3  # never moves back
    # a cursor past the end is clamped to the room's last seq: later messages still count as unread
    assert (await bob.emit("read", {"room_id": room_id, "seq": 1000}))["last_read_seq"] == 5
    await alice.send(room_id, "new")
    assert await _unread(bob, room_id) == 1


async def test_read_in_a_public_room_one_has_not_joined_is_forbidden(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice)
    await bob.connect()
    ack = await bob.emit("read", {"room_id": room_id, "seq": 1})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"


async def test_sync_of_an_inaccessible_room_says_resync(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "p", "kind": "private"}, expect=201)
    await bob.connect()
    ack = await bob.emit("sync", {"cursors": {str(body["room"]["id"]): 0, "424242": 0}})
    assert set(ack["rooms"]) == {str(body["room"]["id"]), "424242"}
    assert all(v["resync"] and v["messages"] == [] and v["error"]["code"] == "not_found" for v in ack["rooms"].values())


async def test_sync_replays_edits_and_deletions_made_while_away(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    kept, edited, deleted = [await alice.send(room_id, f"message {i}") for i in range(3)]
    await bob.log.wait_for("message", lambda m: m["id"] == deleted["id"])
    seen_at = max(m["created_at"] for m in bob.log.all("message"))  # the newest server time bob saw
    cursor = deleted["seq"]
    await bob.disconnect()
    assert (await alice.emit("message:edit", {"id": edited["id"], "body": "message 1, corrected"}))["ok"]
    assert (await alice.emit("message:delete", {"id": deleted["id"]}))["ok"]
    new = await alice.send(room_id, "message 3")
    await bob.connect()
    ack = await bob.emit("sync", {"cursors": {str(room_id): cursor}, "changed_since": seen_at})
    got = ack["rooms"][str(room_id)]
    assert [m["id"] for m in got["messages"]] == [new["id"]]
    changes = {m["id"]: m for m in got["changed"]}
    assert set(changes) == {edited["id"], deleted["id"]}  # not the untouched one
    assert changes[edited["id"]]["body"] == "message 1, corrected" and changes[edited["id"]]["edited_at"]
    assert changes[deleted["id"]]["body"] == "" and changes[deleted["id"]]["deleted_at"]
    assert kept["id"] not in changes
    # the answer's as_of is what the next sync sends: nothing has changed since
    again = await bob.emit("sync", {"cursors": {str(room_id): new["seq"]}, "changed_since": ack["as_of"]})
    # (within the margin the same changes may come again; applying them twice changes nothing)
    assert {m["id"] for m in again["rooms"][str(room_id)]["changed"]} <= {edited["id"], deleted["id"]}
    assert again["rooms"][str(room_id)]["messages"] == []
    # without changed_since the answer is as before; a malformed one is refused
    plain = await bob.emit("sync", {"cursors": {str(room_id): cursor}})
    assert "changed" not in plain["rooms"][str(room_id)]
    for bad in ("yesterday", 12, "2026-01-01T00:00:00"):
        refused = await bob.emit("sync", {"cursors": {str(room_id): cursor}, "changed_since": bad})
        assert refused["ok"] is False and refused["error"]["code"] == "invalid", bad
