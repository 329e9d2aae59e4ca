"""Mentions: ``@username`` of a member is stored with the message and counted until read, the
mentioned user is told on whichever node they are, ``@room``/``@here`` work for room owners only,
and the per-room notification setting round-trips and mutes the ``mention`` event."""

from __future__ import annotations

import asyncpg

from server.actions.mentions import MAX_MENTIONS, mention_tokens
from tests.support import Client, ServerHarness, make_room


def _listen(client: Client) -> None:
    """Record ``mention`` events (the shared helper records the older events only)."""
    assert client.sio is not None
    client.sio.on("mention", client._recorder("mention"))


def _name(client: Client) -> str:
    return str(client.user["username"])


async def _room_row(client: Client, room_id: int) -> dict:  # type: ignore[type-arg]
    _, body = await client.call("GET", "/api/v1/rooms", expect=200)
    return next(r for r in body["rooms"] if r["id"] == room_id)


def test_mention_tokens_skip_code_emails_and_keep_at_most_the_cap() -> None:
    names, broadcasts = mention_tokens("hi @Bob_1, see `@carol` and ```\n@dave\n``` mail x@erin.org @here @frank.")
    assert names == ["bob_1", "frank"] and broadcasts == {"here"}
    many = " ".join(f"@user{i:03d}" for i in range(MAX_MENTIONS + 5))
    assert len(mention_tokens(many)[0]) == MAX_MENTIONS


