"""The archive under the same access rule as live history: private rooms and DMs for members
(or the audited compliance permission), WhatsApp rooms for staff, revocation on the next
request through chat-server, 503 when chat-server cannot be asked, and chat-server's service
token limited to the history route."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from pymongo import AsyncMongoClient

from chatcore.tokens import TokenIssuer
from server.relay.archive_client import service_token
from tests.archive.conftest import ArchiveEnv, ChatSide, RunningArchive, start_archive
from tests.services.base import free_port
from tests.support import Client, ServerHarness, make_room

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ("public", "private", "direct", "whatsapp")


@dataclass
class World:
    archive: RunningArchive
    chat: ChatSide
    alice: Client
    bob: Client
    rooms: dict[str, int]  # kind -> room id

    @property
    def url(self) -> str:
        return self.archive.base_url


async def _whatsapp_room(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("INSERT INTO rooms (slug, name, kind) VALUES ($1, 'contact', 'whatsapp') RETURNING id",
                                       f"wa-{uuid.uuid4().hex[:8]}"))
    finally:
        await conn.close()


@pytest.fixture
async def world(harness: ServerHarness, archive_env: ArchiveEnv, chat: ChatSide) -> AsyncIterator[World]:
    """Alice's archived messages in a public room, a private room and a DM (both with Bob), and a
    WhatsApp conversation; staff and admin are in none of them."""
    alice, bob = await harness.user(chat.node), await harness.user(chat.node)
    _, dm = await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)
    rooms = {"public": await make_room(alice, name="lobby"), "private": await make_room(alice, bob, kind="private"),
             "direct": int(dm["room"]["id"]), "whatsapp": await _whatsapp_room(harness.database_url)}
    docs = [{"_id": 1000 * room + seq, "room_id": room, "seq": seq, "author_id": alice.id, "author_kind": "user",
             "author_name": "alice", "body": f"{kind} needle {seq}", "client_id": None, "reply_to": None, "meta": {},
             "created_at": T0 + timedelta(minutes=10 * i + seq), "edited_at": None, "deleted_at": None}
            for i, (kind, room) in enumerate(rooms.items()) for seq in (1, 2, 3)]
    client: AsyncMongoClient = AsyncMongoClient(archive_env.ferret.url, serverSelectionTimeoutMS=5000)
    try:
        await client[archive_env.db]["messages"].insert_many(docs)
    finally:
        await client.close()
    archive = await start_archive(archive_env.config(chat_server_url=chat.url))
    yield World(archive, chat, alice, bob, rooms)
    await archive.runner.cleanup()


async def _get(url: str, token: str | None, **params: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s, \
            s.get(url, params=params, headers=headers) as r:
        raw = await r.read()
        if r.content_type == "application/json":
            return r.status, orjson.loads(raw)
        return r.status, raw


async def _reads(w: World, token: str, room_id: int) -> dict[str, int]:
    """The status of every room-scoped read of ``room_id``: messages, history, search, export."""
    base = f"{w.url}/archive/v1"
    return {
        "messages": (await _get(f"{base}/rooms/{room_id}/messages", token))[0],
        "history": (await _get(f"{base}/rooms/{room_id}/history", token, before_seq=4))[0],
        "search": (await _get(f"{base}/search", token, q="needle", room_id=room_id))[0],
        "export": (await _get(f"{base}/rooms/{room_id}/export", token))[0],
    }


def _all(status: int) -> dict[str, int]:
    return dict.fromkeys(("messages", "history", "search", "export"), status)


async def _rooms_seen(w: World, token: str, route: str) -> set[int]:
    """The rooms of the messages a user-scoped list or a user search shows of Alice's."""
    if route == "user":
        status, body = await _get(f"{w.url}/archive/v1/users/{w.alice.id}/messages", token, limit=200)
    else:
        status, body = await _get(f"{w.url}/archive/v1/search", token, q="NEEDLE", user_id=w.alice.id, limit=200)
    assert status == 200, body
    return {m["room_id"] for m in body["messages"]}


async def test_staff_cannot_read_search_or_export_archived_private_rooms_and_dms_they_are_not_in(world: World) -> None:
    staff = world.chat.staff.tokens["access_token"]
    for kind in ("private", "direct"):
        assert await _reads(world, staff, world.rooms[kind]) == _all(404), kind
    assert await _reads(world, staff, world.rooms["public"]) == _all(200)
    assert await _reads(world, staff, world.rooms["whatsapp"]) == _all(200)
    _, body = await _get(f"{world.url}/archive/v1/rooms/{world.rooms['private']}/messages", staff)
    assert body["error"]["code"] == "not_found"
    # lists by user and user searches leave the rooms out instead of failing
    for route in ("user", "search"):
        assert await _rooms_seen(world, staff, route) == {world.rooms["public"], world.rooms["whatsapp"]}


