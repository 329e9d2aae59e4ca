"""The audit log: every staff or admin action that changes access or data leaves exactly one row
(who, what, target, the client address), written with the change; a refused action leaves
none; admins list it filtered and paged, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ServerHarness, make_room

PN, SECRET = "PN600", "app-secret-audit"
ACCOUNT = {"phone_number_id": PN, "display_phone": "+1 555 000 6666", "access_token": "EAAG-token",
           "app_secret": SECRET, "verify_token": "v"}


class AuditRows:
    """The rows written since the last look, read straight from PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url, self.seen = url, 0

    async def new(self) -> list[dict[str, Any]]:
        conn = await asyncpg.connect(self.url)
        try:
            rows = await conn.fetch("SELECT id, actor_id, action, target_type, target_id, meta FROM audit_log "
                                    "WHERE id > $1 ORDER BY id", self.seen)
        finally:
            await conn.close()
        if rows:
            self.seen = rows[-1]["id"]
        return [{**dict(r), "meta": json.loads(r["meta"])} for r in rows]


async def test_every_audited_action_leaves_exactly_one_row_and_a_refused_one_none(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin, staff = await harness.user(node, role="admin"), await harness.user(node, role="staff")
    sup, user = await harness.user(node, role="supervisor"), await harness.user(node)
    rows = AuditRows(harness.database_url)
    await rows.new()

    async def one(actor: Any, method: str, path: str, body: Any, action: str, target: tuple[str, int | None]) -> None:
        status, answer = await actor.call(method, path, body)
        assert status < 300, (path, status, answer)
        new = await rows.new()
        assert [(r["action"], r["actor_id"], r["target_type"], r["target_id"]) for r in new] == [
            (action, actor.id, *target)], (path, new)
        assert new[0]["meta"]["ip"] == "127.0.0.1"
        assert not {"access_token", "app_secret", "verify_token"} & set(new[0]["meta"])  # no secrets in the log

    async def refused(actor: Any, method: str, path: str, body: Any) -> None:
        status, _ = await actor.call(method, path, body)
        assert status >= 400
        assert await rows.new() == []

    _, created = await admin.call("POST", "/api/v1/admin/wa/accounts", ACCOUNT, expect=201)
    account_id = created["account"]["id"]
    [row] = await rows.new()
    assert (row["action"], row["target_id"], row["meta"]["phone_number_id"]) == ("wa_account.add", account_id, PN)
    await refused(admin, "POST", "/api/v1/admin/wa/accounts", ACCOUNT)  # 409: taken

    await one(admin, "PATCH", f"/api/v1/admin/users/{user.id}", {"role": "staff"}, "user.role", ("user", user.id))
    await one(admin, "PUT", f"/api/v1/users/{user.id}/compliance", {"enabled": True}, "compliance.grant", ("user", user.id))
    await one(admin, "PUT", f"/api/v1/users/{user.id}/compliance", {"enabled": False}, "compliance.revoke", ("user", user.id))
    await one(admin, "POST", f"/api/v1/admin/users/{user.id}/deactivate", None, "user.deactivate", ("user", user.id))
    await one(admin, "POST", f"/api/v1/admin/users/{user.id}/reactivate", None, "user.reactivate", ("user", user.id))
    await one(admin, "POST", f"/api/v1/admin/users/{user.id}/force-password-reset", None, "user.force_password_reset",
              ("user", user.id))
    await refused(sup, "PATCH", f"/api/v1/admin/users/{staff.id}", {"role": "admin"})

    await staff.connect()
    raw, headers = signed_post(SECRET, make_text_webhook(PN, "4917066600001", "Ann", "wamid.AU1", "hi"))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200
    room = (await staff.log.wait_for("conversation:updated", timeout=10))["room_id"]
    conv = f"/api/v1/wa/conversations/{room}"
    assert await rows.new() == []  # a contact writing is not a staff action
    await one(staff, "POST", f"{conv}/takeover", None, "conversation.takeover", ("conversation", room))
    await one(staff, "POST", f"{conv}/handback", None, "conversation.handback", ("conversation", room))
    await one(sup, "POST", f"{conv}/assign", {"user_id": staff.id}, "conversation.assign", ("conversation", room))
    await refused(sup, "POST", f"{conv}/assign", {"user_id": user.id + 10_000})  # no such staff member
    await one(staff, "POST", f"{conv}/close", None, "conversation.close", ("conversation", room))
    await one(staff, "POST", f"{conv}/reopen", None, "conversation.reopen", ("conversation", room))
    await one(staff, "POST", f"{conv}/notes", {"body": "VIP"}, "note.add", ("conversation", room))
    await refused(staff, "POST", f"{conv}/notes", {"body": " "})

    status, body = await sup.call("POST", "/api/v1/canned-replies", {"scope": "shared", "shortcut": "hi", "body": "Hi"})
    assert status == 201
    reply_id = body["canned_reply"]["id"]
    [row] = await rows.new()
    assert (row["action"], row["actor_id"], row["target_id"]) == ("canned_reply.create", sup.id, reply_id)
    await refused(staff, "DELETE", f"/api/v1/canned-replies/{reply_id}", None)
    await one(sup, "PATCH", f"/api/v1/canned-replies/{reply_id}", {"body": "Hello"}, "canned_reply.update",
              ("canned_reply", reply_id))
    await one(sup, "DELETE", f"/api/v1/canned-replies/{reply_id}", None, "canned_reply.delete", ("canned_reply", reply_id))

    await one(admin, "DELETE", f"/api/v1/admin/wa/accounts/{account_id}", None, "wa_account.remove",
              ("wa_account", account_id))
    await refused(admin, "DELETE", f"/api/v1/admin/wa/accounts/{account_id}", None)


async def test_admins_list_the_log_filtered_and_paged_newest_first(harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin, sup = await harness.user(node, role="admin"), await harness.user(node, role="supervisor")
    targets = [await harness.user(node) for _ in range(3)]
    for t in targets:
        await admin.call("PATCH", f"/api/v1/admin/users/{t.id}", {"role": "staff"}, expect=200)
    await sup.call("POST", "/api/v1/canned-replies", {"scope": "shared", "shortcut": "a", "body": "A"}, expect=201)

    _, page = await admin.call("GET", "/api/v1/audit?action=user.role&limit=2", expect=200)
    assert [e["target_id"] for e in page["entries"]] == [targets[2].id, targets[1].id]
    assert page["entries"][0]["actor"]["id"] == admin.id and page["entries"][0]["meta"]["to"] == "staff"
    _, rest = await admin.call("GET", f"/api/v1/audit?action=user.role&limit=2&cursor={page['next_cursor']}", expect=200)
    assert [e["target_id"] for e in rest["entries"]] == [targets[0].id] and rest["next_cursor"] is None

    _, by_actor = await admin.call("GET", f"/api/v1/audit?actor={sup.id}", expect=200)
    assert [e["action"] for e in by_actor["entries"]] == ["canned_reply.create"]
    _, by_type = await admin.call("GET", "/api/v1/audit?target_type=canned_reply", expect=200)
    assert [e["actor"]["id"] for e in by_type["entries"]] == [sup.id]
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    _, future = await admin.call("GET", "/api/v1/audit", params={"from": later}, expect=200)
    assert future["entries"] == []
    _, past = await admin.call("GET", "/api/v1/audit", params={"before": later, "target_type": "user"}, expect=200)
    assert len(past["entries"]) == 3
    status, body = await sup.call("GET", "/api/v1/audit")
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_the_audit_log_refuses_updates_deletes_and_truncation(harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin = await harness.user(node, role="admin")
    target = await harness.user(node)
    await admin.call("PATCH", f"/api/v1/admin/users/{target.id}", {"role": "staff"}, expect=200)
    conn = await asyncpg.connect(harness.database_url)
    try:
        before = await conn.fetch("SELECT * FROM audit_log ORDER BY id")
        assert [r["action"] for r in before] == ["user.role"]
        for sql in ("UPDATE audit_log SET action = 'user.nothing'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            try:
                await conn.execute(sql)
            except asyncpg.InsufficientPrivilegeError as exc:
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{sql} went through")
        assert await conn.fetch("SELECT * FROM audit_log ORDER BY id") == before
    finally:
        await conn.close()


async def test_an_admins_room_deletion_and_member_removal_leave_one_row_each_and_an_owners_none(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin, owner, member = await harness.user(node, role="admin"), await harness.user(node), await harness.user(node)
    rows = AuditRows(harness.database_url)
    await rows.new()
    mine = await make_room(owner, member, name="owners-own")
    await owner.call("DELETE", f"/api/v1/rooms/{mine}/members/{member.id}", expect=204)
    await owner.call("DELETE", f"/api/v1/rooms/{mine}", expect=204)
    assert await rows.new() == []  # an owner managing their own room is no staff action

    room = await make_room(owner, member, name="moderated")
    await admin.call("DELETE", f"/api/v1/rooms/{room}/members/{member.id}", expect=204)
    status, _ = await admin.call("DELETE", f"/api/v1/rooms/{room}/members/{member.id}")
    assert status == 404  # refused: no second row
    await admin.call("DELETE", f"/api/v1/rooms/{room}", expect=204)
    new = await rows.new()
    assert [(r["action"], r["actor_id"], r["target_type"], r["target_id"]) for r in new] == [
        ("room.member_remove", admin.id, "room", room), ("room.delete", admin.id, "room", room)]
    assert new[0]["meta"]["user_id"] == member.id and new[0]["meta"]["role"] == "member"
    assert (new[1]["meta"]["name"], new[1]["meta"]["kind"], new[1]["meta"]["ip"]) == ("moderated", "public", "127.0.0.1")


async def test_an_admin_deleting_someone_elses_message_leaves_one_row_and_an_author_deleting_their_own_none(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin, author = await harness.user(node, role="admin"), await harness.user(node)
    room = await make_room(author, admin, name="moderated-msgs")
    await author.connect()
    await admin.connect()
    rows = AuditRows(harness.database_url)
    await rows.new()
    own = await author.send(room, "mine to delete")
    other = await author.send(room, "an admin removes this")
    ack = await author.emit("message:delete", {"id": own["id"]})
    assert ack["ok"], ack
    assert await rows.new() == []
    ack = await admin.emit("message:delete", {"id": other["id"]})
    assert ack["ok"], ack
    new = await rows.new()
    assert [(r["action"], r["actor_id"], r["target_type"], r["target_id"]) for r in new] == [
        ("message.delete", admin.id, "message", other["id"])]
    assert new[0]["meta"] == {"room_id": room, "author_id": author.id, "archived": False}
    ack = await admin.emit("message:delete", {"id": other["id"]})
    assert not ack["ok"]  # already deleted: refused, no second row
    assert await rows.new() == []
