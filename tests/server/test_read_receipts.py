"""Read receipts: a member's advancing read cursor reaches the room as ``read:updated`` (direct
rooms, and rooms up to ``READ_RECEIPTS_MAX_MEMBERS`` members), across nodes, throttled to one
a second per reader without losing the newest cursor; ``room:join`` hands out the cursors;
larger rooms get none."""

from __future__ import annotations

import time

from tests.support import Client, ServerHarness, make_room


async def _connect(client: Client, base_url: str | None = None) -> None:
    sio = await client.connect(base_url)
    sio.on("read:updated", client._recorder("read:updated"))


async def test_a_dm_peer_on_another_node_sees_the_other_read_and_join_hands_out_cursors(harness: ServerHarness) -> None:
    a, b = harness.spawn_node(), harness.spawn_node()
    alice, bob = await harness.user(a), await harness.user(b)
    _, body = await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)
    dm = body["room"]["id"]
    await _connect(alice)
    await _connect(bob)
    m1 = await alice.send(dm, "seen yet?")
    await bob.log.wait_for("message", lambda m: m["id"] == m1["id"], timeout=10)
    assert (await bob.emit("read", {"room_id": dm, "seq": m1["seq"]}))["last_read_seq"] == m1["seq"]
    seen = await alice.log.wait_for("read:updated", lambda e: e["user_id"] == bob.id, timeout=10)
    assert seen == {"room_id": dm, "user_id": bob.id, "last_read_seq": m1["seq"]}
    # reading the same again moves nothing and says nothing; the next message's read does
    await bob.emit("read", {"room_id": dm, "seq": m1["seq"]})
    m2 = await alice.send(dm, "and this?")
    joined = await alice.emit("room:join", {"room_id": dm})
    assert joined["read_cursors"] == sorted([{"user_id": alice.id, "last_read_seq": 0},
                                             {"user_id": bob.id, "last_read_seq": m1["seq"]}],
                                            key=lambda c: c["user_id"])
    await bob.emit("read", {"room_id": dm, "seq": m2["seq"]})
    await alice.log.wait_for("read:updated", lambda e: e["last_read_seq"] == m2["seq"], timeout=10)
    assert [e["last_read_seq"] for e in alice.log.all("read:updated")] == [m1["seq"], m2["seq"]]


async def test_a_room_above_the_size_limit_sends_no_receipts(harness: ServerHarness) -> None:
    node = await harness.start_node(read_receipts_max_members=2)
    alice, bob, carol = await harness.user(node), await harness.user(node), await harness.user(node)
    small = await make_room(alice, bob, name="two")
    big = await make_room(alice, bob, carol, name="three")
    await _connect(alice)
    await _connect(bob)
    for room in (big, small):
        msg = await alice.send(room, "hello")
        await bob.emit("read", {"room_id": room, "seq": msg["seq"]})
    # the small room's receipt comes after the big room's would have (one node, one socket: in order)
    await alice.log.wait_for("read:updated", lambda e: e["room_id"] == small)
    assert [e["room_id"] for e in alice.log.all("read:updated")] == [small]
    assert "read_cursors" not in await alice.emit("room:join", {"room_id": big})
    assert "read_cursors" in await alice.emit("room:join", {"room_id": small})


async def test_receipts_are_throttled_to_one_a_second_and_the_newest_cursor_still_arrives(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room = await make_room(alice, bob)
    await _connect(alice)
    await _connect(bob)
    seqs = [(await alice.send(room, f"m{i}"))["seq"] for i in range(6)]
    started = time.monotonic()
    for seq in seqs:
        assert (await bob.emit("read", {"room_id": room, "seq": seq}))["last_read_seq"] == seq
    last = await alice.log.wait_for("read:updated", lambda e: e["last_read_seq"] == seqs[-1], timeout=10)
    elapsed = time.monotonic() - started
    events = alice.log.all("read:updated")
    assert last == {"room_id": room, "user_id": bob.id, "last_read_seq": seqs[-1]}
    # sent at least a second apart: no more than one per started second of the whole exchange
    assert len(events) <= int(elapsed) + 1, (len(events), elapsed)
    assert [e["last_read_seq"] for e in events] == sorted({e["last_read_seq"] for e in events})
