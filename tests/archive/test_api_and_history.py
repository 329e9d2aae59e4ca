"""The staff query API, and room history continuing from PostgreSQL into the archive."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.archive.conftest import ArchiveEnv, ChatSide, RunningArchive, start_archive
from tests.support import ChatNode, Client, ServerHarness


async def _get(base: str, path: str, token: str | None, **params: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(base + path, params=params, headers=headers) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.text()


async def _wait_archived(alice: Client, room_id: int, upto: int, archive_env: ArchiveEnv | None) -> None:
    """Until the relay moved seqs 1..upto out of PostgreSQL and (given archive_env) the archive stored them."""
    for _ in range(150):
        _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
        if room["room"]["archived_upto_seq"] >= upto and (archive_env is None or (await archive_env.count())[0] >= upto):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"seqs 1..{upto} were not archived: {room['room']}")


async def _relaying_node(harness: ServerHarness, archive_env: ArchiveEnv, archive: RunningArchive,
                         room_name: str) -> tuple[ChatNode, Client, int]:
    """A node whose relay moves messages older than a second, and a connected user in a new room."""
    harness.env.update({"KAFKA_BOOTSTRAP_SERVERS": archive_env.kafka.bootstrap, "HOT_RETENTION": "1s",
                        "RELAY_INTERVAL": "200ms", "ARCHIVE_URL": archive.base_url, "ARCHIVE_TOPIC": archive_env.topic,
                        "RATE_LIMIT_MESSAGES_PER_10S": "1000"})
    node = await harness.start_node()
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": room_name, "kind": "public"}, expect=201)
    await alice.connect()
    return node, alice, body["room"]["id"]


async def _archived_chat(harness: ServerHarness, archive_env: ArchiveEnv) -> tuple[Client, Client, int, RunningArchive]:
    """Thirty messages in a room: seqs 1-15 moved to the archive, 16-30 still in PostgreSQL."""
    # chat-archive asks this node about access; the relaying nodes below come and go
    asked = await harness.start_node()
    archive = await start_archive(archive_env.config(chat_server_url=asked.base_url))
    node, alice, room_id = await _relaying_node(harness, archive_env, archive, "old times")
    staff = await harness.user(node, role="staff")
    for i in range(15):
        await alice.send(room_id, f"{'needle' if i % 10 == 3 else 'hay'} number {i}")
    await _wait_archived(alice, room_id, 15, archive_env)
    # the second half stays hot: the next node keeps messages for an hour
    await alice.disconnect()
    await harness.stop_node(node)
    node = await harness.start_node(hot_retention_s=3600.0)
    alice.base_url = staff.base_url = node.base_url
    await alice.connect()
    for i in range(15, 30):
        await alice.send(room_id, f"{'needle' if i % 10 == 3 else 'hay'} number {i}")
    return alice, staff, room_id, archive


async def test_history_continues_into_the_archive_and_staff_can_query_it(harness: ServerHarness,
                                                                        archive_env: ArchiveEnv) -> None:
    alice, staff, room_id, archive = await _archived_chat(harness, archive_env)
    try:
        _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
        assert room["room"]["archived_upto_seq"] == 15
        # room history pages all the way back: hot store first, then the archive, same shape
        seqs: list[int] = []
        before = None
        while True:
            q = f"?limit=7{'' if before is None else f'&before_seq={before}'}"
            _, page = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages{q}", expect=200)
            seqs = [m["seq"] for m in page["messages"]] + seqs
            if not page["has_more"]:
                break
            before = page["messages"][0]["seq"]
        assert seqs == list(range(1, 31))
        token = staff.tokens["access_token"]
        # staff queries: by room with paging, by user, text search, export
        status, body = await _get(archive.base_url, f"/archive/v1/rooms/{room_id}/messages", token, limit=5)
        assert status == 200 and [m["seq"] for m in body["messages"]] == [1, 2, 3, 4, 5] and body["next_cursor"]
        status, nxt = await _get(archive.base_url, f"/archive/v1/rooms/{room_id}/messages", token, limit=5,
                                 cursor=body["next_cursor"])
        assert [m["seq"] for m in nxt["messages"]] == [6, 7, 8, 9, 10]
        status, found = await _get(archive.base_url, "/archive/v1/search", token, q="NEEDLE", room_id=room_id)
        assert status == 200 and [m["body"] for m in found["messages"]][:1] == ["needle number 3"]
        status, mine = await _get(archive.base_url, f"/archive/v1/users/{alice.id}/messages", token, limit=100)
        assert status == 200 and len(mine["messages"]) >= 15
        status, export = await _get(archive.base_url, f"/archive/v1/rooms/{room_id}/export", token)
        assert status == 200 and len(export.strip().splitlines()) >= 15
        status, regex = await _get(archive.base_url, "/archive/v1/search", token, q=".*", room_id=room_id)
        assert status == 200 and regex["messages"] == []  # the query is text, not a pattern
    finally:
        await archive.runner.cleanup()


async def test_history_waits_for_messages_still_on_their_way_to_the_archive(harness: ServerHarness,
                                                                          archive_env: ArchiveEnv) -> None:
    """Moved out of PostgreSQL but not yet stored by chat-archive: history says so and skips nothing."""
    lagging = await start_archive(archive_env.config(topic=f"{archive_env.topic}-elsewhere",  # consumes nothing
                                                   group_id=f"{archive_env.group}-elsewhere"))
    _, alice, room_id = await _relaying_node(harness, archive_env, lagging, "in transit")
    for i in range(10):
        await alice.send(room_id, f"message {i}")
    await _wait_archived(alice, room_id, 10, None)
    catching_up: RunningArchive | None = None
    try:
        _, page = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages?limit=5", expect=200)
        assert page == {"messages": [], "has_more": True, "archive_pending": True}
        ack = await alice.emit("history", {"room_id": room_id, "limit": 5})
        assert ack["ok"] and ack["messages"] == [] and ack["has_more"] and ack["archive_pending"]
        # chat-archive catches up (its consumer reads the topic the relay wrote); history is whole
        catching_up = await start_archive(archive_env.config())
        await _wait_archived(alice, room_id, 10, archive_env)
        _, page = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages?limit=5", expect=200)
        assert [m["seq"] for m in page["messages"]] == [6, 7, 8, 9, 10] and page["has_more"]
        assert "archive_pending" not in page
    finally:
        await lagging.runner.cleanup()
        if catching_up is not None:
            await catching_up.runner.cleanup()


async def test_archive_api_needs_a_token_and_answers_404_for_rooms_it_cannot_show(
        harness: ServerHarness, archive_env: ArchiveEnv, chat: ChatSide) -> None:
    archive = await start_archive(archive_env.config(chat_server_url=chat.url))
    try:
        user = await harness.user(chat.node)
        status, body = await _get(archive.base_url, "/archive/v1/rooms/1/messages", None)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        status, body = await _get(archive.base_url, "/archive/v1/rooms/1/messages", user.tokens["access_token"])
        assert status == 404 and body["error"]["code"] == "not_found"  # no such room: same answer as a hidden one
        # neither room_id nor user_id: the caller's own messages (none here)
        status, body = await _get(archive.base_url, "/archive/v1/search", chat.staff.tokens["access_token"], q="x")
        assert status == 200 and body["messages"] == []
        async with aiohttp.ClientSession() as s:
            async with s.post(archive.base_url + "/archive/v1/retention/run", headers=chat.staff.auth) as r:
                assert r.status == 403
            async with s.get(archive.base_url + "/readyz") as r:
                assert r.status in (200, 503) and "mongo" in (await r.json())["checks"]
            async with s.get(archive.base_url + "/archive/v1/openapi.json") as r:
                assert "/archive/v1/search" in (await r.json())["paths"]
    finally:
        await archive.runner.cleanup()
