"""Message search (``GET /api/v1/search``): ranking, phrases, accents, access, deletion,
pagination and bad queries, on a real chat-server and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import asyncpg

from tests.support import ChatNode, Client, ServerHarness, make_room


async def _node(harness: ServerHarness, **overrides: Any) -> ChatNode:
    harness.env["RATE_LIMIT_MESSAGES_PER_10S"] = "1000"
    return await harness.start_node(**overrides)


async def search(client: Client, expect: int = 200, **params: Any) -> Any:
    _, body = await client.call("GET", "/api/v1/search?" + urlencode(params), expect=expect)
    return body


def bodies(page: dict[str, Any]) -> list[str]:
    return [h["message"]["body"] for h in page["hits"]]


def marked(hit: dict[str, Any]) -> list[str]:
    return [hit["snippet"][s["start"]:s["end"]] for s in hit["highlights"]]


async def test_a_message_matching_twice_ranks_above_one_matching_once(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    # the better match is the older one: rank, not recency, puts it first
    await alice.send(room, "otter here, otter there")
    await alice.send(room, "the otter swims in the river")
    await alice.send(room, "nothing to see")
    page = await search(alice, q="otter")
    assert bodies(page) == ["otter here, otter there", "the otter swims in the river"]
    assert page["next_cursor"] is None and page["archive_unavailable"] is False
    assert marked(page["hits"][0]) == ["otter", "otter"]
    assert page["hits"][0]["room"]["id"] == room and page["hits"][0]["source"] == "hot"


async def test_a_quoted_phrase_matches_only_the_phrase_and_minus_excludes(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    await alice.send(room, "the blue whale dives")
    await alice.send(room, "a whale that is blue")
    assert bodies(await search(alice, q='"blue whale"')) == ["the blue whale dives"]
    assert sorted(bodies(await search(alice, q="blue whale"))) == ["a whale that is blue", "the blue whale dives"]
    assert bodies(await search(alice, q="whale -dives")) == ["a whale that is blue"]
    assert sorted(bodies(await search(alice, q="dives or that"))) == ["a whale that is blue", "the blue whale dives"]


async def test_a_non_member_never_sees_a_private_room_or_dm_hit_even_naming_the_room(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice, bob, eve = await harness.user(node), await harness.user(node), await harness.user(node)
    private = await make_room(alice, bob, kind="private")
    public = await make_room(alice)
    _, dm = await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)
    await alice.connect()
    await alice.send(private, "secret pineapple plan")
    await alice.send(dm["room"]["id"], "pineapple between us")
    await alice.send(public, "pineapple for everyone")
    assert sorted(bodies(await search(bob, q="pineapple"))) == [
        "pineapple between us", "pineapple for everyone", "secret pineapple plan"]
    assert bodies(await search(eve, q="pineapple")) == ["pineapple for everyone"]
    for room_id in (private, dm["room"]["id"]):
        body = await search(eve, expect=404, q="pineapple", room_id=room_id)
        assert body["error"]["code"] == "not_found"
    assert bodies(await search(bob, q="pineapple", room_id=private)) == ["secret pineapple plan"]


async def test_a_user_who_left_a_private_room_no_longer_finds_its_messages(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice, bob = await harness.user(node), await harness.user(node)
    private = await make_room(alice, bob, kind="private")
    await alice.connect()
    await bob.connect()
    await alice.send(private, "the mango meeting")
    assert bodies(await search(bob, q="mango")) == ["the mango meeting"]
    ack = await bob.emit("room:leave", {"room_id": private})
    assert ack["ok"], ack
    assert bodies(await search(bob, q="mango")) == []
    await search(bob, expect=404, q="mango", room_id=private)


async def test_staff_find_whatsapp_conversations_and_users_do_not(harness: ServerHarness) -> None:
    node = await _node(harness)
    user, staff = await harness.user(node), await harness.user(node, role="staff")
    conn = await asyncpg.connect(harness.database_url)
    try:
        room = await conn.fetchval("INSERT INTO rooms (slug, name, kind, last_seq) VALUES ('wa-1', 'Contact', 'whatsapp', 1)"
                                   " RETURNING id")
        await conn.execute("INSERT INTO messages (room_id, seq, author_kind, author_name, body)"
                           " VALUES ($1, 1, 'contact', 'Contact', 'my parcel is lost')", room)
    finally:
        await conn.close()
    assert bodies(await search(staff, q="parcel")) == ["my parcel is lost"]
    assert bodies(await search(user, q="parcel")) == []
    await search(user, expect=404, q="parcel", room_id=room)


async def test_deleted_messages_are_never_found(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    gone = await alice.send(room, "walrus to forget")
    await alice.send(room, "walrus to keep")
    ack = await alice.emit("message:delete", {"id": gone["id"]})
    assert ack["ok"], ack
    assert bodies(await search(alice, q="walrus")) == ["walrus to keep"]
    assert bodies(await search(alice, q="forget")) == []


async def test_cafe_finds_cafe_with_its_accent_and_the_snippet_keeps_it(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    await alice.send(room, "Meet me at the Café Müller")
    page = await search(alice, q="cafe muller")
    assert bodies(page) == ["Meet me at the Café Müller"]
    assert page["hits"][0]["snippet"] == "Meet me at the Café Müller"
    assert marked(page["hits"][0]) == ["Café", "Müller"]
    assert bodies(await search(alice, q="CAFÉ")) == ["Meet me at the Café Müller"]


async def test_hostile_text_comes_back_as_plain_text_with_offsets(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    body = "<img src=x onerror=alert(1)> \ue000trap\ue001 trap"
    await alice.send(room, body)
    hit = (await search(alice, q="trap"))["hits"][0]
    # the marker characters a body carries are not matches; the markup is text, marked nowhere
    assert "<img src=x onerror=alert(1)>" in hit["snippet"] and "\ue000" not in hit["snippet"]
    assert marked(hit) == ["trap", "trap"]


async def test_pages_follow_the_cursor_without_duplicates_or_gaps(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    sent = set()
    for i in range(23):
        # three ranks (one, two, three matches), several messages on each: ties go by recency
        sent.add((await alice.send(room, " ".join(["heron"] * (1 + i % 3)) + f" number {i}"))["id"])
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = await search(alice, q="heron", limit=5, **({"cursor": cursor} if cursor else {}))
        seen += [h["message"]["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 23 and set(seen) == sent
    # best first: every three-match message before every two-match one, before the one-match ones
    counts = [h.count("heron") for h in [await _body(alice, room, i) for i in seen]]
    assert counts == sorted(counts, reverse=True)


async def _body(alice: Client, room: int, message_id: int) -> str:
    _, page = await alice.call("GET", f"/api/v1/rooms/{room}/messages?limit=100", expect=200)
    return next(m["body"] for m in page["messages"] if m["id"] == message_id)


async def test_author_and_time_filters_narrow_the_hits(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice, bob = await harness.user(node), await harness.user(node)
    room = await make_room(alice, bob)
    await alice.connect()
    await bob.connect()
    first = await alice.send(room, "lantern from alice")
    await bob.send(room, "lantern from bob")
    assert bodies(await search(alice, q="lantern", author=bob.id)) == ["lantern from bob"]
    assert bodies(await search(alice, q="lantern", before=first["created_at"])) == []
    assert sorted(bodies(await search(alice, q="lantern", **{"from": first["created_at"]}))) == [
        "lantern from alice", "lantern from bob"]


async def test_blank_overlong_and_malformed_searches_are_invalid(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    for params in ({"q": ""}, {"q": "   "}, {"q": "x" * 201}, {}, {"q": "a", "cursor": "nonsense"},
                   {"q": "a", "limit": "0"}, {"q": "a", "limit": "51"}, {"q": "a", "from": "yesterday"}):
        body = await search(alice, expect=400, **params)
        assert body["error"]["code"] == "invalid", params
    # operators and quotes are the query language, never an error
    for q in ('"unclosed', "or or or", "-", "a & b | !c", "'quote", "(((", "x" * 200):
        assert (await search(alice, q=q))["hits"] == []
    status, body = await alice.call("GET", "/api/v1/search?q=a", headers={"Authorization": "Bearer nope"})
    assert status == 401


async def test_search_language_english_stems_words(harness: ServerHarness) -> None:
    node = await _node(harness, search_language="english")
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    await alice.send(room, "she was running late")
    assert bodies(await search(alice, q="runs")) == ["she was running late"]


async def test_a_long_message_comes_back_as_fragments_around_its_matches(harness: ServerHarness) -> None:
    node = await _node(harness)
    alice = await harness.user(node)
    room = await make_room(alice)
    await alice.connect()
    body = "filler words here " * 30 + "the Crème brûlée arrives " + "more filler text " * 30
    await alice.send(room, body)
    hit = (await search(alice, q="creme"))["hits"][0]
    assert len(hit["snippet"]) < len(body) and hit["snippet"].startswith("…") and hit["snippet"].endswith("…")
    assert marked(hit) == ["Crème"] and "Crème brûlée" in hit["snippet"]