async def test_members_read_their_private_rooms_and_dms_and_users_never_whatsapp_rooms(world: World) -> None:
    for member in (world.alice, world.bob):
        token = member.tokens["access_token"]
        for kind in ("public", "private", "direct"):
            assert await _reads(world, token, world.rooms[kind]) == _all(200), (member.id, kind)
        assert await _reads(world, token, world.rooms["whatsapp"]) == _all(404)
    _, body = await _get(f"{world.url}/archive/v1/rooms/{world.rooms['direct']}/messages", world.bob.tokens["access_token"])
    assert [m["body"] for m in body["messages"]] == ["direct needle 1", "direct needle 2", "direct needle 3"]
    for route in ("user", "search"):
        assert await _rooms_seen(world, world.bob.tokens["access_token"], route) == {
            world.rooms["public"], world.rooms["private"], world.rooms["direct"]}


async def _compliance_reads(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT actor_id, target_id, meta::text AS meta FROM audit_log"
                                " WHERE action = 'compliance.read' ORDER BY id")
        return [{"actor_id": r["actor_id"], "target_id": r["target_id"], **json.loads(r["meta"])} for r in rows]
    finally:
        await conn.close()


async def test_staff_with_compliance_read_private_rooms_and_dms_and_every_request_is_audited(
        world: World, harness: ServerHarness) -> None:
    chat, staff = world.chat, world.chat.staff
    await chat.admin.call("PUT", f"/api/v1/users/{staff.id}/compliance", {"enabled": True}, expect=200)
    token = staff.tokens["access_token"]  # granting bumps nothing: the same token
    private, dm = world.rooms["private"], world.rooms["direct"]
    assert await _reads(world, token, private) == _all(200)
    assert await _reads(world, token, dm) == _all(200)
    reads = await _compliance_reads(harness.database_url)
    assert [(r["actor_id"], r["target_id"], r["via"]) for r in reads] == [(staff.id, private, "archive")] * 4 + [
        (staff.id, dm, "archive")] * 4  # one row per request
    assert await _rooms_seen(world, token, "user") == set(world.rooms.values())
    last = (await _compliance_reads(harness.database_url))[-1]
    assert (last["target_id"], sorted(last["room_ids"])) == (None, sorted([private, dm]))
    # public and WhatsApp reads are not compliance reads
    before = len(await _compliance_reads(harness.database_url))
    await _reads(world, token, world.rooms["public"])
    assert len(await _compliance_reads(harness.database_url)) == before

    # revoked: the next request is refused
    await chat.admin.call("PUT", f"/api/v1/users/{staff.id}/compliance", {"enabled": False}, expect=200)
    assert await _reads(world, token, private) == _all(404)


async def test_a_token_revoked_by_logout_all_is_refused_by_the_archive_on_the_next_request(world: World) -> None:
    for client in (world.chat.staff, world.bob):
        token = client.tokens["access_token"]
        assert (await _get(f"{world.url}/archive/v1/rooms/{world.rooms['public']}/messages", token))[0] == 200
        await client.call("POST", "/api/v1/auth/logout-all", expect=204)
        for path, params in ((f"/rooms/{world.rooms['public']}/messages", {}), (f"/users/{world.alice.id}/messages", {}),
                             ("/search", {"q": "needle", "user_id": world.alice.id}),
                             (f"/rooms/{world.rooms['public']}/export", {}),
                             (f"/rooms/{world.rooms['public']}/history", {"before_seq": 4})):
            status, body = await _get(f"{world.url}/archive/v1{path}", token, **params)
            assert status == 401 and body["error"]["code"] == "unauthorized", (client.id, path)


async def test_a_demoted_staff_user_loses_whatsapp_rooms_in_the_archive_at_once(world: World) -> None:
    staff, admin = world.chat.staff, world.chat.admin
    old = staff.tokens["access_token"]
    whatsapp = world.rooms["whatsapp"]
    assert await _reads(world, old, whatsapp) == _all(200)
    await admin.call("PATCH", f"/api/v1/admin/users/{staff.id}", {"role": "user"}, expect=200)
    # the old token still says "staff" and has not expired: chat-server's answer decides
    status, body = await _get(f"{world.url}/archive/v1/rooms/{whatsapp}/messages", old)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    async with staff.http.post(staff.base_url + "/api/v1/auth/login",
                               json={"username": staff.user["username"], "password": "correct horse battery"}) as r:
        fresh = (await r.json())["access_token"]
    assert await _reads(world, fresh, whatsapp) == _all(404)
    assert await _rooms_seen(world, fresh, "user") == {world.rooms["public"]}


