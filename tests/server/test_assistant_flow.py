"""The assistant inside chat-server: mentions and direct messages get a streamed reply."""

from __future__ import annotations

from tests.support import ServerHarness


async def _assistant_id(client) -> int:  # type: ignore[no-untyped-def]
    _, body = await client.call("GET", "/api/v1/users?q=assistant", expect=200)
    return next(u["id"] for u in body["users"] if u["kind"] == "assistant")


async def test_mention_streams_deltas_then_stores_the_reply(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    bob = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "help", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    for c in (alice, bob):
        await c.connect()
        assert (await c.emit("room:join", {"room_id": room_id}))["ok"]
    await alice.send(room_id, "@assistant how do I create a room?")
    final = await bob.log.wait_for("message", lambda m: m["author_kind"] == "assistant", timeout=15)
    reply_id = final["meta"]["reply_id"]
    deltas = [d["text"] for d in bob.log.all("assistant:delta") if d["reply_id"] == reply_id]
    assert deltas and "".join(deltas) == final["body"]
    assert final["meta"]["offline"] is True and final["seq"] == 3  # after "… joined" (bob)
    # stored like any message: history returns it
    _, hist = await bob.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert [m["author_kind"] for m in hist["messages"]] == ["system", "user", "assistant"]


async def test_a_message_without_mention_gets_no_reply(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "quiet", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    await alice.send(room_id, "just people talking about the assistant")
    marker = await alice.send(room_id, "@assistant hello")
    final = await alice.log.wait_for("message", lambda m: m["author_kind"] == "assistant", timeout=15)
    assert final["seq"] == marker["seq"] + 1
    assert len([m for m in alice.log.all("message") if m["author_kind"] == "assistant"]) == 1


async def test_direct_conversation_with_the_assistant_answers_every_message(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    assistant_id = await _assistant_id(alice)
    _, body = await alice.call("POST", "/api/v1/dms", {"user_id": assistant_id})
    room_id = body["room"]["id"]
    await alice.connect()
    await alice.send(room_id, "how do I start a direct message?")
    reply = await alice.log.wait_for("message", lambda m: m["author_kind"] == "assistant", timeout=15)
    assert reply["room_id"] == room_id and reply["body"]
