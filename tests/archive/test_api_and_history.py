"""The staff query API, and room history continuing from PostgreSQL into the archive."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.archive.conftest import ArchiveEnv, RunningArchive, start_archive
from tests.support import Client, ServerHarness


async def _get(base: str, path: str, token: str | None, **params: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(base + path, params=params, headers=headers) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.text()


async def _archived_chat(harness: ServerHarness, archive_env: ArchiveEnv) -> tuple[Client, Client, int, RunningArchive]:
    archive = await start_archive(archive_env.config())
    harness.env.update({"KAFKA_BOOTSTRAP_SERVERS": archive_env.kafka.bootstrap, "HOT_RETENTION": "1s",
                        "RELAY_INTERVAL": "200ms", "ARCHIVE_URL": archive.base_url, "ARCHIVE_TOPIC": archive_env.topic, "RATE_LIMIT_MESSAGES_PER_10S": "1000"})
    node = await harness.start_node()
    # the relay in this node writes to the default topic; point the archive at the same one
    alice = await harness.user(node)
    staff = await harness.user(node, role="staff")
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "old times", "kind": "public"}, expect=201)
    room_id = body["room"]["id"]
    await alice.connect()
    for i in range(30):
        await alice.send(room_id, f"{'needle' if i % 10 == 3 else 'hay'} number {i}")
        if i % 15 == 14:
            await asyncio.sleep(1.1)  # the first half ages past HOT_RETENTION
    return alice, staff, room_id, archive


async def test_history_continues_into_the_archive_and_staff_can_query_it(harness: ServerHarness,
                                                                        archive_env: ArchiveEnv) -> None:
    alice, staff, room_id, archive = await _archived_chat(harness, archive_env)
    try:
        for _ in range(100):  # wait until the relay moved messages out of PostgreSQL
            _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
            if room["room"]["archived_upto_seq"] >= 15:
                break
            await asyncio.sleep(0.2)
        assert room["room"]["archived_upto_seq"] >= 15
        docs, _ = await archive_env.count()
        for _ in range(100):
            if docs >= room["room"]["archived_upto_seq"]:
                break
            await asyncio.sleep(0.2)
            docs, _ = await archive_env.count()
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


async def test_archive_api_requires_staff_tokens(harness: ServerHarness, archive_env: ArchiveEnv,
                                                 archive_app: RunningArchive) -> None:
    node = await harness.start_node()
    user = await harness.user(node)
    staff = await harness.user(node, role="staff")
    status, body = await _get(archive_app.base_url, "/archive/v1/rooms/1/messages", None)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = await _get(archive_app.base_url, "/archive/v1/rooms/1/messages", user.tokens["access_token"])
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await _get(archive_app.base_url, "/archive/v1/search", staff.tokens["access_token"], q="x")
    assert status == 400 and body["error"]["code"] == "invalid"
    async with aiohttp.ClientSession() as s:
        async with s.post(archive_app.base_url + "/archive/v1/retention/run",
                          headers={"Authorization": f"Bearer {staff.tokens['access_token']}"}) as r:
            assert r.status == 403
        async with s.get(archive_app.base_url + "/readyz") as r:
            assert r.status in (200, 503) and "mongo" in (await r.json())["checks"]
        async with s.get(archive_app.base_url + "/archive/v1/openapi.json") as r:
            assert "/archive/v1/search" in (await r.json())["paths"]