async def test_the_archive_answers_503_when_chat_server_cannot_be_asked(world: World, harness: ServerHarness,
                                                                       archive_env: ArchiveEnv) -> None:
    token = world.chat.staff.tokens["access_token"]
    # several nodes may be named: one that is away is skipped
    two = await start_archive(archive_env.config(chat_server_url=f"http://127.0.0.1:{free_port()},{world.chat.url}"))
    try:
        assert (await _get(f"{two.base_url}/archive/v1/rooms/{world.rooms['public']}/messages", token))[0] == 200
    finally:
        await two.runner.cleanup()
    await harness.stop_node(world.chat.node)
    for path, params in ((f"/rooms/{world.rooms['public']}/messages", {}), (f"/users/{world.alice.id}/messages", {}),
                         ("/search", {"q": "needle", "room_id": world.rooms["public"]}),
                         (f"/rooms/{world.rooms['public']}/export", {})):
        status, body = await _get(f"{world.url}/archive/v1{path}", token, **params)
        assert status == 503 and body["error"]["code"] == "unavailable", path
    # a forged token is still refused locally, without asking anyone
    status, _ = await _get(f"{world.url}/archive/v1/rooms/{world.rooms['public']}/messages", token[:-4] + "AAAA")
    assert status == 401


async def test_chat_servers_service_token_reads_history_only(world: World, key_dir: Path) -> None:
    token = service_token(TokenIssuer((key_dir / "jwt.pem").read_bytes()))
    status, body = await _get(f"{world.url}/archive/v1/rooms/{world.rooms['direct']}/history", token, before_seq=4)
    assert status == 200 and [m["seq"] for m in body["messages"]] == [1, 2, 3]
    for path, params in ((f"/rooms/{world.rooms['direct']}/messages", {}), (f"/users/{world.alice.id}/messages", {}),
                         ("/search", {"q": "needle", "room_id": world.rooms["direct"]}),
                         (f"/rooms/{world.rooms['direct']}/export", {})):
        status, body = await _get(f"{world.url}/archive/v1{path}", token, **params)
        assert status == 403 and body["error"]["code"] == "forbidden", path
    async with aiohttp.ClientSession() as s, s.post(f"{world.url}/archive/v1/retention/run",
                                                    headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 403


async def _archive_audit(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT actor_id, action, target_type, target_id, meta::text AS meta FROM audit_log"
                                " WHERE action LIKE 'archive.%' ORDER BY id")
        return [{"actor_id": r["actor_id"], "action": r["action"], "target_type": r["target_type"],
                 "target_id": r["target_id"], **json.loads(r["meta"])} for r in rows]
    finally:
        await conn.close()


async def test_each_staff_archive_query_search_and_export_leaves_one_audit_row_and_users_reads_none(
        world: World, harness: ServerHarness) -> None:
    staff, admin, wa = world.chat.staff, world.chat.admin, world.rooms["whatsapp"]
    base = f"{world.url}/archive/v1"
    # a member reading their own rooms is no staff action: nothing is written
    assert await _reads(world, world.alice.tokens["access_token"], world.rooms["public"]) == _all(200)
    assert await _archive_audit(harness.database_url) == []

    token = staff.tokens["access_token"]
    assert (await _get(f"{base}/rooms/{wa}/messages", token, limit=5))[0] == 200
    assert (await _get(f"{base}/search", token, q="needle", room_id=wa))[0] == 200
    assert (await _get(f"{base}/rooms/{wa}/export", token))[0] == 200
    assert (await _get(f"{base}/users/{world.alice.id}/messages", token))[0] == 200
    rows = await _archive_audit(harness.database_url)
    assert [(r["actor_id"], r["action"], r["target_type"], r["target_id"]) for r in rows] == [
        (staff.id, "archive.query", "room", wa), (staff.id, "archive.search", "room", wa),
        (staff.id, "archive.export", "room", wa), (staff.id, "archive.query", "room", None)]
    assert rows[0]["params"] == {"path": f"/archive/v1/rooms/{wa}/messages", "limit": "5"}
    assert rows[1]["params"]["q"] == "needle"
    assert all(r["ip"] == "127.0.0.1" and r["via"] == "archive" for r in rows)
    # the user-scoped list reads every room of Alice's that staff may read: public and WhatsApp
    assert (rows[3]["rooms"], sorted(rows[3]["room_ids"])) == (2, sorted([world.rooms["public"], wa]))

    # the archive's admin route: a refused staff request leaves no row, an admin's leaves one
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s:
        for client, status in ((staff, 403), (admin, 409)):  # 409: this archive keeps everything
            async with s.post(f"{base}/retention/run",
                              headers={"Authorization": f"Bearer {client.tokens['access_token']}"}) as r:
                assert r.status == status
    rows = await _archive_audit(harness.database_url)
    assert [(r["actor_id"], r["action"]) for r in rows[4:]] == [(admin.id, "archive.retention")]
