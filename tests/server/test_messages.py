"""Messages: delivery with the stored message in the ack, idempotent retries, gap-free seq
under concurrency, edit/delete by the author, history pages. Resume is in test_sync.py."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from chatcore.events import MessageRecord
from tests.support import Client, ServerHarness, make_room, two_in_a_room


async def test_send_and_receive_between_two_users_and_the_ack_carries_the_stored_message(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    ack = await alice.emit("message:send", {"room_id": room_id, "body": "hi bob", "client_id": "a-1"})
    assert ack["ok"] is True
    sent = ack["message"]
    assert sent["id"] > 0 and sent["seq"] == 1 and sent["room_id"] == room_id and sent["client_id"] == "a-1"
    assert sent["author_id"] == alice.id and sent["author_kind"] == "user" and sent["body"] == "hi bob"
    assert MessageRecord.from_wire(sent).to_wire() == sent  # the documented flat shape, nothing else
    # what bob receives and what history returns is exactly what the ack said was stored
    assert await bob.log.wait_for("message", lambda m: m["id"] == sent["id"]) == sent
    page = await bob.emit("history", {"room_id": room_id})
    assert page["messages"] == [sent]
    reply = await bob.send(room_id, "hi alice")
    assert await alice.log.wait_for("message", lambda m: m["id"] == reply["id"]) == reply
    assert reply["seq"] == 2 and reply["author_id"] == bob.id


async def test_retry_with_the_same_client_id_is_stored_and_delivered_once(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    cid = uuid.uuid4().hex
    acks = await asyncio.gather(*(alice.emit("message:send", {"room_id": room_id, "body": "once", "client_id": cid})
                                  for _ in range(5)))
    assert len({a["message"]["id"] for a in acks}) == 1
    marker = await alice.send(room_id, "marker")
    await bob.log.wait_for("message", lambda m: m["id"] == marker["id"])
    assert [m["body"] for m in bob.log.all("message")] == ["once", "marker"]
    assert marker["seq"] == 2


async def test_seq_is_gap_free_and_unique_under_concurrent_senders(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, messages_per_10s=1000, events_per_10s=1000)
    node = await harness.start_node(limits=limits)
    senders = [await harness.user(node) for _ in range(5)]
    listener = await harness.user(node)
    room_id = await make_room(senders[0], *senders[1:], listener)
    for c in (*senders, listener):
        await c.connect()

    async def burst(c: Client) -> list[int]:
        return [(await c.send(room_id, f"{c.id}-{i}"))["seq"] for i in range(40)]

    results = await asyncio.gather(*(burst(s) for s in senders))
    seqs = sorted(x for r in results for x in r)
    assert seqs == list(range(1, 201))
    for r in results:
        assert r == sorted(r)  # each sender's own messages keep their order
    # every message reached a member exactly once
    got = sorted(m["seq"] for m in await listener.log.wait_count("message", 200))
    assert got == list(range(1, 201))
    _, rest = await listener.call("GET", f"/api/v1/rooms/{room_id}/messages?limit=100", expect=200)
    assert [m["seq"] for m in rest["messages"]] == list(range(101, 201)) and rest["has_more"]


async def test_edit_and_delete_by_the_author_only(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    msg = await alice.send(room_id, "typo hre")
    ack = await bob.emit("message:edit", {"id": msg["id"], "body": "hacked"})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = await bob.emit("message:delete", {"id": msg["id"]})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = await alice.emit("message:edit", {"id": msg["id"], "body": "typo here"})
    assert ack["ok"] and ack["message"]["edited_at"] and ack["message"]["seq"] == msg["seq"]
    upd = await bob.log.wait_for("message:updated", lambda m: m["id"] == msg["id"] and m["edited_at"])
    assert upd["body"] == "typo here"
    ack = await alice.emit("message:delete", {"id": msg["id"]})
    assert ack["ok"] and ack["message"]["deleted_at"] and ack["message"]["body"] == ""
    gone = await bob.log.wait_for("message:updated", lambda m: m["id"] == msg["id"] and m["deleted_at"])
    assert gone["body"] == ""
    # history keeps the tombstone in place (seq stays gap-free) without the text
    page = await bob.emit("history", {"room_id": room_id})
    assert [(m["id"], m["body"], bool(m["deleted_at"])) for m in page["messages"]] == [(msg["id"], "", True)]
    ack = await alice.emit("message:edit", {"id": msg["id"], "body": "again"})
    assert ack["error"]["code"] == "not_found"
    ack = await alice.emit("message:delete", {"id": 987654321})
    assert ack["error"]["code"] == "not_found"


async def test_a_non_member_cannot_edit_messages_of_a_private_room(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, mallory = await harness.user(node), await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "inner", "kind": "private"}, expect=201)
    await alice.connect()
    await mallory.connect()
    msg = await alice.send(body["room"]["id"], "secret")
    # the message's room does not exist for him: not_found, never a hint that it does
    for event, payload in (("message:edit", {"id": msg["id"], "body": "x"}), ("message:delete", {"id": msg["id"]})):
        ack = await mallory.emit(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", event


async def test_history_pages_backwards_with_has_more(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    room_id = await make_room(alice)
    await alice.connect()
    for i in range(12):
        await alice.send(room_id, f"m{i}")
    page = await alice.emit("history", {"room_id": room_id, "limit": 5})
    assert [m["seq"] for m in page["messages"]] == [8, 9, 10, 11, 12] and page["has_more"]
    page = await alice.emit("history", {"room_id": room_id, "before_seq": 8, "limit": 5})
    assert [m["seq"] for m in page["messages"]] == [3, 4, 5, 6, 7] and page["has_more"]
    page = await alice.emit("history", {"room_id": room_id, "before_seq": 3, "limit": 5})
    assert [m["seq"] for m in page["messages"]] == [1, 2] and not page["has_more"]
    _, rest = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages?before_seq=3&limit=1", expect=200)
    assert [m["seq"] for m in rest["messages"]] == [2] and rest["has_more"]
