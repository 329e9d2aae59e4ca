"""Messages: delivery with the stored message in the ack, idempotent retries, gap-free seq
under concurrency, edit/delete by the author, history pages. Resume is in test_sync.py."""

from __future__ import annotations

import asyncio
import uuid

from tests.support import Client, ServerHarness


async def _room(owner: Client, *members: Client) -> int:
    _, body = await owner.call("POST", "/api/v1/rooms", {"name": "chat", "kind": "public",
                                                         "members": [m.id for m in members]}, expect=201)
    return int(body["room"]["id"])


async def test_retry_with_the_same_client_id_is_stored_and_delivered_once(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await _room(alice, bob)
    await alice.connect()
    await bob.connect()
    cid = uuid.uuid4().hex
    acks = await asyncio.gather(*(alice.emit("message:send", {"room_id": room_id, "body": "once", "client_id": cid})
                                  for _ in range(5)))
    assert len({a["message"]["id"] for a in acks}) == 1
    marker = await alice.send(room_id, "marker")
    await bob.log.wait_for("message", lambda m: m["id"] == marker["id"])
    assert [m["body"] for m in bob.log.all("message")] == ["once", "marker"]
    assert marker["seq"] == 2


async def test_seq_is_gap_free_and_unique_under_concurrent_senders(harness: ServerHarness) -> None:
    node = await harness.start_node()
    senders = [await harness.user(node) for _ in range(5)]
    room_id = await _room(senders[0], *senders[1:])
    for s in senders:
        await s.connect()

    async def burst(c: Client) -> list[int]:
        seqs = []
        for i in range(15):  # within the per-user rate limit (20 per 10 s)
            seqs.append((await c.send(room_id, f"{c.id}-{i}"))["seq"])
        return seqs

    results = await asyncio.gather(*(burst(s) for s in senders))
    seqs = sorted(x for r in results for x in r)
    assert seqs == list(range(1, 76))
    for r in results:
        assert r == sorted(r)  # each sender's own messages keep their order


async def test_edit_and_delete_by_the_author_only(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await _room(alice, bob)
    await alice.connect()
    await bob.connect()
    msg = await alice.send(room_id, "typo hre")
    ack = await bob.emit("message:edit", {"id": msg["id"], "body": "hacked"})
    assert ack["error"]["code"] == "forbidden"
    ack = await alice.emit("message:edit", {"id": msg["id"], "body": "typo here"})
    assert ack["ok"] and ack["message"]["edited_at"]
    upd = await bob.log.wait_for("message:updated", lambda m: m["id"] == msg["id"])
    assert upd["body"] == "typo here"
    ack = await alice.emit("message:delete", {"id": msg["id"]})
    assert ack["ok"] and ack["message"]["deleted_at"] and ack["message"]["body"] == ""
    ack = await alice.emit("message:edit", {"id": msg["id"], "body": "again"})
    assert ack["error"]["code"] == "not_found"


async def test_history_pages_backwards_with_has_more(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    room_id = await _room(alice)
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
