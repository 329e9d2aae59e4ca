"""The supervisor role: between staff and admin. A supervisor sees and reassigns every WhatsApp
conversation, and is refused on every admin route (roles, accounts, WhatsApp numbers,
compliance, the audit log)."""

from __future__ import annotations

import re

import asyncpg

from chatcore.access import Principal, RoomFacts, can_read_room, can_write_room
from server.transport.http import routes
from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post
from tests.support import ServerHarness

PN, SECRET = "PN300", "app-secret-sup"


def test_supervisors_read_and_write_what_staff_do() -> None:
    wa = RoomFacts(id=1, kind="whatsapp", member=False)
    private = RoomFacts(id=2, kind="private", member=False)
    sup = Principal(user_id=1, role="supervisor")
    assert can_read_room(sup, wa) and can_write_room(sup, wa)
    assert not can_read_room(sup, private)


async def test_a_supervisor_is_refused_on_every_admin_route(harness: ServerHarness) -> None:
    node = await harness.start_node()
    sup = await harness.user(node, role="supervisor")
    admin_routes = [r for r in routes.routes if r.auth == "admin"]
    paths = {r.path for r in admin_routes}
    # the routes this promise is about are among them (a renamed route must not slip out of it)
    assert {"/api/v1/admin/users/{id}", "/api/v1/admin/wa/accounts", "/api/v1/admin/wa/accounts/{id}",
            "/api/v1/users/{id}/compliance", "/api/v1/audit"} <= paths
    for route in admin_routes:
        path = re.sub(r"\{[a-z_]+\}", "1", route.path)
        status, body = await sup.call(route.method, path, {})
        assert status == 403 and body["error"]["code"] == "forbidden", (route.method, route.path, status, body)
    # and nothing changed: the supervisor is still a supervisor, no compliance, no account
    conn = await asyncpg.connect(harness.database_url)
    try:
        row = await conn.fetchrow("SELECT role, compliance FROM users WHERE id = $1", sup.id)
        assert (row["role"], row["compliance"]) == ("supervisor", False)
        assert await conn.fetchval("SELECT count(*) FROM wa_accounts") == 0
    finally:
        await conn.close()


async def test_an_admin_can_make_a_user_a_supervisor(harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin, user = await harness.user(node, role="admin"), await harness.user(node)
    _, body = await admin.call("PATCH", f"/api/v1/admin/users/{user.id}", {"role": "supervisor"}, expect=200)
    assert body["user"]["role"] == "supervisor"


async def test_a_supervisor_sees_every_conversation_and_assigns_and_reassigns_them(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node = await harness.start_node(wa_graph_url=graph.base_url)
    admin = await harness.user(node, role="admin")
    staff1, staff2 = await harness.user(node, role="staff"), await harness.user(node, role="staff")
    sup = await harness.user(node, role="supervisor")
    await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 3333", "access_token": "EAAG-token",
        "app_secret": SECRET, "verify_token": "v"}, expect=201)
    await sup.connect()
    raw, headers = signed_post(SECRET, make_text_webhook(PN, "4917055500001", "Ann", "wamid.SUP1", "hello"))
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        assert r.status == 200
    conv = await sup.log.wait_for("conversation:updated", timeout=10)  # live, on the staff channel
    room_id = conv["room_id"]
    await staff1.call("POST", f"/api/v1/wa/conversations/{room_id}/takeover", expect=200)
    _, listed = await sup.call("GET", "/api/v1/wa/conversations", expect=200)
    assert [c["room_id"] for c in listed["conversations"]] == [room_id]
    # reassign a conversation another staff member holds, to a third, then to themself
    _, body = await sup.call("POST", f"/api/v1/wa/conversations/{room_id}/assign", {"user_id": staff2.id}, expect=200)
    assert body["conversation"]["assignee"]["id"] == staff2.id
    _, body = await sup.call("POST", f"/api/v1/wa/conversations/{room_id}/assign", {"user_id": sup.id}, expect=200)
    assert body["conversation"]["assignee"]["id"] == sup.id
    # staff may hand a conversation to a supervisor too: a supervisor is staff
    _, body = await staff1.call("POST", f"/api/v1/wa/conversations/{room_id}/assign", {"user_id": sup.id}, expect=200)
    assert body["conversation"]["assignee"]["id"] == sup.id
    _, hist = await sup.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert hist["messages"][0]["body"] == "hello"
