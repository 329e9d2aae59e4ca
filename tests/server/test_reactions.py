"""Emoji reactions (``message:react``): the round trip on every path a record takes (ack, the
room's ``message:updated``, history, ``sync`` with ``changed_since``), across two nodes, who may
react, which strings are emojis, the distinct-emoji cap and the event's cost."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from server.actions.reactions import REACTIONS_MAX_DISTINCT
from tests.support import Client, ServerHarness, make_room, two_in_a_room


def _summary(message: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    return [(r["emoji"], r["count"], r["user_ids"]) for r in message["reactions"]]


async def _react(client: Client, message_id: int, emoji: str, on: bool = True) -> dict[str, Any]:
    ack = await client.emit("message:react", {"id": message_id, "emoji": emoji, "on": on})
    assert isinstance(ack, dict)
    return ack


async def test_a_reaction_reaches_the_ack_the_room_history_and_sync_with_changed_since(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    await bob.emit("room:join", {"room_id": room_id})
    msg = await alice.send(room_id, "react to me")
    assert msg["reactions"] == []
    await bob.log.wait_for("message", lambda m: m["id"] == msg["id"])
    synced = await bob.emit("sync", {"cursors": {str(room_id): msg["seq"]}})
    seen_at = synced["as_of"]

    ack = await _react(bob, msg["id"], "👍🏽")
    assert ack["ok"] and ack["mine"] == ["👍🏽"]
    assert _summary(ack["message"]) == [("👍🏽", 1, [bob.id])]
    updated = await alice.log.wait_for("message:updated", lambda m: m["id"] == msg["id"])
    assert updated == ack["message"]
    # a second emoji, and alice's too: counts per emoji, in the order first used
    await _react(bob, msg["id"], "👨‍👩‍👧")
    ack = await _react(alice, msg["id"], "👍🏽")
    assert _summary(ack["message"]) == [("👍🏽", 2, [bob.id, alice.id]), ("👨‍👩‍👧", 1, [bob.id])]
    assert ack["mine"] == ["👍🏽"]

    history = await alice.emit("history", {"room_id": room_id})
    assert _summary(history["messages"][-1]) == _summary(ack["message"])
    # bob reconnects holding the message: the reaction change is in `changed`
    changed = await bob.emit("sync", {"cursors": {str(room_id): msg["seq"]}, "changed_since": seen_at})
    room = changed["rooms"][str(room_id)]
    assert room["messages"] == [] and [m["id"] for m in room["changed"]] == [msg["id"]]
    assert _summary(room["changed"][0]) == _summary(ack["message"])

    # removing it: the count drops, an emptied emoji disappears
    ack = await _react(bob, msg["id"], "👨‍👩‍👧", on=False)
    assert _summary(ack["message"]) == [("👍🏽", 2, [bob.id, alice.id])] and ack["mine"] == ["👍🏽"]
    await alice.log.wait_for("message:updated", lambda m: m["id"] == msg["id"] and len(m["reactions"]) == 1)
    _, rest = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert _summary(rest["messages"][-1]) == [("👍🏽", 2, [bob.id, alice.id])]


async def test_reacting_twice_or_removing_a_missing_reaction_acks_ok_and_emits_nothing(harness: ServerHarness) -> None:
    alice, bob, room_id = await two_in_a_room(harness)
    msg = await alice.send(room_id, "once")
    first = await _react(bob, msg["id"], "🎉")
    again = await _react(bob, msg["id"], "🎉")
    assert again["ok"] and again["message"] == first["message"] and again["mine"] == ["🎉"]
    missing = await _react(bob, msg["id"], "🔥", on=False)
    assert missing["ok"] and missing["message"] == first["message"]
    # a marker: the next change arrives, and only one update came before it
    await _react(alice, msg["id"], "🔥")
    await alice.log.wait_for("message:updated", lambda m: len(m["reactions"]) == 2)
    assert [len(m["reactions"]) for m in alice.log.all("message:updated")] == [1, 2]


async def test_a_reaction_on_one_node_reaches_the_room_on_another(harness: ServerHarness) -> None:
    a, b = harness.spawn_node(), harness.spawn_node()
    alice, bob = await harness.user(a), await harness.user(b)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    msg = await alice.send(room_id, "across nodes")
    ack = await _react(bob, msg["id"], "❤️")
    assert ack["ok"], ack
    seen = await alice.log.wait_for("message:updated", lambda m: m["id"] == msg["id"], timeout=10)
    assert seen == ack["message"] and _summary(seen) == [("❤️", 1, [bob.id])]
    off = await _react(alice, msg["id"], "❤️", on=False)  # idempotent: alice had none
    assert off["ok"] and off["mine"] == []
    ack = await _react(alice, msg["id"], "❤️")
    await bob.log.wait_for("message:updated", lambda m: m["id"] == msg["id"] and m["reactions"][0]["count"] == 2,
                           timeout=10)


async def test_only_members_who_may_write_can_react(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, mallory = await harness.user(node), await harness.user(node), await harness.user(node)
    private = await make_room(alice, bob, name="secret", kind="private")
    public = await make_room(alice, name="open")
    for c in (alice, bob, mallory):
        await c.connect()
    secret = await alice.send(private, "members only")
    open_msg = await alice.send(public, "anyone may read")
    refused = await _react(mallory, secret["id"], "👀")
    assert refused["ok"] is False and refused["error"]["code"] == "not_found", refused
    # a public room is readable, but reacting is writing: join first
    refused = await _react(mallory, open_msg["id"], "👀")
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused
    assert (await _react(mallory, 999_999_999, "👀"))["error"]["code"] == "not_found"
    await mallory.emit("room:join", {"room_id": public})
    assert (await _react(mallory, open_msg["id"], "👀"))["ok"]
    assert (await _react(bob, secret["id"], "👀"))["ok"]
    # a deleted message takes no reactions, and its record shows none
    gone = await alice.emit("message:delete", {"id": secret["id"]})
    assert gone["message"]["reactions"] == []
    assert (await _react(bob, secret["id"], "👀"))["error"]["code"] == "not_found"


async def test_strings_that_are_not_one_emoji_are_invalid(harness: ServerHarness) -> None:
    alice, _, room_id = await two_in_a_room(harness)
    msg = await alice.send(room_id, "emoji only")
    for bad in ("abc", "<script>", "x" * 500, "", "👍👍", "👍 ", "\u200d", "<img src=x onerror=alert(1)>"):
        ack = await _react(alice, msg["id"], bad)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", (bad, ack)
        assert ack["error"]["details"] == {"field": "emoji"}, ack
    for good in ("👍", "👍🏿", "🏳️‍🌈", "🇫🇷", "👩🏽‍💻", "#️⃣"):
        assert (await _react(alice, msg["id"], good))["ok"], good


async def test_a_new_emoji_past_the_distinct_cap_is_too_large_but_existing_ones_still_count(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, events_per_10s=10_000)
    node = await harness.start_node(limits=limits)
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    msg = await alice.send(room_id, "many")
    emojis = ["😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃", "😉", "😊", "😇", "🥰", "😍", "🤩",
              "😘", "😗", "😚", "😙", "😋", "😛"]
    for e in emojis[:REACTIONS_MAX_DISTINCT]:
        assert (await _react(alice, msg["id"], e))["ok"]
    over = await _react(bob, msg["id"], emojis[REACTIONS_MAX_DISTINCT])
    assert over["ok"] is False and over["error"]["code"] == "too_large" and over["error"]["details"] == {"field": "emoji"}
    same = await _react(bob, msg["id"], emojis[0])
    assert same["ok"] and same["message"]["reactions"][0]["count"] == 2
    assert len(same["message"]["reactions"]) == REACTIONS_MAX_DISTINCT


async def test_a_popular_reaction_names_ten_users_and_counts_them_all(harness: ServerHarness) -> None:
    node = await harness.start_node()
    owner = await harness.user(node)
    fans = [await harness.user(node) for _ in range(12)]
    room_id = await make_room(owner, *fans)
    await owner.connect()
    msg = await owner.send(room_id, "popular")
    for fan in fans:
        await fan.connect()
        assert (await _react(fan, msg["id"], "👏"))["ok"]
        await fan.disconnect()
    _, page = await owner.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    (reaction,) = page["messages"][-1]["reactions"]
    assert reaction["count"] == 12 and reaction["user_ids"] == [f.id for f in fans[:10]]


async def test_reactions_cost_more_of_the_event_budget_than_typing(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, events_per_10s=10)
    node = await harness.start_node(limits=limits)
    alice = await harness.user(node)
    room_id = await make_room(alice)
    await alice.connect()
    msg = await alice.send(room_id, "budget")  # 1 of 10 tokens; 1 more comes back per second
    emojis = ["👍", "🎉", "🔥", "👀", "😂", "🙏", "💯", "🚀", "✅", "🤔"]
    acks = await asyncio.gather(*(_react(alice, msg["id"], e) for e in emojis))
    refused = [a for a in acks if not a["ok"]]
    # ten typing events would all pass; at 2 tokens a reaction about half of these do not
    assert len(refused) >= 4 and all(a["error"]["code"] == "rate_limited" for a in refused), acks