async def test_a_mentioned_member_is_stored_in_the_record_and_told_but_a_non_member_is_not(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    for c in (alice, bob, carol):
        await c.connect()
        _listen(c)
    sent = await alice.send(room_id, f"hello @{_name(bob)} and @{_name(carol).upper()} and @{_name(alice)}")
    assert sent["meta"]["mentions"] == [bob.id]  # carol is no member; one's own name is no mention
    told = await bob.log.wait_for("mention", timeout=5)
    assert told == {"room_id": room_id, "message_id": sent["id"], "seq": sent["seq"]}
    # the same record on every path: the room's event, history
    assert await bob.log.wait_for("message", lambda m: m["id"] == sent["id"]) == sent
    _, hist = await bob.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert hist["messages"][-1]["meta"]["mentions"] == [bob.id]
    assert (await _room_row(carol, room_id))["mentions"] == 0
    assert alice.log.all("mention") == [] and carol.log.all("mention") == []


async def test_at_assistant_still_triggers_the_assistant_next_to_a_mention(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    sent = await alice.send(room_id, f"@assistant and @{_name(bob)}: how do I create a room?")
    assert sent["meta"]["mentions"] == [bob.id]
    reply = await alice.log.wait_for("message", lambda m: m["author_kind"] == "assistant", timeout=15)
    assert reply["seq"] == sent["seq"] + 1


async def test_mention_counts_in_the_room_list_and_join_ack_are_reset_by_read(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    first = await alice.send(room_id, f"@{_name(bob)} one")
    await alice.send(room_id, "no mention here")
    third = await alice.send(room_id, f"and @{_name(bob)} two")
    row = await _room_row(bob, room_id)
    assert (row["mentions"], row["unread"], row["notify"]) == (2, 3, "all")
    joined = await bob.emit("room:join", {"room_id": room_id})
    assert (joined["mentions"], joined["notify"]) == (2, "all")
    read = await bob.emit("read", {"room_id": room_id, "seq": first["seq"]})
    assert read == {"ok": True, "last_read_seq": first["seq"], "mentions": 1}
    assert (await _room_row(bob, room_id))["mentions"] == 1
    read = await bob.emit("read", {"room_id": room_id, "seq": third["seq"]})
    assert read["mentions"] == 0
    assert (await _room_row(bob, room_id))["mentions"] == 0
    assert (await bob.emit("room:join", {"room_id": room_id}))["mentions"] == 0
    # the sender's own room list counts nothing
    assert (await _room_row(alice, room_id))["mentions"] == 0


async def test_the_mention_event_reaches_the_user_connected_to_another_node(harness: ServerHarness) -> None:
    a = harness.spawn_node()
    b = harness.spawn_node()
    alice, bob = await harness.user(a), await harness.user(b)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    _listen(bob)
    sent = await alice.send(room_id, f"ping @{_name(bob)}")
    told = await bob.log.wait_for("mention", timeout=10)
    assert told == {"room_id": room_id, "message_id": sent["id"], "seq": sent["seq"]}


async def test_at_room_mentions_every_member_from_the_owner_and_is_plain_text_from_a_member(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob, carol)  # alice owns it
    for c in (alice, bob, carol):
        await c.connect()
        _listen(c)
    plain = await bob.send(room_id, "@room lunch?")  # sent, not refused, but mentions nobody
    assert "mention_all" not in plain["meta"] and "mentions" not in plain["meta"]
    assert (await _room_row(carol, room_id))["mentions"] == 0
    loud = await alice.send(room_id, "@room meeting now")
    assert loud["meta"] == {"mentions": [], "mention_all": "room"}
    for c in (bob, carol):
        told = await c.log.wait_for("mention", timeout=5)
        assert told["message_id"] == loud["id"]  # the first one they got: none for bob's @room
        assert (await _room_row(c, room_id))["mentions"] == 1
    assert (await _room_row(alice, room_id))["mentions"] == 0


async def test_at_here_from_the_owner_reaches_only_members_online_now(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob, carol)
    await alice.connect()
    await bob.connect()
    await alice.log.wait_for("presence", lambda e: e["user_id"] == bob.id and e["status"] == "online")
    sent = await alice.send(room_id, "@here quick question")
    assert sent["meta"]["mention_all"] == "here"
    assert (await _room_row(bob, room_id))["mentions"] == 1
    assert (await _room_row(carol, room_id))["mentions"] == 0  # offline


async def test_a_server_admin_may_use_at_room_in_a_room_they_do_not_own(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    admin = await harness.user(node, role="admin")
    room_id = await make_room(alice, bob, admin)
    await admin.connect()
    sent = await admin.send(room_id, "@room maintenance tonight")
    assert sent["meta"]["mention_all"] == "room"
    assert (await _room_row(bob, room_id))["mentions"] == 1


async def test_room_settings_round_trip_validate_and_muting_stops_the_event_but_not_the_count(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    path = f"/api/v1/rooms/{room_id}/settings"
    _, body = await bob.call("PUT", path, {"notify": "mentions"}, expect=200)
    assert body == {"room_id": room_id, "notify": "mentions", "mentions": 0}
    assert (await _room_row(bob, room_id))["notify"] == "mentions"
    for bad in ({"notify": "loud"}, {"notify": None}, {}, {"notify": "all", "extra": 1}):
        status, err = await bob.call("PUT", path, bad)
        assert status == 400 and err["error"]["code"] == "invalid", (bad, err)
    await carol.call("PUT", path, {"notify": "none"}, expect=403)  # a public room carol has not joined
    await carol.call("PUT", "/api/v1/rooms/99999999/settings", {"notify": "none"}, expect=404)
    # muted: no event, but the mention still counts
    await bob.call("PUT", path, {"notify": "none"}, expect=200)
    await alice.connect()
    await bob.connect()
    _listen(bob)
    muted = await alice.send(room_id, f"@{_name(bob)} while muted")
    await bob.call("PUT", path, {"notify": "all"}, expect=200)
    heard = await alice.send(room_id, f"@{_name(bob)} after unmuting")
    await bob.log.wait_for("mention", lambda e: e["message_id"] == heard["id"], timeout=5)
    # the user channel keeps order: had the muted one been sent, it would have come first
    assert [e["message_id"] for e in bob.log.all("mention")] == [heard["id"]]
    assert muted["meta"]["mentions"] == [bob.id]
    assert (await _room_row(bob, room_id))["mentions"] == 2


async def test_leaving_a_room_drops_its_mentions(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    await alice.send(room_id, f"@{_name(bob)} hi")
    conn = await asyncpg.connect(harness.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM mentions WHERE user_id = $1", bob.id) == 1
        await bob.emit("room:leave", {"room_id": room_id})
        assert await conn.fetchval("SELECT count(*) FROM mentions WHERE user_id = $1", bob.id) == 0
    finally:
        await conn.close()
