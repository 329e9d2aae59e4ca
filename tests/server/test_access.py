"""The shared access rule, the audited compliance permission on live history, chat-server's
access question for chat-archive, and the service token chat-server refuses as a user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
import socketio

from chatcore.access import Principal, RoomFacts, can_read_room, can_write_room, reads_through_compliance
from chatcore.tokens import TokenIssuer
from server.__main__ import _compliance
from server.relay.archive_client import service_token
from tests.support import Client, ServerHarness, make_room

# (role, compliance, kind, member) -> may read
RULE_TABLE: list[tuple[str, bool, str, bool, bool]] = [
    (role, compliance, kind, member, allowed)
    for role in ("user", "staff", "admin")
    for compliance in (False, True)
    for kind, member, allowed in [
        ("public", False, True), ("public", True, True),
        ("private", True, True), ("private", False, compliance),
        ("direct", True, True), ("direct", False, compliance),
        ("whatsapp", False, role != "user"), ("whatsapp", True, role != "user"),
        ("unknown-kind", False, False), ("unknown-kind", True, True),
    ]
]


@pytest.mark.parametrize(("role", "compliance", "kind", "member", "allowed"), RULE_TABLE)
def test_the_shared_rule_decides_reads_by_role_compliance_kind_and_membership(
        role: str, compliance: bool, kind: str, member: bool, allowed: bool) -> None:
    principal, room = Principal(7, role, compliance), RoomFacts(1, kind, member)
    assert can_read_room(principal, room) is allowed
    # only a private room or DM read by a non-member is a read through compliance (and audited)
    assert reads_through_compliance(principal, room) is (allowed and not member and kind in ("private", "direct"))
    assert can_write_room(principal, room) is (role != "user" if kind == "whatsapp" else member)


def test_a_service_identity_reads_nothing_by_the_rule() -> None:
    for kind in ("private", "direct", "whatsapp"):
        assert not can_read_room(Principal(0, "service"), RoomFacts(1, kind, False))


async def _audit(harness: ServerHarness, action: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(harness.database_url)
    try:
        await conn.set_type_codec("jsonb", encoder=str, decoder=__import__("json").loads, schema="pg_catalog")
        rows = await conn.fetch("SELECT actor_id, action, target_type, target_id, meta FROM audit_log"
                                " WHERE action = $1 ORDER BY id", action)
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def _grant(admin: Client, target: Client, enabled: bool) -> dict[str, Any]:
    _, body = await admin.call("PUT", f"/api/v1/users/{target.id}/compliance", {"enabled": enabled}, expect=200)
    return dict(body["user"])


async def test_compliance_lets_a_non_member_read_private_and_dm_history_over_rest_and_socket_audited_each_time(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    staff, admin = await harness.user(node, role="staff"), await harness.user(node, role="admin")
    private = await make_room(alice, bob, name="board", kind="private")
    _, dm = await alice.call("POST", "/api/v1/dms", {"user_id": bob.id}, expect=201)
    dm_id = dm["room"]["id"]
    await alice.connect()
    said = [await alice.send(private, "quarterly numbers"), await alice.send(dm_id, "just us")]
    await staff.connect()  # before the grant: the socket's cached user has no permission

    # without the permission staff see neither room, over REST or the socket
    for room_id in (private, dm_id):
        status, err = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages")
        assert status == 404 and err["error"]["code"] == "not_found"
        ack = await staff.emit("history", {"room_id": room_id})
        assert not ack["ok"] and ack["error"]["code"] == "not_found"

    assert (await _grant(admin, staff, True))["compliance"] is True
    grants = await _audit(harness, "compliance.grant")
    assert [(g["actor_id"], g["target_type"], g["target_id"], g["meta"]["via"]) for g in grants] == [
        (admin.id, "user", staff.id, "api")]

    _, page = await staff.call("GET", f"/api/v1/rooms/{private}/messages", expect=200)
    assert [m["id"] for m in page["messages"]] == [said[0]["id"]]
    ack = await staff.emit("history", {"room_id": dm_id})
    assert ack["ok"] and [m["id"] for m in ack["messages"]] == [said[1]["id"]]
    reads = await _audit(harness, "compliance.read")
    assert [(r["actor_id"], r["target_id"], r["meta"]["via"]) for r in reads] == [
        (staff.id, private, "history"), (staff.id, dm_id, "history")]

    # members' own reads are not compliance reads; the permission neither joins nor writes
    await alice.call("GET", f"/api/v1/rooms/{private}/messages", expect=200)
    assert len(await _audit(harness, "compliance.read")) == 2
    ack = await staff.emit("room:join", {"room_id": private})
    assert not ack["ok"] and ack["error"]["code"] == "not_found"
    ack = await staff.emit("message:send", {"room_id": private, "body": "hello", "client_id": "c1"})
    assert not ack["ok"]
    status, _ = await staff.call("GET", f"/api/v1/rooms/{private}")
    assert status == 404

    # revoked: the next request on either transport is refused, the socket unchanged
    assert (await _grant(admin, staff, False))["compliance"] is False
    status, _ = await staff.call("GET", f"/api/v1/rooms/{private}/messages")
    assert status == 404
    ack = await staff.emit("history", {"room_id": dm_id})
    assert not ack["ok"] and ack["error"]["code"] == "not_found"
    revokes = await _audit(harness, "compliance.revoke")
    assert [(r["actor_id"], r["target_id"], r["meta"]["was"]) for r in revokes] == [(admin.id, staff.id, True)]
    assert len(await _audit(harness, "compliance.read")) == 2


async def test_only_admins_grant_compliance_and_bad_requests_get_clear_errors(harness: ServerHarness) -> None:
    node = await harness.start_node()
    user, staff, admin = await harness.user(node), await harness.user(node, role="staff"), await harness.user(node, role="admin")
    for caller in (user, staff):
        status, err = await caller.call("PUT", f"/api/v1/users/{user.id}/compliance", {"enabled": True})
        assert status == 403 and err["error"]["code"] == "forbidden"
    status, err = await admin.call("PUT", f"/api/v1/users/{user.id}/compliance", {"enabled": "yes"})
    assert status == 400 and err["error"]["details"]["field"] == "enabled"
    status, err = await admin.call("PUT", "/api/v1/users/987654/compliance", {"enabled": True})
    assert status == 404 and err["error"]["code"] == "not_found"
    assert await _audit(harness, "compliance.grant") == []


async def test_set_compliance_command_grants_and_revokes_with_an_audit_row(harness: ServerHarness) -> None:
    node = await harness.start_node()
    staff = await harness.user(node, role="staff")
    config = harness.config()
    name = staff.user["username"]
    assert await _compliance(config, name, True) == f"{name}: compliance granted"
    assert await _compliance(config, name, False) == f"{name}: compliance revoked"
    assert await _compliance(config, "nobody_here", True) == "no user named 'nobody_here'"
    rows = await _audit(harness, "compliance.grant") + await _audit(harness, "compliance.revoke")
    assert [(r["actor_id"], r["target_id"], r["meta"]["via"]) for r in rows] == [(None, staff.id, "cli")] * 2


async def test_access_question_answers_current_standing_and_only_rooms_the_caller_may_read(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob, staff = await harness.user(node), await harness.user(node), await harness.user(node, role="staff")
    public = await make_room(bob, name="lobby")
    private = await make_room(bob, name="hidden", kind="private")
    mine = await make_room(bob, alice, name="ours", kind="private")
    asked = {"room_ids": [public, private, mine, 987654]}
    _, body = await alice.call("POST", "/api/v1/access/rooms", asked, expect=200)
    assert body == {"user": {"id": alice.id, "role": "user", "compliance": False},
                    "rooms": [{"id": public, "kind": "public", "member": False},
                              {"id": mine, "kind": "private", "member": True}]}
    status, err = await alice.call("POST", "/api/v1/access/rooms", {"room_ids": list(range(1, 1002))})
    assert status == 400 and err["error"]["details"]["field"] == "room_ids"
    status, _ = await alice.call("POST", "/api/v1/access/rooms", {"room_ids": [True]})
    assert status == 400

    # a question answered through the permission is audited once, for all the rooms it covers
    admin = await harness.user(node, role="admin")
    await _grant(admin, staff, True)
    _, body = await staff.call("POST", "/api/v1/access/rooms", asked, expect=200)
    assert [r["id"] for r in body["rooms"]] == [public, private, mine] and body["user"]["compliance"] is True
    reads = await _audit(harness, "compliance.read")
    assert [(r["actor_id"], r["target_id"], r["meta"]) for r in reads] == [
        (staff.id, None, {"via": "archive", "room_ids": [private, mine]})]

    # logout-all bumps the token version: the same unexpired token is refused at once
    await alice.call("POST", "/api/v1/auth/logout-all", expect=204)
    status, err = await alice.call("POST", "/api/v1/access/rooms", asked)
    assert status == 401 and err["error"]["code"] == "unauthorized"


async def test_chat_servers_service_token_is_refused_as_a_user(harness: ServerHarness, key_dir: Path) -> None:
    node = await harness.start_node()
    token = service_token(TokenIssuer((key_dir / "jwt.pem").read_bytes()))
    async with harness.http.get(node.base_url + "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401
    async with harness.http.post(node.base_url + "/api/v1/access/rooms", json={"room_ids": [1]},
                                 headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(node.base_url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
    await sio.disconnect()
