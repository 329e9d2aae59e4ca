"""Accounts made by WhatsApp code login: their phone number stays in ``users.phone`` and nowhere a
user can read it (username, display name, search, member lists, message authors); the ``wa_``
handles are reserved; the login finds the account by phone whatever names others registered."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import orjson
import pytest

from server.storage.db import migrate
from tests.fakes.graph_api import GraphApiFake
from tests.support import PASSWORD, ChatNode, Client, ServerHarness, make_room

PN = "PN700"
HANDLE_RE = re.compile(r"^wa_[a-z]+$")


async def _node(harness: ServerHarness, graph: GraphApiFake) -> ChatNode:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 7777", "access_token": "EAAG-token",
        "app_secret": "app-secret-identity", "verify_token": "verify-identity"}, expect=201)
    return node


async def _code_login(harness: ServerHarness, graph: GraphApiFake, node: ChatNode, phone: str) -> tuple[int, Any]:
    sent_before = len(graph.sends())
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/request", json={"phone": phone}) as r:
        assert r.status == 202, await r.text()
    sends = await graph.wait_for_sends(sent_before + 1)
    code = sends[-1].json["template"]["components"][0]["parameters"][0]["text"]
    async with harness.http.post(node.base_url + "/api/v1/auth/otp/verify", json={"phone": phone, "code": code}) as r:
        return r.status, await r.json()


def _client(node: ChatNode, harness: ServerHarness, body: dict[str, Any]) -> Client:
    client = Client(node.base_url, harness.http, body["user"], body)
    harness.clients.append(client)
    return client


def _no_number(value: Any, digits: str) -> None:
    """No run of the number's digits long enough to identify it appears anywhere in ``value``."""
    text = orjson.dumps(value).decode()
    for i in range(len(digits) - 5):
        assert digits[i:i + 6] not in text, (digits[i:i + 6], text)


async def test_code_login_account_shows_its_phone_number_nowhere_users_can_read(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await _node(harness, graph)
    digits = "4917055501234"
    status, body = await _code_login(harness, graph, node, "+" + digits)
    assert status == 200, body
    wa_user = _client(node, harness, body)
    assert HANDLE_RE.match(wa_user.user["username"]) and "phone" not in wa_user.user
    _no_number(body["user"], digits)

    alice = await harness.user(node)
    for q in ("wa_", digits[:6], digits[-4:], "+49"):
        _, found = await alice.call("GET", f"/api/v1/users?q={q}", expect=200)
        _no_number(found, digits)
    _, found = await alice.call("GET", "/api/v1/users?q=wa_", expect=200)
    assert wa_user.id in [u["id"] for u in found["users"]]  # still findable, by its handle

    room_id = await make_room(alice, wa_user)
    _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    assert wa_user.id in [m["id"] for m in room["room"]["members"]]
    _no_number(room, digits)
    await wa_user.connect()
    await alice.connect()
    joined = await alice.emit("room:join", {"room_id": room_id})
    _no_number(joined, digits)
    sent = await wa_user.send(room_id, "hello from whatsapp")
    got = await alice.log.wait_for("message", lambda m: m["id"] == sent["id"])
    _no_number(got, digits)
    _, dm = await alice.call("POST", "/api/v1/dms", {"user_id": wa_user.id}, expect=201)
    _no_number(dm, digits)
    _, listed = await alice.call("GET", "/api/v1/rooms", expect=200)
    _no_number(listed, digits)


@pytest.mark.parametrize("username", ["wa_4917012345678", "WA_someone", "wa_abcdefghij"])
async def test_registering_a_wa_handle_is_refused(harness: ServerHarness, username: str) -> None:
    node = await harness.start_node()
    async with harness.http.post(node.base_url + "/api/v1/auth/register",
                                 json={"username": username, "password": PASSWORD}) as r:
        body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "invalid"
    assert "reserved" in body["error"]["message"] and body["error"]["details"]["field"] == "username"


async def test_code_login_finds_the_account_by_phone_when_someone_holds_the_old_style_name(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await _node(harness, graph)
    digits = "4917055509876"
    # a password account named after the number, as could be registered before the prefix was reserved
    conn = await asyncpg.connect(harness.database_url)
    try:
        squatter = await conn.fetchval(
            "INSERT INTO users (username, display_name, password_hash) VALUES ($1, $1, NULL) RETURNING id",
            f"wa_{digits}")
    finally:
        await conn.close()
    status, first = await _code_login(harness, graph, node, "+" + digits)
    assert status == 200, first
    assert first["user"]["id"] != squatter and HANDLE_RE.match(first["user"]["username"])
    status, again = await _code_login(harness, graph, node, "+49 (170) 5550-9876")
    assert status == 200 and again["user"]["id"] == first["user"]["id"]


async def test_schema_0007_renames_accounts_of_the_old_code_login_scheme(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await _node(harness, graph)
    digits = "4917055504321"
    old_display = f"+{digits[:-4]}****"
    password_name = f"wa_{uuid.uuid4().int % 10**12}"
    conn = await asyncpg.connect(harness.database_url)
    try:
        old_id = await conn.fetchval(
            "INSERT INTO users (username, display_name, phone) VALUES ($1, $2, $3) RETURNING id",
            f"wa_{digits}", old_display, "+" + digits)
        await conn.execute("INSERT INTO users (username, display_name, password_hash) VALUES ($1, $1, 'x')",
                           password_name)
    finally:
        await conn.close()
    # the old account is used as it was: a message and a direct room carry its display name
    status, body = await _code_login(harness, graph, node, "+" + digits)
    assert status == 200 and body["user"]["id"] == old_id
    old = _client(node, harness, body)
    alice = await harness.user(node)
    room_id = await make_room(alice, old)
    await old.connect()
    sent = await old.send(room_id, "before the rename")
    assert sent["author_name"] == old_display
    _, dm = await alice.call("POST", "/api/v1/dms", {"user_id": old_id}, expect=201)
    assert old_display in dm["room"]["name"]

    pool = await asyncpg.create_pool(harness.database_url, min_size=1, max_size=1)
    try:
        await pool.execute("DELETE FROM schema_migrations WHERE version = 7")
        assert await migrate(pool) == ["0007_code_login_handles.sql"]
        user = await pool.fetchrow("SELECT username, display_name, phone FROM users WHERE id = $1", old_id)
        assert HANDLE_RE.match(user["username"]) and user["phone"] == "+" + digits
        assert user["display_name"] == f"WhatsApp user {user['username'][3:7]}"
        assert await pool.fetchval("SELECT author_name FROM messages WHERE id = $1", sent["id"]) == user["display_name"]
        room_name = await pool.fetchval("SELECT name FROM rooms WHERE id = $1", dm["room"]["id"])
        assert old_display not in room_name and user["display_name"] in room_name
        # a password account keeps the name its owner logs in with
        assert await pool.fetchval("SELECT count(*) FROM users WHERE username = $1", password_name) == 1
    finally:
        await pool.close()
    # and the code login still finds the renamed account by its phone
    status, again = await _code_login(harness, graph, node, "+" + digits)
    assert status == 200 and again["user"]["id"] == old_id and again["user"]["username"] == user["username"]
