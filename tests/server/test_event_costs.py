"""Costly requests cost more: socket events are charged by weight, room creation is limited per
user and hour, and the room list comes in capped pages."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg

from server.actions.rooms import ROOMS_PAGE_DEFAULT, ROOMS_PAGE_MAX
from tests.support import Client, ServerHarness, make_room


def _refused(acks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    refused = [a for a in acks if not a["ok"]]
    assert all(a["error"]["code"] == "rate_limited" and a["error"]["details"]["retry_after"] > 0 for a in refused), refused
    return refused


async def test_a_burst_of_syncs_is_refused_sooner_than_as_many_typing_events(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    room_id = await make_room(alice)
    budget = harness.config().limits.events_per_10s
    typer = Client(node.base_url, harness.http, alice.user, alice.tokens)
    syncer = Client(node.base_url, harness.http, alice.user, alice.tokens)
    harness.clients += [typer, syncer]
    await typer.connect()
    await syncer.connect()  # each connection has a budget of its own
    typing = await asyncio.gather(*(typer.emit("typing", {"room_id": room_id, "typing": i % 2 == 0})
                                    for i in range(budget)))
    assert _refused(typing) == []
    syncs = await asyncio.gather(*(syncer.emit("sync", {"cursors": {str(room_id): 0}}) for _ in range(budget)))
    assert len(_refused(syncs)) >= budget // 2
    assert syncer.sio is not None and syncer.sio.connected


async def test_a_sync_over_many_rooms_costs_more_but_never_more_than_the_budget(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    await alice.connect()
    # 200 rooms (most of them unknown: each still costs an access check)
    cursors = {str(10_000 + i): 0 for i in range(200)}
    acks = await asyncio.gather(*(alice.emit("sync", {"cursors": cursors}) for _ in range(4)))
    assert 1 <= sum(a["ok"] for a in acks) <= 2
    assert len(_refused(acks)) >= 2


async def test_the_room_creation_past_the_hourly_limit_is_rate_limited(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    per_hour = harness.config().limits.rooms_per_hour
    for i in range(per_hour):
        await alice.call("POST", "/api/v1/rooms", {"name": f"r{i}", "kind": "public"}, expect=201)
    status, body = await alice.call("POST", "/api/v1/rooms", {"name": "one too many", "kind": "private"})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    # the limit is per user
    await bob.call("POST", "/api/v1/rooms", {"name": "bob's", "kind": "public"}, expect=201)


async def test_the_room_list_pages_by_id_and_caps_the_page_size(harness: ServerHarness) -> None:
    limits = dataclasses.replace(harness.config().limits, rooms_per_hour=10_000)
    node = await harness.start_node(limits=limits)
    alice, bob = await harness.user(node), await harness.user(node)
    conn = await asyncpg.connect(harness.database_url)
    try:  # more public rooms than the largest page, made in one statement
        await conn.execute(
            "INSERT INTO rooms (slug, name, kind, created_by)"
            " SELECT 'bulk-' || g, 'bulk ' || g, 'public', $1 FROM generate_series(1, $2) g",
            alice.id, ROOMS_PAGE_MAX + 50)
    finally:
        await conn.close()
    private_id = await make_room(bob, kind="private", name="bob only")

    _, first = await alice.call("GET", "/api/v1/rooms", expect=200)
    assert len(first["rooms"]) == ROOMS_PAGE_DEFAULT and first["has_more"] is True
    assert first["next_cursor"] == first["rooms"][-1]["id"]
    _, capped = await alice.call("GET", f"/api/v1/rooms?limit={ROOMS_PAGE_MAX}", expect=200)
    assert len(capped["rooms"]) == ROOMS_PAGE_MAX and capped["has_more"] is True
    # past the cap the document's maximum holds: a clear invalid, not a silently shorter page
    status, body = await alice.call("GET", f"/api/v1/rooms?limit={ROOMS_PAGE_MAX + 1}")
    assert status == 400 and body["error"]["details"]["field"] == "limit"

    seen: list[int] = []
    cursor: int | None = None
    while True:
        path = "/api/v1/rooms?limit=70" + (f"&after_id={cursor}" if cursor is not None else "")
        _, page = await alice.call("GET", path, expect=200)
        assert len(page["rooms"]) <= 70
        seen += [r["id"] for r in page["rooms"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == sorted(set(seen)) and len(seen) == ROOMS_PAGE_MAX + 50
    assert private_id not in seen
    _, bobs = await bob.call("GET", f"/api/v1/rooms?after_id={private_id - 1}&limit=1", expect=200)
    assert [r["id"] for r in bobs["rooms"]] == [private_id]
    for bad in ("limit=0", "limit=x", "after_id=-1"):
        status, err = await alice.call("GET", f"/api/v1/rooms?{bad}")
        assert status == 400 and err["error"]["code"] == "invalid"
